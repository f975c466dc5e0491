/* cluster/schedule.c — see schedule.h. */
#include "config.h"
#include "schedule.h"

#include "cgroup.h"
#include "checkpoint.h"
#include "group.h"
#include "policy.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PARALLEL 8u
#define MAX_PRUNED 64u
#define RETRY_MAX_S 60

/* what a worker tells omd (through a pipe, before it exits: < PIPE_BUF is not
 * needed, the whole record fits in the pipe's buffer and is read after the exit) */
struct wres {
	uint32_t magic;
	int32_t ok;
	uint64_t generation;
	double freeze_s, total_s;
	uint32_t n_pruned, n_pinned;
	uint64_t pruned[MAX_PRUNED];
	char prune_error[256];
	char error[512];
};
#define WRES_MAGIC 0x4f4d5331u

struct slot {
	unsigned long g;
	pid_t pid;
	int fd;		  /* the worker's pipe */
	int64_t next_ms;  /* not before (wall clock): the newest generation + period, or a retry */
	uint32_t every_s; /* the period next_ms was computed for */
	uint64_t fence;
};

struct om_sched {
	struct om_sched_opts o;
	struct om_policy_store ps;
	struct slot *slots;
	size_t n_slots;
	double last_scan;
	unsigned running;
	bool scanned;
};

__attribute__((format(printf, 2, 3))) static void slog(struct om_sched *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	om_vlogf(s->o.log, s->o.log_arg, fmt, ap);
	va_end(ap);
}

static void quote(const char *in, char *out, size_t len)
{
	size_t j = 0;
	if (len < 3) {
		*out = '\0';
		return;
	}
	out[j++] = '"';
	for (; in && *in && j + 2 < len; in++)
		out[j++] = (*in == '"' || *in == '\\' || (unsigned char)*in < 0x20) ? '\'' : *in;
	out[j++] = '"';
	out[j] = '\0';
}

void om_history_format(const Om__HistoryEvent *ev, char *buf, size_t len)
{
	size_t n = 0;
	int w;

#define ADD(...)                                                                                                       \
	do {                                                                                                           \
		w = snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__);                                             \
		if (w > 0)                                                                                             \
			n += (size_t)w;                                                                                \
	} while (0)
	if (len == 0)
		return;
	buf[0] = '\0';
	ADD("event=%s", ev->event);
	if (ev->has_group)
		ADD(" group=%llu", (unsigned long long)ev->group);
	if (ev->has_generation)
		ADD(" generation=%llu", (unsigned long long)ev->generation);
	if (ev->has_ok && !ev->ok)
		ADD(" ok=false");
	if (ev->detail && *ev->detail)
		ADD(" %s", ev->detail);
#undef ADD
}

static void emit(struct om_sched *s, const char *event, unsigned long g, uint64_t gen, bool ok, double seconds,
		 const char *detail)
{
	Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
	if (s->o.event == NULL)
		return;
	ev.v = 1;
	ev.time_ms = om_wall_ms();
	ev.node = (char *)(s->o.node ? s->o.node : om_node_name());
	ev.event = (char *)event;
	ev.has_group = true;
	ev.group = g;
	if (gen) {
		ev.has_generation = true;
		ev.generation = gen;
	}
	ev.has_ok = true;
	ev.ok = ok;
	if (seconds >= 0) {
		ev.has_seconds = true;
		ev.seconds = seconds;
	}
	ev.detail = (char *)detail;
	s->o.event(s->o.event_arg, &ev);
}

int om_sched_new(const struct om_sched_opts *o, struct om_sched **out, om_error_t *err)
{
	struct om_sched *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s == NULL || (s->slots = calloc(OM_POLICY_MAX_GROUPS, sizeof(*s->slots))) == NULL) {
		free(s);
		return om_make_error(err, ENOMEM, "scheduler");
	}
	s->o = *o;
	if (s->o.max_parallel == 0)
		s->o.max_parallel = 1;
	if (s->o.max_parallel > MAX_PARALLEL)
		s->o.max_parallel = MAX_PARALLEL;
	if (!(s->o.scan_s > 0))
		s->o.scan_s = 5;
	s->ps.c = o->c;
	s->ps.dir = o->policy_dir ? o->policy_dir : OM_DEFAULT_POLICY_DIR;
	*out = s;
	return 0;
}

void om_sched_free(struct om_sched *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_slots; i++)
		if (s->slots[i].fd >= 0 && s->slots[i].pid > 0)
			close(s->slots[i].fd);
	free(s->slots);
	free(s);
}

unsigned om_sched_running(const struct om_sched *s)
{
	return s ? s->running : 0;
}

static struct slot *slot_of(struct om_sched *s, unsigned long g, bool create)
{
	for (size_t i = 0; i < s->n_slots; i++)
		if (s->slots[i].g == g)
			return &s->slots[i];
	if (!create || s->n_slots >= OM_POLICY_MAX_GROUPS)
		return NULL;
	s->slots[s->n_slots] = (struct slot){.g = g, .fd = -1};
	return &s->slots[s->n_slots++];
}

/* ---- the worker ---- */

static void worker(struct om_sched *s, unsigned long g, const Om__Policy *p, uint64_t fence, int wfd, pid_t omd)
{
	struct om_ckpt_opts o = {0};
	struct om_ckpt_result r = {0};
	struct wres res = {.magic = WRES_MAGIC};
	om_error_t err = NULL;
	sigset_t set;
	int sfd;

	/* omd gone (or stopping the worker): cancel, which thaws the group */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_SETMASK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (getppid() != omd) /* omd died before the death signal was armed */
		_exit(OM_EXIT_FAILURE);
	o.group = g;
	o.store = s->o.cfg->store;
	o.leave_running = true;
	o.keep = p->has_keep && p->keep ? p->keep : s->o.cfg->keep;
	o.fence = fence;
	o.fence_local = s->o.c == NULL; /* omd alone: the store's .fence, as omckpt */
	o.tcp_established = p->has_tcp_established && p->tcp_established;
	o.cancel_fd = sfd >= 0 ? sfd : 0;
	if (om_checkpoint(&o, &r, &err) == 0) {
		res.ok = 1;
		res.generation = r.generation;
		res.freeze_s = r.freeze_seconds;
		res.total_s = r.total_seconds;
		res.n_pinned = (uint32_t)r.prune.n_pinned;
		for (size_t i = 0; i < r.prune.n_removed && i < MAX_PRUNED; i++)
			res.pruned[res.n_pruned++] = r.prune.removed[i];
		if (r.prune_error)
			snprintf(res.prune_error, sizeof(res.prune_error), "%s", r.prune_error);
		om_ckpt_result_release(&r);
	} else
		snprintf(res.error, sizeof(res.error), "%s", err && err->msg ? err->msg : "failed");
	(void)!write(wfd, &res, sizeof(res));
	_exit(res.ok ? 0 : om_error_exit_code(err));
}

static void start(struct om_sched *s, struct slot *sl, const Om__Policy *p)
{
	int fds[2];
	pid_t pid, self = getpid();

	if (pipe2(fds, O_CLOEXEC) < 0) {
		slog(s, "event=schedule-failed group=%lu reason=\"pipe: %s\"", sl->g, strerror(errno));
		return;
	}
	/* the record fits in the pipe: the worker never blocks on it */
	pid = fork();
	if (pid < 0) {
		slog(s, "event=schedule-failed group=%lu reason=\"fork: %s\"", sl->g, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		worker(s, sl->g, p, sl->fence, fds[1], self);
	}
	close(fds[1]);
	sl->pid = pid;
	sl->fd = fds[0];
	s->running++;
}

static void joined(char *buf, size_t len, const uint64_t *v, size_t n)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 24 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
}

bool om_sched_reaped(struct om_sched *s, pid_t pid, int st)
{
	struct wres res;
	struct slot *sl = NULL;
	char detail[1200], list[MAX_PRUNED * 21 + 1], why[600];
	ssize_t n;
	int64_t now = om_wall_ms();

	for (size_t i = 0; s && i < s->n_slots && !sl; i++)
		if (s->slots[i].pid == pid && pid > 0)
			sl = &s->slots[i];
	if (sl == NULL)
		return false;
	memset(&res, 0, sizeof(res));
	n = read(sl->fd, &res, sizeof(res));
	close(sl->fd);
	sl->fd = -1;
	sl->pid = 0;
	s->running--;
	if (n != (ssize_t)sizeof(res) || res.magic != WRES_MAGIC) {
		res.ok = 0;
		snprintf(res.error, sizeof(res.error), "worker %d %s %d without a result", (int)pid,
			 WIFSIGNALED(st) ? "killed by signal" : "exited",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	res.error[sizeof(res.error) - 1] = res.prune_error[sizeof(res.prune_error) - 1] = '\0';
	if (!res.ok) {
		int retry = sl->every_s < RETRY_MAX_S ? (int)sl->every_s : RETRY_MAX_S;
		quote(res.error, why, sizeof(why));
		snprintf(detail, sizeof(detail), "reason=%s retry_s=%d", why, retry);
		sl->next_ms = now + (int64_t)retry * 1000;
		emit(s, "checkpoint", sl->g, 0, false, -1, detail);
		return true;
	}
	sl->next_ms = now + (int64_t)sl->every_s * 1000;
	joined(list, sizeof(list), res.pruned, res.n_pruned);
	snprintf(detail, sizeof(detail), "frozen_s=%.3f total_s=%.3f pruned=%s", res.freeze_s, res.total_s,
		 res.n_pruned ? list : "none");
	emit(s, "checkpoint", sl->g, res.generation, true, res.total_s, detail);
	if (res.n_pruned || res.prune_error[0]) {
		if (res.prune_error[0]) {
			quote(res.prune_error, why, sizeof(why));
			snprintf(detail, sizeof(detail), "removed=%s pinned=%u reason=%s", res.n_pruned ? list : "none",
				 res.n_pinned, why);
		} else
			snprintf(detail, sizeof(detail), "removed=%s pinned=%u", list, res.n_pinned);
		emit(s, "prune", sl->g, res.generation, res.prune_error[0] == '\0', -1, detail);
	}
	return true;
}

/* ---- the scan ---- */

/* Does group g run here (has processes)? */
static bool local_group(const struct om_cg *cg, unsigned long g)
{
	struct om_group grp;
	om_error_t err = NULL;
	bool yes;

	if (om_group_load(cg, g, &grp, &err) < 0) {
		om_error_release(&err);
		return false;
	}
	yes = grp.n_trees > 0;
	om_group_release(&grp);
	return yes;
}

/* The wall-clock ms of g's newest generation (0: none). */
static int newest_ms(struct om_store *st, unsigned long g, int64_t *ms, om_error_t *err)
{
	cleanup_free uint64_t *gens = NULL;
	Om__Manifest *m = NULL;
	size_t n = 0;

	*ms = 0;
	if (om_store_list(st, "groups", g, &gens, &n, err) < 0)
		return -1;
	if (n == 0)
		return 0;
	if (om_gen_load_manifest(st, "groups", g, gens[n - 1], &m, err) < 0)
		return -1;
	*ms = m->time_unix_ns / 1000000;
	om_manifest_free(m);
	return 0;
}

/* In a cluster: this node owns g (*fence: the owner key's mod_revision). */
static bool owned_here(struct om_sched *s, unsigned long g, uint64_t *fence)
{
	Om__GroupOwner *own = NULL;
	om_error_t err = NULL;
	int64_t rev = 0;
	bool mine;
	char why[600];

	*fence = 0;
	if (s->o.c == NULL)
		return true;
	if (om_owner_get(s->o.c, g, &own, &rev, &err) < 0) {
		quote(err && err->msg ? err->msg : "?", why, sizeof(why));
		slog(s, "event=schedule-failed group=%lu reason=%s", g, why);
		om_error_release(&err);
		return false;
	}
	/* a failover's restore in progress (failover.c) is no group to checkpoint yet */
	mine = own && strcmp(own->node, s->o.c->self_id) == 0 && own->restoring_from == NULL;
	if (own)
		protobuf_c_message_free_unpacked(&own->base, NULL);
	*fence = rev > 0 ? (uint64_t)rev : 0;
	return mine;
}

static void scan(struct om_sched *s)
{
	Om__Policy **v = NULL;
	size_t n = 0, bad = 0;
	om_error_t err = NULL;
	struct om_store st = {.path = NULL, .fd = -1};
	cleanup_free char *spath = NULL;
	bool store_open = false;
	struct om_cg cg;
	int64_t now = om_wall_ms();
	char why[600];

	if (om_policy_list(&s->ps, &v, &n, &bad, &err) < 0) {
		quote(err && err->msg ? err->msg : "?", why, sizeof(why));
		slog(s, "event=schedule-failed reason=%s", why);
		om_error_release(&err);
		return;
	}
	if (bad && !s->scanned)
		slog(s, "event=policy-refused count=%zu reason=\"a policy that does not parse or is out of bounds\"",
		     bad);
	s->scanned = true;
	if (n && om_cg_init(&cg, &err) < 0) {
		quote(err && err->msg ? err->msg : "?", why, sizeof(why));
		slog(s, "event=schedule-failed reason=%s", why);
		om_error_release(&err);
		goto out;
	}
	for (size_t i = 0; i < n && s->running < s->o.max_parallel; i++) {
		const Om__Policy *p = v[i];
		struct slot *sl = slot_of(s, p->group, true);
		int64_t newest = 0;
		uint64_t fence = 0;

		if (sl == NULL || sl->pid > 0)
			continue;
		if (sl->every_s != p->every_s) { /* a new or changed policy: read the store again */
			sl->every_s = p->every_s;
			sl->next_ms = 0;
		}
		if (now < sl->next_ms)
			continue;
		if (!owned_here(s, p->group, &fence) || !local_group(&cg, p->group))
			continue;
		if (!store_open) {
			if (om_store_resolve_path(s->o.cfg->store, &spath, &err) < 0 ||
			    om_store_open(&st, spath, true, &err) < 0) {
				quote(err && err->msg ? err->msg : "?", why, sizeof(why));
				slog(s, "event=schedule-failed reason=%s", why);
				om_error_release(&err);
				goto out;
			}
			store_open = true;
		}
		if (newest_ms(&st, p->group, &newest, &err) < 0) {
			quote(err && err->msg ? err->msg : "?", why, sizeof(why));
			slog(s, "event=schedule-failed group=%llu reason=%s", (unsigned long long)p->group, why);
			om_error_release(&err);
			newest = 0; /* a newest generation that does not read: checkpoint anew */
		}
		if (newest > 0 && now < newest + (int64_t)p->every_s * 1000) {
			sl->next_ms = newest + (int64_t)p->every_s * 1000;
			continue;
		}
		sl->fence = fence;
		start(s, sl, p);
	}
out:
	if (store_open)
		om_store_close(&st);
	om_policy_list_free(v, n);
}

void om_sched_tick(struct om_sched *s)
{
	if (s == NULL || s->running >= s->o.max_parallel)
		return;
	if (s->scanned && om_now() - s->last_scan < s->o.scan_s)
		return;
	s->last_scan = om_now();
	scan(s);
}

/* ---- omd without a cluster ---- */

int om_sched_run_local(const struct om_sched_opts *o, int signal_fd, om_error_t *err)
{
	struct om_sched *s = NULL;
	bool stop = false;

	if (om_sched_new(o, &s, err) < 0)
		return -1;
	slog(s, "event=started mode=local node=%s policies=%s pid=%d", o->node ? o->node : om_node_name(), s->ps.dir,
	     (int)getpid());
	while (!stop) {
		struct pollfd pfd = {.fd = signal_fd, .events = POLLIN};
		struct signalfd_siginfo si;
		int st;
		pid_t pid;

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
			om_make_error(err, errno, "poll");
			om_sched_free(s);
			return -1;
		}
		while (read(signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				stop = true;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			om_sched_reaped(s, pid, st);
		if (!stop)
			om_sched_tick(s);
	}
	slog(s, "event=stopped mode=local running=%u", s->running);
	om_sched_free(s);
	return 0;
}
