/* mpiring.c — an MPI test program for tests/apps/a90-mpi.sh.
 *
 * N ranks pass one token around a ring forever: rank r receives from r-1
 * and sends to r+1. Every message carries the round number, its sender and
 * a payload generated from (round, sender) whose size varies between 64
 * bytes and ~40 KiB (eager and rendezvous paths of the transport), with an
 * FNV-1a checksum. Every rank checks every message it receives: sender,
 * round (the one that follows the previous it saw), payload and checksum.
 *
 *   mpiring DIR
 *
 * Rank 0 appends a line to DIR/mpiring.status about every 50 ms (the last line counts):
 *   "round=R pids=P0,P1,P2 ok"   (or "... FAIL: reason" once a check failed)
 * The ring stops when DIR/mpiring.stop exists or a rank gets SIGUSR1: rank 0
 * marks the token "last", every rank forwards it once more and leaves. Each
 * rank then writes DIR/mpiring.rankR.result: "PASS rounds=R" when every
 * message it saw was right and it saw exactly the rounds rank 0 ran, else
 * "FAIL: reason".
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXWORDS (10240 + 16)

struct hdr {
	uint64_t round;
	uint32_t sender;
	uint32_t last;
	uint32_t nwords;
	uint32_t pad;
	uint64_t sum;
};

struct msg {
	struct hdr h;
	uint32_t w[MAXWORDS];
};

static volatile sig_atomic_t stop_sig;

static void on_usr1(int sig)
{
	(void)sig;
	stop_sig = 1;
}

static uint32_t words_for(uint64_t round, uint32_t sender)
{
	/* 16 words (64 B) up to 10256 words (~40 KiB) */
	return 16 + (uint32_t)(((round * 7 + sender * 3) % 5) * 2560);
}

static void fill(struct msg *m, uint64_t round, uint32_t sender)
{
	uint64_t x = round * 0x9E3779B97F4A7C15ull + sender + 1;
	uint32_t i, n = words_for(round, sender);

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		m->w[i] = (uint32_t)x;
	}
	m->h.round = round;
	m->h.sender = sender;
	m->h.nwords = n;
}

static uint64_t fnv(const uint32_t *w, uint32_t n)
{
	const unsigned char *p = (const unsigned char *)w;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < (size_t)n * 4; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line appended, never a file rewritten and renamed: a checkpoint can
 * come while the file is open, and CRIU reopens it by its path when that
 * generation is restored, however old (an O_APPEND file keeps its path, and
 * CRIU skips its size check). The last line of a file counts. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096], line[4200];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = snprintf(line, sizeof(line), "%s\n", text);
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n) {
		/* the reader sees the line before, or none */
	}
	close(fd);
}

int main(int argc, char **argv)
{
	static struct msg in, out, want;
	char err[512] = "", text[1024], name[64], stopf[4096];
	int rank, size, prev, next, i, len;
	uint64_t round = 0, seen = 0, expect = 0;
	double last_status = 0;
	int *pids;
	int me;

	if (argc != 2) {
		fprintf(stderr, "usage: mpiring DIR\n");
		return 2;
	}
	signal(SIGUSR1, on_usr1);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	prev = (rank + size - 1) % size;
	next = (rank + 1) % size;
	snprintf(stopf, sizeof(stopf), "%s/mpiring.stop", argv[1]);

	pids = calloc((size_t)size, sizeof(int));
	me = (int)getpid();
	MPI_Gather(&me, 1, MPI_INT, pids, 1, MPI_INT, 0, MPI_COMM_WORLD);

	for (;;) {
		int last = 0;

		if (rank == 0) {
			/* start a round: the token goes out, comes back from the last rank */
			last = stop_sig || access(stopf, F_OK) == 0;
			fill(&out, round, 0);
			out.h.last = (uint32_t)last;
			out.h.sum = fnv(out.w, out.h.nwords);
			MPI_Send(&out, (int)(sizeof(struct hdr) + out.h.nwords * 4), MPI_BYTE, next, 1, MPI_COMM_WORLD);
		}
		MPI_Recv(&in, (int)sizeof(in), MPI_BYTE, prev, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		seen++;
		if (!err[0]) {
			fill(&want, expect, (uint32_t)prev);
			if (in.h.sender != (uint32_t)prev)
				snprintf(err, sizeof(err), "round %llu: sender %u, expected %d",
					 (unsigned long long)expect, in.h.sender, prev);
			else if (in.h.round != expect)
				snprintf(err, sizeof(err), "round %llu expected, got %llu", (unsigned long long)expect,
					 (unsigned long long)in.h.round);
			else if (in.h.nwords != want.h.nwords || memcmp(in.w, want.w, (size_t)want.h.nwords * 4) != 0)
				snprintf(err, sizeof(err), "round %llu: payload from %d differs",
					 (unsigned long long)expect, prev);
			else if (in.h.sum != fnv(in.w, in.h.nwords))
				snprintf(err, sizeof(err), "round %llu: checksum from %d differs",
					 (unsigned long long)expect, prev);
		}
		expect++;
		last = (int)in.h.last;
		if (rank != 0) {
			/* pass the round on with our own payload */
			fill(&out, in.h.round, (uint32_t)rank);
			out.h.last = in.h.last;
			out.h.sum = fnv(out.w, out.h.nwords);
			MPI_Send(&out, (int)(sizeof(struct hdr) + out.h.nwords * 4), MPI_BYTE, next, 1, MPI_COMM_WORLD);
		} else {
			round++;
			if (now() - last_status > 0.05 || last) {
				len = snprintf(text, sizeof(text), "round=%llu pids=", (unsigned long long)round);
				for (i = 0; i < size && len < (int)sizeof(text) - 64; i++)
					len += snprintf(text + len, sizeof(text) - (size_t)len, "%s%d", i ? "," : "",
							pids[i]);
				snprintf(text + len, sizeof(text) - (size_t)len, " %s%s", err[0] ? "FAIL: " : "ok",
					 err);
				write_file(argv[1], "mpiring.status", text);
				last_status = now();
			}
			usleep(500); /* a few hundred rounds a second: progress, not a CPU hog */
		}
		if (last)
			break;
	}

	/* every rank saw exactly the rounds rank 0 ran */
	MPI_Bcast(&round, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
	if (!err[0] && seen != round)
		snprintf(err, sizeof(err), "saw %llu messages, rank 0 ran %llu rounds", (unsigned long long)seen,
			 (unsigned long long)round);
	if (err[0])
		snprintf(text, sizeof(text), "FAIL: %s", err);
	else
		snprintf(text, sizeof(text), "PASS rounds=%llu", (unsigned long long)round);
	snprintf(name, sizeof(name), "mpiring.rank%d.result", rank);
	write_file(argv[1], name, text);
	MPI_Finalize();
	return err[0] ? 1 : 0;
}
