/* tests/zdtm/shmapp.c — ZDTM-style test programs for shmig: shared memory
 * and SysV IPC that travel with a miggroup.
 *
 *   shmapp MODE --dir DIR --name NAME [options]
 *
 * MODE (the first argument that is not an option):
 *   sysv       --key K --role a|b: two unrelated processes (started separately,
 *              same key) share one SysV shm segment (4 KiB header + 8 MiB of a
 *              known pattern with its checksum) and a SysV semaphore set of one
 *              mutex; role a creates both (IPC_EXCL), role b attaches. Under the
 *              semaphore each tick a process increments its own slot and the
 *              shared total and checks total == slot a + slot b and that its slot
 *              equals its private count.
 *   posix      --shm-name N [--unrelated --role writer|reader]: a ring buffer in
 *              /dev/shm/N (shm_open) with two named POSIX semaphores
 *              (/dev/shm/sem.N-items, sem.N-space); the writer writes numbered
 *              records with checksums, the reader checks order and contents (no
 *              record lost or duplicated). The writer forks the reader, or with
 *              --unrelated the reader is a second program started separately.
 *              The writer creates the semaphores with sem_open (its mappings
 *              show glibc's unlinked temporary names); with --reopen-sems it
 *              closes and opens them again by name.
 *   anon       [--children N (3)]: a parent and N children over a
 *              MAP_SHARED|MAP_ANONYMOUS mapping and a memfd mapped MAP_SHARED;
 *              the parent publishes a tick, each child acknowledges it and counts
 *              its own slot in both mappings.
 *   anon-cross --via memfd --role a|b --sock PATH: role a passes a memfd over a
 *              unix socket (then closed) to role b, an unrelated process; both map
 *              it shared and each sees the other's counter move.
 *              --via anon: a launcher maps MAP_SHARED|MAP_ANONYMOUS memory, forks
 *              two children NAME-0 and NAME-1 (each a session leader with its own
 *              status and result files) that share it, unmaps it and exits once
 *              both are ready.
 *   sysv-msg   --key K: a SysV message queue holding 10 numbered messages and a
 *              set of 5 semaphores with values 1..5; each tick the program
 *              receives the oldest message and queues the next one, and moves the
 *              5th semaphore between 5 and 6 (it is the last to operate on both:
 *              lspid, lrpid, sempid); it checks order, contents and values.
 *
 * Protocol (as tests/zdtm/worker.c, so tests/lib.sh's helpers work):
 * DIR/NAME.status is exactly 256 bytes, rewritten in place:
 *   pid=<pid> counter=<n> restores=<r> restored_at=<k> children=<pid,..> ready=<0|1> <mode fields>
 * the mode fields being shmid=, semid=, msqid=, total=, read= as they apply.
 * The program notices its own restores like the worker: its start time (field
 * 22 of /proc/self/stat) changes while its memory does not. After a restore it
 * checks its whole state at once (patterns, checksums, ids, that a mapping is
 * still shared with the peers, ...). At SIGTERM it checks everything once more,
 * removes what it created and writes DIR/NAME.result: "PASS" (exit 0) or
 * "FAIL: <reason>" (exit 1, written as soon as something is wrong).
 * Exit 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATUS_SIZE 256
#define TICK_NS (10 * 1000 * 1000L)
#define MAX_KIDS 8
#define STALE_TICKS 1000 /* 10 s of own ticks without a peer's progress: the memory is not shared */
#define SETUP_WAIT_S 30
#define SLICE_WORDS (64 * 1024 / 8)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static volatile sig_atomic_t got_term;
static const char *opt_dir, *opt_name, *opt_mode, *opt_role, *opt_shm_name, *opt_sock, *opt_via = "memfd";
static key_t opt_key;
static bool have_key, opt_unrelated, opt_reopen;
static long opt_children = 3;
static char result_path[4096], result_tmp[4096];
static int status_fd = -1;
static pid_t mypid;
static uint64_t counter, restores, restored_at, ticks;
static unsigned long long start_time;
static char extra[160];
static int report_fd = -1; /* in a forked helper child: failures go up this pipe */

struct kid {
	pid_t pid;
	int fd; /* the child's reports, non-blocking */
	char buf[512];
	size_t len;
};
static struct kid kids[MAX_KIDS];
static int nkids;

/* ------------------------------------------------------------ helpers ---- */

static void on_term(int sig)
{
	got_term = 1;
}

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = UINT64_C(0xCBF29CE484222325);
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001B3);
	}
	return h;
}

static void fill_pattern(uint64_t *p, size_t words, uint64_t seed)
{
	for (size_t i = 0; i < words; i++)
		p[i] = mix64(seed + i);
}

static size_t check_pattern(const uint64_t *p, size_t from, size_t count, uint64_t seed)
{
	for (size_t i = from; i < from + count; i++)
		if (p[i] != mix64(seed + i))
			return i;
	return (size_t)-1;
}

/* Check the next n words from *slice on (wrapping at words); index of a bad word or (size_t)-1. */
static size_t check_rolling(const uint64_t *p, size_t words, size_t *slice, size_t n, uint64_t seed)
{
	if (n > words - *slice)
		n = words - *slice;
	size_t bad = check_pattern(p, *slice, n, seed);
	*slice = (*slice + n) % words;
	return bad;
}

static uint64_t checksum(const uint64_t *p, size_t words)
{
	uint64_t h = UINT64_C(0x5348);
	for (size_t i = 0; i < words; i++)
		h = mix64(h ^ p[i]);
	return h;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *b = buf;
	while (len > 0) {
		ssize_t n = write(fd, b, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void tick_sleep(void)
{
	struct timespec ts = {0, TICK_NS};
	nanosleep(&ts, NULL); /* EINTR is fine: a signal or a checkpoint */
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kill_kids(void)
{
	for (int i = 0; i < nkids; i++) {
		if (kids[i].pid <= 0)
			continue;
		kill(kids[i].pid, SIGKILL);
		while (waitpid(kids[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
		kids[i].pid = 0;
	}
}

static void write_result(const char *text)
{
	int fd = open(result_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)write_all(fd, text, strlen(text));
	fsync(fd);
	close(fd);
	(void)rename(result_tmp, result_path);
}

/* Record a failure and exit 1. A helper child sends it to its parent instead. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "FAIL: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t l = strlen(msg);
	for (size_t i = 0; i < l; i++)
		if (msg[i] == '\n')
			msg[i] = ' ';
	msg[l] = '\n';
	msg[l + 1] = '\0';
	if (report_fd >= 0) {
		(void)write_all(report_fd, msg, l + 1);
		_exit(1);
	}
	kill_kids();
	write_result(msg);
	exit(1);
}

static __attribute__((noreturn)) void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "shmapp: %s\n", msg);
	fprintf(stderr, "usage: shmapp sysv --dir DIR --name NAME --key K --role a|b\n"
			"       shmapp posix --dir DIR --name NAME --shm-name N [--unrelated --role writer|reader] "
			"[--reopen-sems]\n"
			"       shmapp anon --dir DIR --name NAME [--children N (1..8, default 3)]\n"
			"       shmapp anon-cross --dir DIR --name NAME --via memfd --role a|b --sock PATH\n"
			"       shmapp anon-cross --dir DIR --name NAME --via anon\n"
			"       shmapp sysv-msg --dir DIR --name NAME --key K\n");
	exit(2);
}

static unsigned long long self_start_time(void)
{
	char buf[1024];
	unsigned long long t = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	char *rp;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (rp == NULL ||
	    sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t) != 1)
		return 0;
	return t;
}

static void write_status(int ready)
{
	char buf[STATUS_SIZE];
	char kl[MAX_KIDS * 12 + 1] = "";
	size_t k = 0;
	for (int i = 0; i < nkids; i++)
		k += (size_t)snprintf(kl + k, sizeof(kl) - k, "%s%d", i ? "," : "", (int)kids[i].pid);
	memset(buf, ' ', sizeof(buf));
	int n =
	    snprintf(buf, sizeof(buf),
		     "pid=%d counter=%" PRIu64 " restores=%" PRIu64 " restored_at=%" PRIu64 " children=%s ready=%d %s",
		     (int)mypid, counter, restores, restored_at, kl, ready, extra);
	if (n < 0 || n >= STATUS_SIZE - 1)
		fail("status line too long");
	buf[n] = ' ';
	buf[STATUS_SIZE - 1] = '\n';
	ssize_t w;
	do
		w = pwrite(status_fd, buf, sizeof(buf), 0);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)sizeof(buf))
		fail("pwrite status: %s", w < 0 ? strerror(errno) : "short write");
}

/* ------------------------------------------------ children's reports ---- */

/* Fork a helper child that reports to the parent over a pipe: returns 0 in the
 * child (report_fd set), the child's index in the parent. */
static int fork_kid(void)
{
	int up[2];
	if (nkids >= MAX_KIDS)
		fail("too many children");
	if (pipe2(up, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(up[0]);
		for (int j = 0; j < nkids; j++)
			close(kids[j].fd);
		if (status_fd >= 0)
			close(status_fd);
		status_fd = -1;
		nkids = 0;
		report_fd = up[1];
		signal(SIGTERM, SIG_IGN); /* only the parent is told to finish */
		return -1;
	}
	close(up[1]);
	if (fcntl(up[0], F_SETFL, O_NONBLOCK) < 0)
		fail("fcntl: %s", strerror(errno));
	kids[nkids].pid = pid;
	kids[nkids].fd = up[0];
	kids[nkids].len = 0;
	return nkids++;
}

/* Read what child i sent; fail on a FAIL line or on EOF. With wait_ms > 0, wait
 * up to that long for a full line and return it in line (NUL-terminated). */
static bool kid_poll(int i, int wait_ms, char *line, size_t linesz)
{
	struct kid *k = &kids[i];
	double end = mono_now() + wait_ms / 1000.0;
	for (;;) {
		ssize_t n = read(k->fd, k->buf + k->len, sizeof(k->buf) - 1 - k->len);
		if (n > 0) {
			k->len += (size_t)n;
		} else if (n == 0) {
			k->buf[k->len] = '\0';
			if (k->len == 0 || !strchr(k->buf, '\n'))
				fail("child %d (%d) died without a word", i, (int)k->pid);
		} else if (errno != EAGAIN && errno != EINTR) {
			fail("read from child %d: %s", (int)k->pid, strerror(errno));
		}
		k->buf[k->len] = '\0';
		char *nl = strchr(k->buf, '\n');
		if (nl) {
			*nl = '\0';
			if (!strncmp(k->buf, "FAIL", 4))
				fail("child %d: %s", (int)k->pid, k->buf);
			if (line)
				snprintf(line, linesz, "%s", k->buf);
			size_t used = (size_t)(nl + 1 - k->buf);
			memmove(k->buf, nl + 1, k->len - used);
			k->len -= used;
			return true;
		}
		if (k->len >= sizeof(k->buf) - 1)
			fail("child %d sent garbage", (int)k->pid);
		if (wait_ms <= 0 || mono_now() > end)
			return false;
		struct pollfd pfd = {k->fd, POLLIN, 0};
		(void)poll(&pfd, 1, 50);
	}
}

/* Each tick: every child still runs and has nothing to complain about. */
static void kids_check(void)
{
	for (int i = 0; i < nkids; i++) {
		(void)kid_poll(i, 0, NULL, 0);
		int st;
		pid_t w = waitpid(kids[i].pid, &st, WNOHANG);
		if (w == kids[i].pid) {
			(void)kid_poll(i, 0, NULL, 0); /* its last word, if it said one */
			kids[i].pid = 0;
			fail("child %d exited (status 0x%x)", i, st);
		}
	}
}

/* At the end: child i says "OK <n>"; returns n. */
static uint64_t kid_final(int i)
{
	char line[512];
	unsigned long long n;
	if (!kid_poll(i, 10000, line, sizeof(line)))
		fail("child %d gave no final answer within 10 s", (int)kids[i].pid);
	if (sscanf(line, "OK %llu", &n) != 1)
		fail("child %d answered '%s'", (int)kids[i].pid, line);
	int st;
	pid_t w;
	while ((w = waitpid(kids[i].pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w != kids[i].pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("child %d ended with status 0x%x", (int)kids[i].pid, st);
	kids[i].pid = 0;
	close(kids[i].fd);
	return n;
}

static void kid_say_ok(uint64_t n)
{
	char msg[64];
	int l = snprintf(msg, sizeof(msg), "OK %" PRIu64 "\n", n);
	(void)write_all(report_fd, msg, (size_t)l);
	_exit(0);
}

/* ---------------------------------------------------------- SysV shm ---- */

#define SYSV_HDR 4096
#define SYSV_PAT_BYTES (8u << 20)
#define SYSV_WORDS (SYSV_PAT_BYTES / 8)
#define SYSV_MAGIC UINT64_C(0x53484D4150505359)

struct sysv_hdr {
	_Atomic uint64_t magic;
	uint64_t total;
	uint64_t slot[2];
	uint64_t done[2];
	uint64_t sum; /* checksum of the pattern */
};

static struct sysv_hdr *sh;
static uint64_t *spat, sseed, smine;
static size_t sslice;
static int shmid = -1, semid = -1, srole;

static void sem_lock(int id)
{
	struct sembuf op = {0, -1, 0};
	struct timespec to = {0, 100 * 1000 * 1000L};
	for (int tries = 0;; tries++) {
		if (semtimedop(id, &op, 1, &to) == 0)
			return;
		if (errno != EAGAIN && errno != EINTR)
			fail("semop lock on set %d: %s", id, strerror(errno));
		if (tries > 300)
			fail("semaphore set %d held by somebody for 30 s", id);
	}
}

static void sem_unlock(int id)
{
	struct sembuf op = {0, 1, 0};
	while (semop(id, &op, 1) < 0)
		if (errno != EINTR)
			fail("semop unlock on set %d: %s", id, strerror(errno));
}

static void sysv_status(void)
{
	snprintf(extra, sizeof(extra), "shmid=%d semid=%d total=%" PRIu64, shmid, semid, sh->total);
}

static void sysv_full_check(const char *when)
{
	size_t bad = check_pattern(spat, 0, SYSV_WORDS, sseed);
	if (bad != (size_t)-1)
		fail("%s: segment %d, pattern word %zu differs", when, shmid, bad);
	if (checksum(spat, SYSV_WORDS) != sh->sum)
		fail("%s: segment %d, pattern checksum differs", when, shmid);
}

static void sysv_setup(void)
{
	size_t size = SYSV_HDR + SYSV_PAT_BYTES;
	if (!have_key || !opt_role || (strcmp(opt_role, "a") && strcmp(opt_role, "b")))
		usage("sysv needs --key K and --role a|b");
	srole = !strcmp(opt_role, "b");
	sseed = mix64((uint64_t)(uint32_t)opt_key ^ UINT64_C(0x5359535653484D));
	if (srole == 0) {
		shmid = shmget(opt_key, size, IPC_CREAT | IPC_EXCL | 0600);
		if (shmid < 0)
			fail("shmget key 0x%08x: %s", (unsigned)opt_key, strerror(errno));
		semid = semget(opt_key, 1, IPC_CREAT | IPC_EXCL | 0600);
		if (semid < 0)
			fail("semget key 0x%08x: %s", (unsigned)opt_key, strerror(errno));
		sh = shmat(shmid, NULL, 0);
		if (sh == (void *)-1)
			fail("shmat %d: %s", shmid, strerror(errno));
		spat = (uint64_t *)((char *)sh + SYSV_HDR);
		fill_pattern(spat, SYSV_WORDS, sseed);
		sh->sum = checksum(spat, SYSV_WORDS);
		sem_unlock(semid); /* the mutex starts free: 1 */
		atomic_store(&sh->magic, SYSV_MAGIC);
	} else {
		double end = mono_now() + SETUP_WAIT_S;
		while ((shmid = shmget(opt_key, 0, 0)) < 0 || (semid = semget(opt_key, 0, 0)) < 0) {
			if (got_term || mono_now() > end)
				fail("no segment and semaphore set with key 0x%08x after %d s", (unsigned)opt_key,
				     SETUP_WAIT_S);
			tick_sleep();
		}
		sh = shmat(shmid, NULL, 0);
		if (sh == (void *)-1)
			fail("shmat %d: %s", shmid, strerror(errno));
		spat = (uint64_t *)((char *)sh + SYSV_HDR);
		while (atomic_load(&sh->magic) != SYSV_MAGIC) {
			if (got_term || mono_now() > end)
				fail("segment %d not initialised after %d s", shmid, SETUP_WAIT_S);
			tick_sleep();
		}
		sysv_full_check("at start");
	}
	sysv_status();
}

static void sysv_tick(void)
{
	char err[256] = "";
	sem_lock(semid);
	if (sh->slot[srole] != smine)
		snprintf(err, sizeof(err), "slot %c is %" PRIu64 ", I counted %" PRIu64, 'a' + srole, sh->slot[srole],
			 smine);
	else if (sh->total != sh->slot[0] + sh->slot[1])
		snprintf(err, sizeof(err), "total %" PRIu64 " != slot a %" PRIu64 " + slot b %" PRIu64, sh->total,
			 sh->slot[0], sh->slot[1]);
	else {
		sh->slot[srole]++;
		sh->total++;
		smine++;
	}
	sem_unlock(semid);
	if (err[0])
		fail("%s (segment %d)", err, shmid);
	counter = smine;
	size_t bad = check_rolling(spat, SYSV_WORDS, &sslice, SLICE_WORDS, sseed);
	if (bad != (size_t)-1)
		fail("segment %d: pattern word %zu differs (rolling check)", shmid, bad);
	sysv_status();
}

static void sysv_restored(void)
{
	struct shmid_ds ds;
	int id = shmget(opt_key, 0, 0);
	if (id != shmid)
		fail("after restore: key 0x%08x is segment %d, was %d (%s)", (unsigned)opt_key, id, shmid,
		     id < 0 ? strerror(errno) : "another id");
	id = semget(opt_key, 0, 0);
	if (id != semid)
		fail("after restore: key 0x%08x is semaphore set %d, was %d (%s)", (unsigned)opt_key, id, semid,
		     id < 0 ? strerror(errno) : "another id");
	if (shmctl(shmid, IPC_STAT, &ds) < 0)
		fail("after restore: shmctl IPC_STAT %d: %s", shmid, strerror(errno));
	if (ds.shm_segsz != SYSV_HDR + SYSV_PAT_BYTES)
		fail("after restore: segment %d has %zu bytes", shmid, (size_t)ds.shm_segsz);
	if ((ds.shm_perm.mode & 0777) != 0600)
		fail("after restore: segment %d has mode %o", shmid, ds.shm_perm.mode & 0777);
	int v = semctl(semid, 0, GETVAL);
	if (v != 0 && v != 1)
		fail("after restore: mutex of set %d has value %d", semid, v);
	if (atomic_load(&sh->magic) != SYSV_MAGIC)
		fail("after restore: segment %d lost its header", shmid);
	sysv_full_check("after restore");
}

static void sysv_finish(void)
{
	char err[256] = "";
	sem_lock(semid);
	if (sh->slot[srole] != smine)
		snprintf(err, sizeof(err), "at the end slot %c is %" PRIu64 ", I counted %" PRIu64, 'a' + srole,
			 sh->slot[srole], smine);
	else if (sh->total != sh->slot[0] + sh->slot[1])
		snprintf(err, sizeof(err), "at the end total %" PRIu64 " != %" PRIu64 " + %" PRIu64, sh->total,
			 sh->slot[0], sh->slot[1]);
	sh->done[srole] = 1;
	bool last = sh->done[0] && sh->done[1];
	sem_unlock(semid);
	if (err[0])
		fail("%s", err);
	sysv_full_check("at the end");
	shmdt(sh);
	if (last) { /* the other one finished already: remove both */
		shmctl(shmid, IPC_RMID, NULL);
		semctl(semid, 0, IPC_RMID);
	}
}

/* ---------------------------------------------------- SysV msg + sem ---- */

#define NSEMS 5
#define QLEN 10

struct qmsg {
	long mtype;
	uint64_t seq;
	uint64_t words[6];
	uint64_t sum;
};
#define QMSG_SIZE (sizeof(struct qmsg) - sizeof(long))

static int msqid = -1, msemid = -1;
static uint64_t next_rcv, next_snd, qseed;
static unsigned short semvals[NSEMS];

static void msg_status(void)
{
	snprintf(extra, sizeof(extra), "msqid=%d semid=%d", msqid, msemid);
}

static void make_msg(struct qmsg *m, uint64_t seq)
{
	m->mtype = 1 + (long)(seq % 3);
	m->seq = seq;
	for (int i = 0; i < 6; i++)
		m->words[i] = mix64(qseed + seq * 8 + (uint64_t)i);
	m->sum = checksum(m->words, 6) ^ seq;
}

static void send_msg(uint64_t seq)
{
	struct qmsg m;
	make_msg(&m, seq);
	while (msgsnd(msqid, &m, QMSG_SIZE, IPC_NOWAIT) < 0)
		if (errno != EINTR)
			fail("msgsnd seq %" PRIu64 " to queue %d: %s", seq, msqid, strerror(errno));
}

/* Receive the oldest message, which must be seq; false if the queue is empty. */
static bool recv_msg(uint64_t seq, bool must)
{
	struct qmsg m, want;
	ssize_t n;
	while ((n = msgrcv(msqid, &m, QMSG_SIZE, 0, IPC_NOWAIT)) < 0) {
		if (errno == ENOMSG && !must)
			return false;
		if (errno != EINTR)
			fail("msgrcv from queue %d (expecting seq %" PRIu64 "): %s", msqid, seq, strerror(errno));
	}
	make_msg(&want, seq);
	if ((size_t)n != QMSG_SIZE)
		fail("queue %d: message of %zd bytes, expected %zu", msqid, n, QMSG_SIZE);
	if (m.seq != seq)
		fail("queue %d: got message seq %" PRIu64 ", expected %" PRIu64 " (lost, duplicated or reordered)",
		     msqid, m.seq, seq);
	if (memcmp(&m, &want, sizeof(m)))
		fail("queue %d: message seq %" PRIu64 " has wrong type or contents", msqid, seq);
	return true;
}

static void msg_check(const char *when, bool pids)
{
	struct msqid_ds q;
	unsigned short v[NSEMS];
	union semun arg = {.array = v};
	if (msgctl(msqid, IPC_STAT, &q) < 0)
		fail("%s: msgctl IPC_STAT %d: %s", when, msqid, strerror(errno));
	if (q.msg_qnum != QLEN)
		fail("%s: queue %d holds %lu messages, expected %d", when, msqid, (unsigned long)q.msg_qnum, QLEN);
	if (pids && (q.msg_lspid != mypid || q.msg_lrpid != mypid))
		fail("%s: queue %d lspid %d lrpid %d, expected mine %d", when, msqid, (int)q.msg_lspid,
		     (int)q.msg_lrpid, (int)mypid);
	if (semctl(msemid, 0, GETALL, arg) < 0)
		fail("%s: semctl GETALL %d: %s", when, msemid, strerror(errno));
	for (int i = 0; i < NSEMS; i++) {
		if (v[i] != semvals[i])
			fail("%s: semaphore %d of set %d is %u, expected %u", when, i, msemid, v[i], semvals[i]);
		if (pids && semctl(msemid, i, GETPID) != mypid)
			fail("%s: semaphore %d of set %d last operated by %d, not me", when, i, msemid,
			     semctl(msemid, i, GETPID));
	}
}

static void msg_setup(void)
{
	struct sembuf ops[NSEMS];
	if (!have_key)
		usage("sysv-msg needs --key K");
	qseed = mix64((uint64_t)(uint32_t)opt_key ^ UINT64_C(0x4D5347));
	msqid = msgget(opt_key, IPC_CREAT | IPC_EXCL | 0600);
	if (msqid < 0)
		fail("msgget key 0x%08x: %s", (unsigned)opt_key, strerror(errno));
	msemid = semget(opt_key, NSEMS, IPC_CREAT | IPC_EXCL | 0600);
	if (msemid < 0)
		fail("semget key 0x%08x: %s", (unsigned)opt_key, strerror(errno));
	for (int i = 0; i < NSEMS; i++) {
		ops[i].sem_num = (unsigned short)i;
		ops[i].sem_op = (short)(i + 1);
		ops[i].sem_flg = 0;
		semvals[i] = (unsigned short)(i + 1);
	}
	if (semop(msemid, ops, NSEMS) < 0)
		fail("semop set %d: %s", msemid, strerror(errno));
	for (uint64_t s = 0; s <= QLEN; s++)
		send_msg(s);
	recv_msg(0, true);
	next_rcv = 1;
	next_snd = QLEN + 1;
	msg_check("at start", true);
	msg_status();
}

static void msg_tick(void)
{
	struct sembuf ops[2 * NSEMS + 1];
	recv_msg(next_rcv, true);
	next_rcv++;
	send_msg(next_snd);
	next_snd++;
	/* touch every semaphore (net 0: I stay the last to operate on each), move the 5th */
	for (int i = 0; i < NSEMS; i++) {
		ops[2 * i] = (struct sembuf){(unsigned short)i, 1, 0};
		ops[2 * i + 1] = (struct sembuf){(unsigned short)i, -1, 0};
	}
	short d = semvals[NSEMS - 1] == NSEMS ? 1 : -1;
	ops[2 * NSEMS] = (struct sembuf){NSEMS - 1, d, 0};
	while (semop(msemid, ops, 2 * NSEMS + 1) < 0)
		if (errno != EINTR)
			fail("semop set %d: %s", msemid, strerror(errno));
	semvals[NSEMS - 1] = (unsigned short)(semvals[NSEMS - 1] + d);
	counter++;
	msg_check("running", true);
	msg_status();
}

static void msg_restored(void)
{
	int id = msgget(opt_key, 0);
	if (id != msqid)
		fail("after restore: key 0x%08x is queue %d, was %d (%s)", (unsigned)opt_key, id, msqid,
		     id < 0 ? strerror(errno) : "another id");
	id = semget(opt_key, 0, 0);
	if (id != msemid)
		fail("after restore: key 0x%08x is semaphore set %d, was %d (%s)", (unsigned)opt_key, id, msemid,
		     id < 0 ? strerror(errno) : "another id");
	msg_check("after restore", false);
}

static void msg_finish(void)
{
	msg_check("at the end", true);
	uint64_t n = 0;
	while (recv_msg(next_rcv, false)) {
		next_rcv++;
		n++;
	}
	if (n != QLEN || next_rcv != next_snd)
		fail("at the end: drained %" PRIu64 " messages up to seq %" PRIu64 ", expected %d up to %" PRIu64, n,
		     next_rcv, QLEN, next_snd);
	msgctl(msqid, IPC_RMID, NULL);
	semctl(msemid, 0, IPC_RMID);
}

/* ------------------------------------------------------ POSIX ring ---- */

#define RING_SLOTS 64
#define REC_WORDS 29
#define RING_MAGIC UINT64_C(0x52494E4753484D41)
#define POSIX_PAT_OFF (64 * 1024)
#define POSIX_PAT_BYTES (1u << 20)
#define POSIX_WORDS (POSIX_PAT_BYTES / 8)
#define POSIX_SIZE (POSIX_PAT_OFF + POSIX_PAT_BYTES)

struct rec {
	uint64_t seq;
	uint64_t w[REC_WORDS];
	uint64_t sum;
};

struct ring {
	_Atomic uint64_t magic;
	_Atomic uint64_t wseq, rseq, writer_done, final;
	uint64_t probe[2];
	struct rec r[RING_SLOTS];
};
_Static_assert(sizeof(struct ring) <= POSIX_PAT_OFF, "ring too large");

static struct ring *ring;
static uint64_t *ppat, pseed, pseq_w, pseq_r;
static sem_t *items, *space;
static char shm_path[300], items_name[300], space_name[300];
static bool pwriter;
static size_t pslice;

static void make_rec(struct rec *r, uint64_t seq)
{
	r->seq = seq;
	for (int i = 0; i < REC_WORDS; i++)
		r->w[i] = mix64(pseed ^ (seq * 64 + (uint64_t)i));
	r->sum = checksum(r->w, REC_WORDS) ^ seq;
}

static void posix_full_check(const char *when)
{
	size_t bad = check_pattern(ppat, 0, POSIX_WORDS, pseed);
	if (bad != (size_t)-1)
		fail("%s: /dev/shm%s pattern word %zu differs", when, shm_path, bad);
	if (atomic_load(&ring->magic) != RING_MAGIC)
		fail("%s: /dev/shm%s lost its header", when, shm_path);
}

static void posix_status(void)
{
	snprintf(extra, sizeof(extra), "read=%" PRIu64, pwriter ? atomic_load(&ring->rseq) : pseq_r);
}

static int reader_step(void)
{
	int got = 0;
	for (int k = 0; k < 16; k++) {
		if (sem_trywait(items) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fail("sem_trywait %s: %s", items_name, strerror(errno));
		}
		struct rec want, *r = &ring->r[pseq_r % RING_SLOTS];
		make_rec(&want, pseq_r);
		if (r->seq != pseq_r)
			fail("reader: record seq %" PRIu64 " where %" PRIu64 " was expected (lost or duplicated)",
			     r->seq, pseq_r);
		if (r->sum != (checksum(r->w, REC_WORDS) ^ r->seq))
			fail("reader: record %" PRIu64 " has a bad checksum", pseq_r);
		if (memcmp(r, &want, sizeof(want)))
			fail("reader: record %" PRIu64 " has wrong contents", pseq_r);
		pseq_r++;
		atomic_store(&ring->rseq, pseq_r);
		if (sem_post(space) < 0)
			fail("sem_post %s: %s", space_name, strerror(errno));
		got++;
	}
	return got;
}

static void writer_step(void)
{
	for (int k = 0; k < 4; k++) {
		if (sem_trywait(space) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fail("sem_trywait %s: %s", space_name, strerror(errno));
		}
		make_rec(&ring->r[pseq_w % RING_SLOTS], pseq_w);
		pseq_w++;
		atomic_store(&ring->wseq, pseq_w);
		if (sem_post(items) < 0)
			fail("sem_post %s: %s", items_name, strerror(errno));
	}
}

static __attribute__((noreturn)) void reader_child(pid_t parent)
{
	for (;;) {
		if (getppid() != parent)
			_exit(1);
		reader_step();
		if (atomic_load(&ring->writer_done) && pseq_r == atomic_load(&ring->final)) {
			posix_full_check("reader at the end");
			kid_say_ok(pseq_r);
		}
		tick_sleep();
	}
}

static void posix_setup(void)
{
	if (!opt_shm_name || !*opt_shm_name || strchr(opt_shm_name, '/'))
		usage("posix needs --shm-name N (without '/')");
	if (opt_role && strcmp(opt_role, "writer") && strcmp(opt_role, "reader"))
		usage("posix: --role writer|reader");
	pwriter = !opt_role || !strcmp(opt_role, "writer");
	if (!pwriter && !opt_unrelated)
		usage("posix: --role reader needs --unrelated");
	snprintf(shm_path, sizeof(shm_path), "/%s", opt_shm_name);
	snprintf(items_name, sizeof(items_name), "/%s-items", opt_shm_name);
	snprintf(space_name, sizeof(space_name), "/%s-space", opt_shm_name);
	pseed = hash_str(opt_shm_name);
	int fd;
	if (pwriter) {
		fd = shm_open(shm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			fail("shm_open %s: %s", shm_path, strerror(errno));
		if (ftruncate(fd, POSIX_SIZE) < 0)
			fail("ftruncate %s: %s", shm_path, strerror(errno));
	} else {
		double end = mono_now() + SETUP_WAIT_S;
		while ((fd = shm_open(shm_path, O_RDWR | O_CLOEXEC, 0)) < 0) {
			if (errno != ENOENT || got_term || mono_now() > end)
				fail("shm_open %s: %s", shm_path, strerror(errno));
			tick_sleep();
		}
		struct stat st;
		while (fstat(fd, &st) == 0 && st.st_size < POSIX_SIZE) {
			if (got_term || mono_now() > end)
				fail("%s not sized after %d s", shm_path, SETUP_WAIT_S);
			tick_sleep();
		}
	}
	ring = mmap(NULL, POSIX_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		fail("mmap %s: %s", shm_path, strerror(errno));
	close(fd);
	ppat = (uint64_t *)((char *)ring + POSIX_PAT_OFF);
	if (pwriter) {
		items = sem_open(items_name, O_CREAT | O_EXCL, 0600, 0);
		space = sem_open(space_name, O_CREAT | O_EXCL, 0600, RING_SLOTS);
		if (items == SEM_FAILED || space == SEM_FAILED)
			fail("sem_open %s / %s: %s", items_name, space_name, strerror(errno));
		if (opt_reopen) {
			/* the creator maps glibc's temporary, unlinked name; opened
			 * again, the mappings show the names in /dev/shm */
			sem_close(items);
			sem_close(space);
			items = sem_open(items_name, 0);
			space = sem_open(space_name, 0);
			if (items == SEM_FAILED || space == SEM_FAILED)
				fail("sem_open again %s / %s: %s", items_name, space_name, strerror(errno));
		}
		fill_pattern(ppat, POSIX_WORDS, pseed);
		atomic_store(&ring->magic, RING_MAGIC);
		if (!opt_unrelated && fork_kid() < 0)
			reader_child(getppid());
	} else {
		double end = mono_now() + SETUP_WAIT_S;
		while (atomic_load(&ring->magic) != RING_MAGIC) {
			if (got_term || mono_now() > end)
				fail("%s not initialised after %d s", shm_path, SETUP_WAIT_S);
			tick_sleep();
		}
		items = sem_open(items_name, 0);
		space = sem_open(space_name, 0);
		if (items == SEM_FAILED || space == SEM_FAILED)
			fail("sem_open %s / %s: %s", items_name, space_name, strerror(errno));
		posix_full_check("at start");
	}
	posix_status();
}

static void posix_tick(void)
{
	if (pwriter) {
		writer_step();
		kids_check();
		if (atomic_load(&ring->rseq) > pseq_w)
			fail("reader at %" PRIu64 " is ahead of the writer at %" PRIu64, atomic_load(&ring->rseq),
			     pseq_w);
		counter = pseq_w;
	} else {
		reader_step();
		counter = pseq_r;
	}
	size_t bad = check_rolling(ppat, POSIX_WORDS, &pslice, SLICE_WORDS, pseed);
	if (bad != (size_t)-1)
		fail("/dev/shm%s: pattern word %zu differs (rolling check)", shm_path, bad);
	posix_status();
}

static void posix_restored(void)
{
	posix_full_check("after restore");
	/* the mapping must still be the file /dev/shm/N: a word written through the
	 * file shows in the mapping */
	int fd = shm_open(shm_path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		fail("after restore: shm_open %s: %s", shm_path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size != POSIX_SIZE)
		fail("after restore: %s has %lld bytes, expected %d", shm_path, (long long)st.st_size, POSIX_SIZE);
	uint64_t probe = mix64(restores ^ ((uint64_t)mypid << 20)), back = 0;
	off_t off = (off_t)offsetof(struct ring, probe) + (pwriter ? 0 : 8);
	if (pwrite(fd, &probe, 8, off) != 8)
		fail("after restore: pwrite %s: %s", shm_path, strerror(errno));
	if (ring->probe[pwriter ? 0 : 1] != probe)
		fail("after restore: my mapping of %s is not the file /dev/shm%s any more", shm_path, shm_path);
	if (pread(fd, &back, 8, POSIX_PAT_OFF + 8 * 12345) != 8 || back != ppat[12345])
		fail("after restore: the file /dev/shm%s and my mapping differ", shm_path);
	close(fd);
	for (int i = 0; i < 2; i++) {
		int v;
		sem_t *s = i ? space : items;
		if (sem_getvalue(s, &v) < 0 || v < 0 || v > RING_SLOTS)
			fail("after restore: semaphore %s has value %d", i ? space_name : items_name, v);
	}
}

static void posix_finish(void)
{
	if (pwriter) {
		/* let the reader drain the ring, then tell it where the end is */
		for (int t = 0; atomic_load(&ring->rseq) != pseq_w; t++) {
			if (t > 1000)
				fail("at the end: the reader read %" PRIu64 " of %" PRIu64 " records in 10 s",
				     atomic_load(&ring->rseq), pseq_w);
			kids_check();
			tick_sleep();
		}
		atomic_store(&ring->final, pseq_w);
		atomic_store(&ring->writer_done, 1);
		posix_full_check("at the end");
		if (!opt_unrelated) {
			uint64_t n = kid_final(0);
			if (n != pseq_w)
				fail("at the end: the reader read %" PRIu64 " records, %" PRIu64 " written", n, pseq_w);
		}
		shm_unlink(shm_path);
		sem_unlink(items_name);
		sem_unlink(space_name);
	} else {
		/* after the writer finished, everything it wrote was read exactly once */
		for (int t = 0; atomic_load(&ring->writer_done) && pseq_r != atomic_load(&ring->final); t++) {
			if (t > 1000)
				fail("at the end: read %" PRIu64 " of %" PRIu64 " records", pseq_r,
				     atomic_load(&ring->final));
			reader_step();
			tick_sleep();
		}
		if (pseq_r > atomic_load(&ring->wseq))
			fail("at the end: read %" PRIu64 " records, only %" PRIu64 " written", pseq_r,
			     atomic_load(&ring->wseq));
		posix_full_check("at the end");
	}
}

/* ---------------------------------------------- anon shared + memfd ---- */

#define ANON_BYTES (2u << 20)
#define ANON_HDR 4096
#define ANON_WORDS ((ANON_BYTES - ANON_HDR) / 8)

struct anon_hdr {
	_Atomic uint64_t ptick, stop;
	_Atomic uint64_t ack[MAX_KIDS], count[MAX_KIDS];
};

static struct anon_hdr *ah[2]; /* 0: MAP_SHARED|MAP_ANONYMOUS, 1: memfd */
static uint64_t *apat[2], aseed;
static int amemfd = -1;
static size_t aslice;
static const char *const aname[2] = {"anonymous shared", "memfd"};

static void anon_full_check(const char *when)
{
	for (int r = 0; r < 2; r++) {
		size_t bad = check_pattern(apat[r], 0, ANON_WORDS, aseed + (uint64_t)r * 0x1000000);
		if (bad != (size_t)-1)
			fail("%s: %s mapping, pattern word %zu differs", when, aname[r], bad);
	}
}

static __attribute__((noreturn)) void anon_child(int i, pid_t parent)
{
	uint64_t mine = 0;
	size_t slice = 0;
	close(amemfd);
	for (;;) {
		if (getppid() != parent)
			_exit(1);
		for (int r = 0; r < 2; r++)
			if (atomic_load(&ah[r]->count[i]) != mine)
				fail("child %d: my count in the %s mapping is %" PRIu64 ", I made %" PRIu64, i,
				     aname[r], atomic_load(&ah[r]->count[i]), mine);
		if (atomic_load(&ah[0]->stop)) {
			if (!atomic_load(&ah[1]->stop))
				fail("child %d: stop seen in the anonymous mapping but not in the memfd", i);
			anon_full_check("child at the end");
			kid_say_ok(mine);
		}
		for (int r = 0; r < 2; r++) {
			atomic_store(&ah[r]->ack[i], atomic_load(&ah[r]->ptick));
			atomic_store(&ah[r]->count[i], mine + 1);
		}
		mine++;
		for (int r = 0; r < 2; r++) {
			size_t sl = slice;
			size_t bad =
			    check_rolling(apat[r], ANON_WORDS, &sl, SLICE_WORDS / 8, aseed + (uint64_t)r * 0x1000000);
			if (bad != (size_t)-1)
				fail("child %d: %s mapping, pattern word %zu differs", i, aname[r], bad);
			if (r == 1)
				slice = sl;
		}
		tick_sleep();
	}
}

static void anon_setup(void)
{
	if (opt_children < 1 || opt_children > MAX_KIDS)
		usage("anon: --children 1..8");
	aseed = hash_str(opt_name) ^ UINT64_C(0x414E4F4E);
	void *m = mmap(NULL, ANON_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap shared anonymous: %s", strerror(errno));
	ah[0] = m;
	amemfd = memfd_create("shmapp-anon", MFD_CLOEXEC);
	if (amemfd < 0)
		fail("memfd_create: %s", strerror(errno));
	if (ftruncate(amemfd, ANON_BYTES) < 0)
		fail("ftruncate memfd: %s", strerror(errno));
	m = mmap(NULL, ANON_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, amemfd, 0);
	if (m == MAP_FAILED)
		fail("mmap memfd: %s", strerror(errno));
	ah[1] = m;
	for (int r = 0; r < 2; r++) {
		apat[r] = (uint64_t *)((char *)ah[r] + ANON_HDR);
		fill_pattern(apat[r], ANON_WORDS, aseed + (uint64_t)r * 0x1000000);
	}
	pid_t me = getpid();
	for (int i = 0; i < opt_children; i++)
		if (fork_kid() < 0)
			anon_child(i, me);
	/* the memfd stays open in the parent (an fd and a mapping of it) */
}

static void anon_tick(void)
{
	counter++;
	for (int r = 0; r < 2; r++)
		atomic_store(&ah[r]->ptick, counter);
	kids_check();
	for (int i = 0; i < nkids; i++) {
		uint64_t c0 = atomic_load(&ah[0]->count[i]), c1 = atomic_load(&ah[1]->count[i]);
		if (c0 > c1 + 1 || c1 > c0 + 1)
			fail("child %d: count %" PRIu64 " in the anonymous mapping, %" PRIu64 " in the memfd",
			     (int)kids[i].pid, c0, c1);
		for (int r = 0; r < 2; r++) {
			uint64_t a = atomic_load(&ah[r]->ack[i]);
			if (counter > a + STALE_TICKS)
				fail("child %d last saw tick %" PRIu64 " in the %s mapping, now %" PRIu64
				     ": not shared any more",
				     (int)kids[i].pid, a, aname[r], counter);
		}
	}
	for (int r = 0; r < 2; r++) {
		size_t sl = aslice;
		size_t bad = check_rolling(apat[r], ANON_WORDS, &sl, SLICE_WORDS, aseed + (uint64_t)r * 0x1000000);
		if (bad != (size_t)-1)
			fail("%s mapping, pattern word %zu differs (rolling check)", aname[r], bad);
		if (r == 1)
			aslice = sl;
	}
}

static void anon_restored(void)
{
	anon_full_check("after restore");
	struct stat st;
	if (fstat(amemfd, &st) < 0 || st.st_size != ANON_BYTES)
		fail("after restore: the memfd has %lld bytes", (long long)st.st_size);
	/* still shared: every child sees a tick published after the restore, in both */
	uint64_t from = ++counter, before[MAX_KIDS];
	for (int r = 0; r < 2; r++)
		atomic_store(&ah[r]->ptick, from);
	for (int i = 0; i < nkids; i++)
		before[i] = atomic_load(&ah[1]->count[i]);
	for (int t = 0;; t++) {
		bool all = true;
		for (int i = 0; i < nkids; i++)
			for (int r = 0; r < 2; r++)
				if (atomic_load(&ah[r]->ack[i]) < from || atomic_load(&ah[r]->count[i]) <= before[i])
					all = false;
		if (all)
			break;
		if (t > 500)
			fail("after restore: the children do not see the parent's tick %" PRIu64
			     " within 5 s: the mappings are not shared",
			     from);
		kids_check();
		tick_sleep();
	}
}

static void anon_finish(void)
{
	atomic_store(&ah[1]->stop, 1);
	atomic_store(&ah[0]->stop, 1);
	for (int i = 0; i < nkids; i++) {
		uint64_t n = kid_final(i);
		uint64_t c0 = atomic_load(&ah[0]->count[i]), c1 = atomic_load(&ah[1]->count[i]);
		if (n != c0 || n != c1)
			fail("child %d made %" PRIu64 ", the anonymous mapping says %" PRIu64 ", the memfd %" PRIu64, i,
			     n, c0, c1);
	}
	anon_full_check("at the end");
	close(amemfd);
}

/* ---------------------------------- memory shared across two trees ---- */

#define CROSS_BYTES (1u << 20)
#define CROSS_HDR 4096
#define CROSS_WORDS ((CROSS_BYTES - CROSS_HDR) / 8)

struct cross_hdr {
	_Atomic uint64_t word[2];
};

static struct cross_hdr *xh;
static uint64_t *xpat, xseed, xmine, xpeer_last, xpeer_tick;
static int xrole;

static void cross_status(void)
{
	snprintf(extra, sizeof(extra), "peer=%" PRIu64, atomic_load(&xh->word[1 - xrole]));
}

static void send_fd(int sock, int fd)
{
	char c = 'M';
	struct iovec iov = {&c, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {0};
	memset(&u, 0, sizeof(u));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) != 1)
		fail("sendmsg the memfd: %s", strerror(errno));
}

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = {&c, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {0};
	int fd = -1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		fail("recvmsg the memfd: %s", strerror(errno));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		fail("no fd came with the message");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static void wait_fd(int fd, const char *what)
{
	double end = mono_now() + SETUP_WAIT_S;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) > 0)
			return;
		if (got_term || mono_now() > end)
			fail("%s: nothing after %d s", what, SETUP_WAIT_S);
	}
}

static void cross_memfd_setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1;
	if (!opt_sock || strlen(opt_sock) >= sizeof(sa.sun_path))
		usage("anon-cross --via memfd needs --sock PATH (short)");
	if (!opt_role || (strcmp(opt_role, "a") && strcmp(opt_role, "b")))
		usage("anon-cross --via memfd needs --role a|b");
	xrole = !strcmp(opt_role, "b");
	strcpy(sa.sun_path, opt_sock);
	xseed = hash_str(opt_sock);
	if (xrole == 0) {
		fd = memfd_create("shmapp-cross", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, CROSS_BYTES) < 0)
			fail("memfd: %s", strerror(errno));
		xh = mmap(NULL, CROSS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (xh == MAP_FAILED)
			fail("mmap memfd: %s", strerror(errno));
		xpat = (uint64_t *)((char *)xh + CROSS_HDR);
		fill_pattern(xpat, CROSS_WORDS, xseed);
		int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		unlink(opt_sock);
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0)
			fail("listen on %s: %s", opt_sock, strerror(errno));
		wait_fd(ls, "waiting for role b");
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			fail("accept: %s", strerror(errno));
		send_fd(c, fd);
		char ack;
		wait_fd(c, "waiting for role b's answer");
		if (read(c, &ack, 1) != 1)
			fail("role b did not answer");
		/* no socket and no fd stays: only the two mappings are shared */
		close(c);
		close(ls);
		unlink(opt_sock);
		close(fd);
	} else {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		double end = mono_now() + SETUP_WAIT_S;
		while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if (got_term || mono_now() > end)
				fail("connect %s: %s", opt_sock, strerror(errno));
			tick_sleep();
		}
		wait_fd(s, "waiting for the memfd");
		fd = recv_fd(s);
		xh = mmap(NULL, CROSS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (xh == MAP_FAILED)
			fail("mmap the received memfd: %s", strerror(errno));
		close(fd);
		xpat = (uint64_t *)((char *)xh + CROSS_HDR);
		if (check_pattern(xpat, 0, CROSS_WORDS, xseed) != (size_t)-1)
			fail("the received memfd does not hold role a's pattern");
		if (write(s, "K", 1) != 1)
			fail("answer role a: %s", strerror(errno));
		close(s);
	}
	cross_status();
}

static void cross_tick(void)
{
	uint64_t w = atomic_load(&xh->word[xrole]);
	if (w != xmine)
		fail("my counter in the shared memory is %" PRIu64 ", I counted %" PRIu64, w, xmine);
	atomic_store(&xh->word[xrole], ++xmine);
	counter = xmine;
	uint64_t p = atomic_load(&xh->word[1 - xrole]);
	if (p != xpeer_last) {
		xpeer_last = p;
		xpeer_tick = ticks;
	} else if (ticks > xpeer_tick + STALE_TICKS) {
		fail("the peer's counter is stuck at %" PRIu64 " for %d ticks: the memory is not shared", p,
		     STALE_TICKS);
	}
	if (check_pattern(xpat, (size_t)(ticks % 64) * (CROSS_WORDS / 64), CROSS_WORDS / 64, xseed) != (size_t)-1)
		fail("shared pattern differs (rolling check)");
	cross_status();
}

static void cross_restored(void)
{
	if (check_pattern(xpat, 0, CROSS_WORDS, xseed) != (size_t)-1)
		fail("after restore: the shared pattern differs");
}

static void cross_finish(void)
{
	cross_restored();
}

/* --via anon: the launcher maps, forks NAME-0 and NAME-1, unmaps and exits. */
static const char *cross_child_name(int i)
{
	static char nb[300];
	snprintf(nb, sizeof(nb), "%s-%d", opt_name, i);
	return nb;
}

/* ------------------------------------------------------------- main ---- */

struct mode {
	const char *name;
	void (*setup)(void);
	void (*tick)(void);
	void (*restored)(void);
	void (*finish)(void);
};

static const struct mode modes[] = {
    {"sysv", sysv_setup, sysv_tick, sysv_restored, sysv_finish},
    {"posix", posix_setup, posix_tick, posix_restored, posix_finish},
    {"anon", anon_setup, anon_tick, anon_restored, anon_finish},
    {"anon-cross", cross_memfd_setup, cross_tick, cross_restored, cross_finish},
    {"sysv-msg", msg_setup, msg_tick, msg_restored, msg_finish},
};

static void set_paths(void)
{
	if ((size_t)snprintf(result_path, sizeof(result_path), "%s/%s.result", opt_dir, opt_name) >=
		sizeof(result_path) ||
	    (size_t)snprintf(result_tmp, sizeof(result_tmp), "%s/.%s.result.tmp", opt_dir, opt_name) >=
		sizeof(result_tmp))
		usage("path too long");
}

/* Open the status file (ready=0) and remember who and when this process is. */
static void start_incarnation(void)
{
	char path[4096];
	set_paths();
	unlink(result_path);
	mypid = getpid();
	start_time = self_start_time();
	if (start_time == 0)
		fail("cannot read my start time from /proc/self/stat");
	snprintf(path, sizeof(path), "%s/%s.status", opt_dir, opt_name);
	status_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (status_fd < 0)
		fail("open %s: %s", path, strerror(errno));
	if (ftruncate(status_fd, STATUS_SIZE) < 0)
		fail("ftruncate %s: %s", path, strerror(errno));
	write_status(0);
}

static int run(const struct mode *m)
{
	write_status(1);
	while (!got_term) {
		tick_sleep();
		if (got_term)
			break;
		ticks++;
		unsigned long long now = self_start_time();
		if (now == 0)
			fail("cannot read my start time from /proc/self/stat (counter %" PRIu64 ")", counter);
		if (now != start_time) {
			if (getpid() != mypid)
				fail("restored with pid %d instead of %d", (int)getpid(), (int)mypid);
			restores++;
			restored_at = counter;
			start_time = now;
			m->restored();
		}
		m->tick();
		write_status(1);
	}
	m->finish();
	struct stat st;
	if (fstat(status_fd, &st) < 0 || st.st_size != STATUS_SIZE)
		fail("status file size changed");
	write_result("PASS\n");
	return 0;
}

static int cross_launcher(void)
{
	void *m = mmap(NULL, CROSS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int ready[2][2];
	pid_t pids[2];
	if (m == MAP_FAILED) {
		perror("shmapp: mmap");
		return 1;
	}
	xh = m;
	xpat = (uint64_t *)((char *)xh + CROSS_HDR);
	xseed = hash_str(opt_name);
	fill_pattern(xpat, CROSS_WORDS, xseed);
	for (int i = 0; i < 2; i++) {
		if (pipe2(ready[i], O_CLOEXEC) < 0 || (pids[i] = fork()) < 0) {
			perror("shmapp: fork");
			return 1;
		}
		if (pids[i] == 0) {
			close(ready[i][0]);
			if (i == 1)
				close(ready[0][0]);
			setsid(); /* a tree of its own, joined to a group on its own */
			xrole = i;
			opt_name = cross_child_name(i);
			start_incarnation();
			cross_status();
			(void)write_all(ready[i][1], "R", 1);
			close(ready[i][1]);
			exit(run(&modes[3]));
		}
		close(ready[i][1]);
	}
	munmap(m, CROSS_BYTES); /* only the two children share it now */
	for (int i = 0; i < 2; i++) {
		char c;
		if (read(ready[i][0], &c, 1) != 1) {
			fprintf(stderr, "shmapp: child %s did not start\n", cross_child_name(i));
			return 1;
		}
		close(ready[i][0]);
	}
	printf("%d %d\n", (int)pids[0], (int)pids[1]);
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage(NULL);
		if (!strcmp(a, "--unrelated")) {
			opt_unrelated = true;
			continue;
		}
		if (!strcmp(a, "--reopen-sems")) {
			opt_reopen = true;
			continue;
		}
		if (a[0] != '-') {
			if (opt_mode)
				usage("more than one mode");
			opt_mode = a;
			continue;
		}
		if (i + 1 >= argc)
			usage("missing argument");
		const char *v = argv[++i];
		if (!strcmp(a, "--dir"))
			opt_dir = v;
		else if (!strcmp(a, "--name"))
			opt_name = v;
		else if (!strcmp(a, "--role"))
			opt_role = v;
		else if (!strcmp(a, "--shm-name"))
			opt_shm_name = v;
		else if (!strcmp(a, "--sock"))
			opt_sock = v;
		else if (!strcmp(a, "--via"))
			opt_via = v;
		else if (!strcmp(a, "--children")) {
			char *end;
			opt_children = strtol(v, &end, 10);
			if (*end || end == v)
				usage("bad --children");
		} else if (!strcmp(a, "--key")) {
			char *end;
			errno = 0;
			unsigned long k = strtoul(v, &end, 0);
			if (errno || *end || end == v || k == 0 || k > 0xFFFFFFFFul)
				usage("bad --key (a non-zero 32-bit number, e.g. 0x4f4d0001)");
			opt_key = (key_t)(uint32_t)k;
			have_key = true;
		} else
			usage("unknown option");
	}
	if (!opt_mode)
		usage("no mode");
	if (!opt_dir || !opt_name || !*opt_name || strchr(opt_name, '/'))
		usage("--dir and --name (without '/') are required");
	const struct mode *m = NULL;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(opt_mode, modes[i].name))
			m = &modes[i];
	if (!m)
		usage("unknown mode");
	if (m == &modes[3] && strcmp(opt_via, "memfd") && strcmp(opt_via, "anon"))
		usage("--via memfd|anon");
	struct stat dst;
	if (stat(opt_dir, &dst) < 0 || !S_ISDIR(dst.st_mode))
		usage("--dir is not a directory");

	/* Inherit nothing but stdout/stderr (CRIU refuses stray fds of the harness). */
	close_range(3, ~0U, 0);
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0 && nul != 0) {
		dup2(nul, 0);
		close(nul);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (m == &modes[3] && !strcmp(opt_via, "anon"))
		return cross_launcher();
	start_incarnation();
	m->setup();
	return run(m);
}
