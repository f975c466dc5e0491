/* tests/zdtm/worker.c — a ZDTM-style test process for omtools.
 *
 * Usage: worker --dir DIR --name NAME [--mem MIB] [--children N] [--threads N] [--shm MIB]
 *
 * The worker lives through checkpoints and restores and checks, on SIGTERM,
 * that nothing it owns changed:
 *   - MIB MiB of heap filled with a pattern derived from NAME (not the pid);
 *   - DIR/NAME.data (1 MiB, known content) open twice: O_RDWR at offset 12345
 *     and O_RDONLY at offset 777;
 *   - its pid;
 *   - N children, each with 8 MiB of heap and its own pattern, talking to the
 *     parent over a pair of pipes: every 10 ms tick the parent sends the
 *     counter, the child answers counter+1.
 * The counter lives only in memory; each child checks it got previous + 1.
 *
 * The worker sees its own restores: each tick it reads its start time from
 * /proc/self/stat (field 22, set by the kernel when the process is created)
 * and compares it with the one it keeps in memory. A restored process is a
 * new kernel process with the old memory: the start time differs from the
 * remembered one, so the worker counts a restore (restores=N) and records the
 * counter it continued from (restored_at=K). A program restarted afresh has
 * restores=0 and a counter from 0; one restored from an older image has
 * fewer restores and an older restored_at than the scripts recorded before
 * the checkpoint. Wall-clock time is deliberately not checked: it jumps
 * during a checkpoint.
 *
 * DIR/NAME.status is exactly 256 bytes (pre-sized, rewritten in place with
 * pwrite, never resized: CRIU refuses to restore files whose size changed):
 *   pid=<pid> counter=<n> restores=<r> restored_at=<k> children=<pid,pid> ready=<0|1>   ...spaces...\n
 * DIR/NAME.result is created at the end (written to a temporary name and
 * renamed): "PASS\n", or "FAIL: <reason>\n" as soon as something is wrong.
 * Exit status 0 on PASS, 1 on FAIL, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATUS_SIZE 256
#define DATA_SIZE (1024 * 1024)
#define RW_OFFSET 12345
#define RO_OFFSET 777
#define CHILD_MEM_MIB 8
#define MAX_CHILDREN 16
#define TICK_NS (10 * 1000 * 1000L)
#define SLICE_WORDS (64 * 1024 / 8) /* heap words checked per tick */

/* Pipe protocol: parent -> child is a uint64_t counter, or MSG_VERIFY;
 * child -> parent is counter+1, or one of the REPLY_* values. */
#define MSG_VERIFY UINT64_C(0xFFFFFFFFFFFFFF01)
#define REPLY_OK UINT64_C(0x00000000004F4B21)	   /* "OK!" */
#define REPLY_FAIL UINT64_C(0x000000004641494C)	   /* "FAIL" heap or pid check */
#define REPLY_DISCONT UINT64_C(0x0000444953434F4E) /* "DISCON": counter not previous+1 */
#define REPLY_SHM UINT64_C(0x0000000053484D21)	   /* "SHM!": shared memory does not show the counter */

/* Shared memory (--shm MIB): a SysV segment and a POSIX /dev/shm file, both
 * mapped by the parent and inherited by every child. Word 0 of each carries
 * the live counter (the parent writes it before sending it down the pipe, the
 * child checks it: the memory must really be shared after a restore, not two
 * private copies); the rest holds a pattern. */
static uint64_t *sysv_shm, *posix_shm;
static size_t shm_words;
static char posix_shm_name[256];
static int sysv_shm_id = -1;

#define MAX_THREADS 16
static volatile sig_atomic_t got_term;
static pid_t parent_pid;

static const char *opt_dir;
static const char *opt_name;
static char result_path[4096];
static char result_tmp[4096];

struct child {
	pid_t pid;
	int to_fd;   /* parent writes counters here */
	int from_fd; /* parent reads replies here */
};
static struct child children[MAX_CHILDREN];
static int nchildren;

static void on_term(int sig)
{
	got_term = 1;
}

/* splitmix64 finaliser: a cheap, well-mixed function of a 64-bit value. */
static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

static uint64_t hash_name(const char *s)
{
	uint64_t h = UINT64_C(0xCBF29CE484222325); /* FNV-1a */
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

/* Index of the first bad word in [from, from+count), or (size_t)-1. */
static size_t check_pattern(const uint64_t *p, size_t from, size_t count, uint64_t seed)
{
	for (size_t i = from; i < from + count; i++)
		if (p[i] != mix64(seed + i))
			return i;
	return (size_t)-1;
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

/* Returns 1 on a full read, 0 on EOF, -1 on error. */
static int read_all(int fd, void *buf, size_t len)
{
	char *b = buf;
	while (len > 0) {
		ssize_t n = read(fd, b, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		b += n;
		len -= (size_t)n;
	}
	return 1;
}

static void kill_children(void)
{
	for (int i = 0; i < nchildren; i++) {
		if (children[i].pid <= 0)
			continue;
		kill(children[i].pid, SIGKILL);
		while (waitpid(children[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
		children[i].pid = 0;
	}
}

static void write_result(const char *text)
{
	if (posix_shm_name[0] && getpid() == parent_pid)
		shm_unlink(posix_shm_name);
	if (sysv_shm_id >= 0 && getpid() == parent_pid)
		shmctl(sysv_shm_id, IPC_RMID, NULL); /* goes when the last process detaches */
	int fd = open(result_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)write_all(fd, text, strlen(text));
	fsync(fd);
	close(fd);
	(void)rename(result_tmp, result_path);
}

/* Record a failure and exit 1; children are killed and reaped first. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "FAIL: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t l = strlen(msg);
	msg[l] = '\n';
	msg[l + 1] = '\0';
	kill_children();
	write_result(msg);
	exit(1);
}

static __attribute__((noreturn)) void usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "worker: %s\n", msg);
	fprintf(stderr,
		"usage: worker --dir DIR --name NAME [--mem MIB (default 64)] [--children N (default 1, max %d)]\n"
		"              [--threads N (default 0, max %d)] [--shm MIB (default 0)]\n",
		MAX_CHILDREN, MAX_THREADS);
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		char msg[256];
		snprintf(msg, sizeof(msg), "bad %s '%s' (expected %ld..%ld)", what, s, min, max);
		usage(msg);
	}
	return v;
}

/* What the worker remembers about its own incarnations (in memory only). */
static unsigned long long start_time; /* of the process now running this memory */
static uint64_t restores, restored_at;

/* This process's start time (clock ticks after boot, /proc/self/stat field
 * 22); 0 when it cannot be read. */
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
	rp = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (rp == NULL ||
	    sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t) != 1)
		return 0;
	return t;
}

static void write_status(int fd, pid_t pid, uint64_t counter, int ready)
{
	char buf[STATUS_SIZE];
	char kids[MAX_CHILDREN * 12 + 1] = "";
	size_t k = 0;
	for (int i = 0; i < nchildren; i++)
		k += (size_t)snprintf(kids + k, sizeof(kids) - k, "%s%d", i ? "," : "", (int)children[i].pid);
	memset(buf, ' ', sizeof(buf));
	int n = snprintf(buf, sizeof(buf),
			 "pid=%d counter=%" PRIu64 " restores=%" PRIu64 " restored_at=%" PRIu64 " children=%s ready=%d",
			 (int)pid, counter, restores, restored_at, kids, ready);
	if (n < 0 || n >= STATUS_SIZE - 1)
		fail("status line too long");
	buf[n] = ' '; /* overwrite snprintf's NUL */
	buf[STATUS_SIZE - 1] = '\n';
	ssize_t w;
	do
		w = pwrite(fd, buf, sizeof(buf), 0);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)sizeof(buf))
		fail("pwrite status: %s", w < 0 ? strerror(errno) : "short write");
}

static void tick_sleep(void)
{
	struct timespec ts = {0, TICK_NS};
	nanosleep(&ts, NULL); /* EINTR is fine: a signal or a checkpoint */
}

/* ---- child ---- */

static __attribute__((noreturn)) void child_main(int idx, int from_parent, int to_parent, uint64_t name_seed)
{
	uint64_t seed = name_seed ^ mix64(UINT64_C(0xC41D) + (uint64_t)idx);
	size_t words = (size_t)CHILD_MEM_MIB * 1024 * 1024 / 8;
	pid_t mypid = getpid();
	uint64_t *heap = malloc(words * 8);
	uint64_t prev = 0;
	bool have_prev = false;

	signal(SIGTERM, SIG_IGN); /* only the parent is told to finish */
	signal(SIGPIPE, SIG_IGN);
	if (!heap)
		_exit(1); /* the parent sees EOF and fails */
	fill_pattern(heap, words, seed);

	for (;;) {
		uint64_t v, reply;
		int r = read_all(from_parent, &v, sizeof(v));
		if (r <= 0)
			_exit(r == 0 ? 0 : 1); /* parent gone: never outlive it */
		if (v == MSG_VERIFY) {
			bool ok = check_pattern(heap, 0, words, seed) == (size_t)-1 && getpid() == mypid;
			if (sysv_shm)
				ok = ok &&
				     check_pattern(sysv_shm, 1, shm_words - 1, name_seed ^ UINT64_C(0x5157)) ==
					 (size_t)-1 &&
				     check_pattern(posix_shm, 1, shm_words - 1, name_seed ^ UINT64_C(0x9051)) ==
					 (size_t)-1;
			reply = ok ? REPLY_OK : REPLY_FAIL;
			(void)write_all(to_parent, &reply, sizeof(reply));
			_exit(ok ? 0 : 1);
		}
		if (have_prev && v != prev + 1)
			reply = REPLY_DISCONT;
		else if (sysv_shm && (sysv_shm[0] != v || posix_shm[0] != v))
			reply = REPLY_SHM;
		else
			reply = v + 1;
		prev = v;
		have_prev = true;
		if (write_all(to_parent, &reply, sizeof(reply)) < 0)
			_exit(1);
	}
}

/* ---- parent ---- */

static void check_data(int fd_rw, int fd_ro, const uint8_t *expect, uint8_t *buf)
{
	struct stat st;
	off_t off;

	if (fstat(fd_ro, &st) < 0)
		fail("fstat data: %s", strerror(errno));
	if (st.st_size != DATA_SIZE)
		fail("data file size %lld, expected %d", (long long)st.st_size, DATA_SIZE);
	off = lseek(fd_rw, 0, SEEK_CUR);
	if (off != RW_OFFSET)
		fail("O_RDWR data fd offset %lld, expected %d", (long long)off, RW_OFFSET);
	off = lseek(fd_ro, 0, SEEK_CUR);
	if (off != RO_OFFSET)
		fail("O_RDONLY data fd offset %lld, expected %d", (long long)off, RO_OFFSET);
	if ((fcntl(fd_rw, F_GETFL) & O_ACCMODE) != O_RDWR)
		fail("data fd %d is no longer O_RDWR", fd_rw);
	if ((fcntl(fd_ro, F_GETFL) & O_ACCMODE) != O_RDONLY)
		fail("data fd %d is no longer O_RDONLY", fd_ro);
	for (int which = 0; which < 2; which++) {
		int fd = which ? fd_rw : fd_ro;
		ssize_t n = pread(fd, buf, DATA_SIZE, 0);
		if (n != DATA_SIZE)
			fail("pread data fd %d: %s", fd, n < 0 ? strerror(errno) : "short read");
		if (memcmp(buf, expect, DATA_SIZE))
			fail("data file content differs (read through fd %d)", fd);
	}
}

/* Threads: each spins its own counter over its own patterned buffer and checks
 * that its thread id never changes (CRIU restores TIDs as they were). */
#define THREAD_WORDS (256 * 1024 / 8)
struct thread_state {
	pthread_t th;
	pid_t tid;
	_Atomic uint64_t counter;
	_Atomic int broken; /* 1: tid changed, 2: buffer damaged */
	uint64_t seed;
	uint64_t *buf;
};
static struct thread_state threads[MAX_THREADS];
static int nthreads;

static void *thread_main(void *arg)
{
	struct thread_state *t = arg;
	t->tid = (pid_t)syscall(SYS_gettid);
	fill_pattern(t->buf, THREAD_WORDS, t->seed);
	for (;;) {
		if ((pid_t)syscall(SYS_gettid) != t->tid)
			t->broken = 1;
		if (check_pattern(t->buf, (size_t)(t->counter % 64) * (THREAD_WORDS / 64), THREAD_WORDS / 64,
				  t->seed) != (size_t)-1)
			t->broken = 2;
		t->counter++;
		usleep(2000);
	}
	return NULL;
}

static void check_threads(void)
{
	uint64_t before[MAX_THREADS];
	for (int i = 0; i < nthreads; i++)
		before[i] = threads[i].counter;
	usleep(100000);
	for (int i = 0; i < nthreads; i++) {
		if (threads[i].broken == 1)
			fail("thread %d: its thread id changed", (int)threads[i].tid);
		if (threads[i].broken == 2)
			fail("thread %d: its buffer is damaged", (int)threads[i].tid);
		if (threads[i].counter == before[i])
			fail("thread %d does not run (counter stuck at %" PRIu64 ")", (int)threads[i].tid, before[i]);
		if (check_pattern(threads[i].buf, 0, THREAD_WORDS, threads[i].seed) != (size_t)-1)
			fail("thread %d: buffer differs", (int)threads[i].tid);
	}
}

int main(int argc, char **argv)
{
	long mem_mib = 64, nkids = 1, nthr = 0, shm_mib = 0;
	char path[4096];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage(NULL);
		if (i + 1 >= argc)
			usage("missing argument");
		if (!strcmp(a, "--dir"))
			opt_dir = argv[++i];
		else if (!strcmp(a, "--name"))
			opt_name = argv[++i];
		else if (!strcmp(a, "--mem"))
			mem_mib = parse_num(argv[++i], 1, 65536, "--mem");
		else if (!strcmp(a, "--children"))
			nkids = parse_num(argv[++i], 0, MAX_CHILDREN, "--children");
		else if (!strcmp(a, "--threads"))
			nthr = parse_num(argv[++i], 0, MAX_THREADS, "--threads");
		else if (!strcmp(a, "--shm"))
			shm_mib = parse_num(argv[++i], 0, 1024, "--shm");
		else
			usage("unknown option");
	}
	if (!opt_dir || !opt_name || !*opt_name || strchr(opt_name, '/'))
		usage("--dir and --name (without '/') are required");
	if ((size_t)snprintf(result_path, sizeof(result_path), "%s/%s.result", opt_dir, opt_name) >=
		sizeof(result_path) ||
	    (size_t)snprintf(result_tmp, sizeof(result_tmp), "%s/.%s.result.tmp", opt_dir, opt_name) >=
		sizeof(result_tmp))
		usage("path too long");
	struct stat dst;
	if (stat(opt_dir, &dst) < 0 || !S_ISDIR(dst.st_mode))
		usage("--dir is not a directory");
	unlink(result_path);

	/* Inherit nothing but stdout/stderr: a stray fd (a pipe of the test
	 * harness, say) would be an external resource CRIU refuses to dump. */
	close_range(3, ~0U, 0);
	/* stdin: never read it; point it at /dev/null so the fd is a plain file. */
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0 && nul != 0) {
		dup2(nul, 0);
		close(nul);
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the loops handle EINTR */
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pid_t mypid = getpid();
	uint64_t seed = hash_name(opt_name);
	parent_pid = mypid;
	start_time = self_start_time();
	if (start_time == 0)
		fail("cannot read my start time from /proc/self/stat");

	/* Status file: exactly STATUS_SIZE bytes for the whole life. */
	snprintf(path, sizeof(path), "%s/%s.status", opt_dir, opt_name);
	int status_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (status_fd < 0)
		fail("open %s: %s", path, strerror(errno));
	if (ftruncate(status_fd, STATUS_SIZE) < 0)
		fail("ftruncate %s: %s", path, strerror(errno));
	write_status(status_fd, mypid, 0, 0);

	/* Heap. */
	size_t words = (size_t)mem_mib * 1024 * 1024 / 8;
	uint64_t *heap = malloc(words * 8);
	if (!heap)
		fail("malloc %ld MiB", mem_mib);
	fill_pattern(heap, words, seed);

	/* Data file, its expected content and two fds on it. */
	uint8_t *expect = malloc(DATA_SIZE), *buf = malloc(DATA_SIZE);
	if (!expect || !buf)
		fail("malloc data buffers");
	fill_pattern((uint64_t *)expect, DATA_SIZE / 8, seed ^ UINT64_C(0xDA7A));
	snprintf(path, sizeof(path), "%s/%s.data", opt_dir, opt_name);
	int fd_rw = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd_rw < 0)
		fail("open %s: %s", path, strerror(errno));
	if (write_all(fd_rw, expect, DATA_SIZE) < 0 || fsync(fd_rw) < 0)
		fail("write %s: %s", path, strerror(errno));
	int fd_ro = open(path, O_RDONLY);
	if (fd_ro < 0)
		fail("open %s read-only: %s", path, strerror(errno));
	if (lseek(fd_rw, RW_OFFSET, SEEK_SET) != RW_OFFSET || lseek(fd_ro, RO_OFFSET, SEEK_SET) != RO_OFFSET)
		fail("lseek data: %s", strerror(errno));

	/* Shared memory, before the children: they inherit both mappings. */
	if (shm_mib > 0) {
		size_t bytes = (size_t)shm_mib * 1024 * 1024;
		int id = shmget(IPC_PRIVATE, bytes, IPC_CREAT | 0600);
		if (id < 0)
			fail("shmget %ld MiB: %s", shm_mib, strerror(errno));
		sysv_shm_id = id;
		sysv_shm = shmat(id, NULL, 0);
		if (sysv_shm == (void *)-1)
			fail("shmat: %s", strerror(errno));
		struct timespec now; /* the pid alone is 1 in a PID namespace of its own */
		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(posix_shm_name, sizeof(posix_shm_name), "/omtools-worker-%s-%d-%lx%lx", opt_name, (int)mypid,
			 (unsigned long)now.tv_sec, (unsigned long)now.tv_nsec);
		int fd = shm_open(posix_shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			fail("shm_open %s: %s", posix_shm_name, strerror(errno));
		if (ftruncate(fd, (off_t)bytes) < 0)
			fail("ftruncate %s: %s", posix_shm_name, strerror(errno));
		posix_shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (posix_shm == MAP_FAILED)
			fail("mmap %s: %s", posix_shm_name, strerror(errno));
		close(fd);
		shm_words = bytes / 8;
		fill_pattern(sysv_shm, shm_words, seed ^ UINT64_C(0x5157));
		fill_pattern(posix_shm, shm_words, seed ^ UINT64_C(0x9051));
		sysv_shm[0] = posix_shm[0] = 0;
	}

	/* Children. */
	for (int i = 0; i < nkids; i++) {
		int down[2], up[2];
		if (pipe2(down, O_CLOEXEC) < 0 || pipe2(up, O_CLOEXEC) < 0)
			fail("pipe: %s", strerror(errno));
		pid_t pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			/* Keep only our own pipe ends: EOF must reach us when the parent dies. */
			for (int j = 0; j < nchildren; j++) {
				close(children[j].to_fd);
				close(children[j].from_fd);
			}
			close(down[1]);
			close(up[0]);
			close(status_fd);
			close(fd_rw);
			close(fd_ro);
			free(heap);
			child_main(i, down[0], up[1], seed);
		}
		close(down[0]);
		close(up[1]);
		children[nchildren].pid = pid;
		children[nchildren].to_fd = down[1];
		children[nchildren].from_fd = up[0];
		nchildren++;
	}

	/* Threads, once every child is forked. */
	for (int i = 0; i < nthr; i++) {
		threads[i].seed = seed ^ (UINT64_C(0x7EAD) + (uint64_t)i);
		threads[i].buf = malloc(THREAD_WORDS * 8);
		if (!threads[i].buf)
			fail("malloc thread buffer");
		int e = pthread_create(&threads[i].th, NULL, thread_main, &threads[i]);
		if (e)
			fail("pthread_create: %s", strerror(e));
		nthreads++;
	}
	for (int i = 0; i < nthreads; i++)
		while (threads[i].counter == 0)
			usleep(1000);

	uint64_t counter = 0;
	size_t slice = 0;
	write_status(status_fd, mypid, counter, 1);

	while (!got_term) {
		tick_sleep();
		if (got_term)
			break;
		/* Restored? The kernel process is new, the memory is not. */
		unsigned long long now_start = self_start_time();
		if (now_start == 0)
			fail("cannot read my start time from /proc/self/stat (counter %" PRIu64 ")", counter);
		if (now_start != start_time) {
			if (getpid() != mypid)
				fail("restored with pid %d instead of %d", (int)getpid(), (int)mypid);
			restores++;
			restored_at = counter;
			start_time = now_start;
		}
		counter++;
		if (sysv_shm)
			sysv_shm[0] = posix_shm[0] = counter;
		for (int i = 0; i < nchildren; i++) {
			uint64_t reply;
			if (write_all(children[i].to_fd, &counter, sizeof(counter)) < 0)
				fail("send counter to child %d: %s", (int)children[i].pid, strerror(errno));
			int r = read_all(children[i].from_fd, &reply, sizeof(reply));
			if (r <= 0)
				fail("child %d: %s", (int)children[i].pid,
				     r == 0 ? "pipe closed (child died?)" : strerror(errno));
			if (reply == REPLY_SHM)
				fail("child %d does not see counter %" PRIu64 " in shared memory: not shared any more",
				     (int)children[i].pid, counter);
			if (reply == REPLY_DISCONT)
				fail("child %d saw a counter discontinuity at %" PRIu64, (int)children[i].pid, counter);
			if (reply != counter + 1)
				fail("child %d answered %" PRIu64 " to %" PRIu64, (int)children[i].pid, reply, counter);
		}
		/* A rolling check of a slice of the heap catches damage early. */
		size_t n = words - slice < SLICE_WORDS ? words - slice : SLICE_WORDS;
		size_t bad = check_pattern(heap, slice, n, seed);
		if (bad != (size_t)-1)
			fail("heap word %zu differs (rolling check, counter %" PRIu64 ")", bad, counter);
		slice = (slice + n) % words;
		write_status(status_fd, mypid, counter, 1);
	}

	/* SIGTERM: verify everything, then let the children verify theirs. */
	size_t bad = check_pattern(heap, 0, words, seed);
	if (bad != (size_t)-1)
		fail("heap word %zu of %zu differs", bad, words);
	if (getpid() != mypid)
		fail("pid changed from %d to %d", (int)mypid, (int)getpid());
	check_data(fd_rw, fd_ro, expect, buf);
	check_threads();
	if (sysv_shm && (check_pattern(sysv_shm, 1, shm_words - 1, seed ^ UINT64_C(0x5157)) != (size_t)-1 ||
			 check_pattern(posix_shm, 1, shm_words - 1, seed ^ UINT64_C(0x9051)) != (size_t)-1))
		fail("shared memory pattern differs");
	{
		struct stat st;
		if (fstat(status_fd, &st) < 0 || st.st_size != STATUS_SIZE)
			fail("status file size changed");
	}
	for (int i = 0; i < nchildren; i++) {
		uint64_t msg = MSG_VERIFY, reply = 0;
		pid_t cpid = children[i].pid;
		if (write_all(children[i].to_fd, &msg, sizeof(msg)) < 0)
			fail("ask child %d to verify: %s", (int)cpid, strerror(errno));
		int r = read_all(children[i].from_fd, &reply, sizeof(reply));
		if (r <= 0)
			fail("child %d: no verification answer (%s)", (int)cpid, r == 0 ? "EOF" : strerror(errno));
		if (reply != REPLY_OK)
			fail("child %d: heap or pid check failed", (int)cpid);
		int wst;
		pid_t w;
		while ((w = waitpid(cpid, &wst, 0)) < 0 && errno == EINTR)
			;
		children[i].pid = 0;
		if (w != cpid)
			fail("waitpid child %d: %s", (int)cpid, strerror(errno));
		if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
			fail("child %d exited with status 0x%x", (int)cpid, wst);
		close(children[i].to_fd);
		close(children[i].from_fd);
	}
	write_result("PASS\n");
	return 0;
}
