#include "config.h"
#include "netlock.h"
#include "proc.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TCP_REPAIR
#define TCP_REPAIR 19
#endif

struct sock_list {
	unsigned long **inos;
	int **fdnums;
	size_t *n, cap;
};

static int add_socket(void *arg, int fd, const char *target, om_error_t *err)
{
	struct sock_list *l = arg;
	unsigned long ino;

	if (sscanf(target, "socket:[%lu]", &ino) != 1)
		return 0;
	if (*l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		unsigned long *ni = realloc(*l->inos, nc * sizeof(**l->inos));
		if (ni == NULL)
			return om_make_error(err, ENOMEM, "list sockets");
		*l->inos = ni;
		if (l->fdnums) {
			int *nf = realloc(*l->fdnums, nc * sizeof(**l->fdnums));
			if (nf == NULL)
				return om_make_error(err, ENOMEM, "list sockets");
			*l->fdnums = nf;
		}
		l->cap = nc;
	}
	(*l->inos)[*l->n] = ino;
	if (l->fdnums)
		(*l->fdnums)[*l->n] = fd;
	(*l->n)++;
	return 0;
}

/* the socket inodes among a process's fds; fdnums (optional) gets each one's fd */
static int socket_inodes(pid_t pid, unsigned long **inos, int **fdnums, size_t *n, om_error_t *err)
{
	struct sock_list l = {.inos = inos, .fdnums = fdnums, .n = n};

	*n = 0;
	if (om_proc_fds(pid, add_socket, &l, err) < 0)
		return om_error_wrap(err, "sockets of process %d", (int)pid);
	return 0;
}

/* "0100007F:1F90" (IPv4) or 32 hex digits (IPv6), as /proc/net/tcp{,6} print them */
static int parse_addr(const char *s, int family, uint8_t *addr, uint16_t *port)
{
	size_t words = family == AF_INET ? 1 : 4;
	unsigned int p;

	for (size_t w = 0; w < words; w++) {
		char hex[9];
		uint32_t v;
		memcpy(hex, s + 8 * w, 8);
		hex[8] = '\0';
		if (strlen(hex) != 8 || sscanf(hex, "%8x", &v) != 1)
			return -1;
		memcpy(addr + 4 * w, &v, 4); /* the kernel prints each word in host order */
	}
	if (s[8 * words] != ':' || sscanf(s + 8 * words + 1, "%4x", &p) != 1)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static bool has_ino(const unsigned long *inos, size_t n, unsigned long ino)
{
	for (size_t i = 0; i < n; i++)
		if (inos[i] == ino)
			return true;
	return false;
}

/* The connected TCP sockets listed in /proc/PID/net/tcp{,6} whose inode is in inos. */
static int scan_net(pid_t pid, int family, const unsigned long *inos, size_t nino, struct om_tcp_conn **out,
		    size_t *nout, om_error_t *err)
{
	char path[64], line[512];
	cleanup_fclose FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, family == AF_INET ? "tcp" : "tcp6");
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : om_make_error(err, errno, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64];
		unsigned int st;
		unsigned long ino;
		struct om_tcp_conn c = {.family = family};
		bool dup = false;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*u %*u %lu", local, remote, &st, &ino) != 4)
			continue;
		/* established and the closing states CRIU's tcp_established carries */
		if (st != 0x01 && st != 0x04 && st != 0x05 && st != 0x08 && st != 0x09 && st != 0x0b)
			continue;
		if (!has_ino(inos, nino, ino))
			continue;
		if (parse_addr(local, family, c.laddr, &c.lport) < 0 ||
		    parse_addr(remote, family, c.raddr, &c.rport) < 0)
			continue;
		c.inode = ino;
		for (size_t i = 0; i < *nout && !dup; i++)
			dup = (*out)[i].inode == ino;
		if (dup)
			continue;
		struct om_tcp_conn *nc = realloc(*out, (*nout + 1) * sizeof(**out));
		if (nc == NULL)
			return om_make_error(err, ENOMEM, "TCP connections");
		*out = nc;
		(*out)[(*nout)++] = c;
	}
	return 0;
}

int om_tcp_conns_held(const struct om_tcp_conn *c, size_t n, struct om_tcp_conn *which, om_error_t *err)
{
	static const int families[] = {AF_INET, AF_INET6};

	for (size_t k = 0; k < 2; k++) {
		const int family = families[k];
		char line[512];
		cleanup_fclose FILE *f = fopen(family == AF_INET ? "/proc/self/net/tcp" : "/proc/self/net/tcp6", "re");

		if (f == NULL) {
			if (errno == ENOENT)
				continue;
			return om_make_error(err, errno, "open /proc/self/net/tcp%s", family == AF_INET ? "" : "6");
		}
		while (fgets(line, sizeof(line), f)) {
			char local[64], remote[64];
			struct om_tcp_conn s = {.family = family};
			size_t alen = family == AF_INET ? 4 : 16;

			if (sscanf(line, " %*d: %63s %63s", local, remote) != 2 ||
			    parse_addr(local, family, s.laddr, &s.lport) < 0 ||
			    parse_addr(remote, family, s.raddr, &s.rport) < 0)
				continue;
			for (size_t i = 0; i < n; i++)
				if (c[i].family == family && c[i].lport == s.lport && c[i].rport == s.rport &&
				    memcmp(c[i].laddr, s.laddr, alen) == 0 && memcmp(c[i].raddr, s.raddr, alen) == 0) {
					if (which)
						*which = c[i];
					return 1;
				}
		}
	}
	return 0;
}

int om_tcp_conns_of(const pid_t *pids, size_t n, struct om_tcp_conn **out, size_t *nout, om_error_t *err)
{
	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < n; i++) {
		cleanup_free unsigned long *inos = NULL;
		size_t nino = 0;

		if (socket_inodes(pids[i], &inos, NULL, &nino, err) < 0)
			goto fail;
		if (nino == 0)
			continue;
		if (scan_net(pids[i], AF_INET, inos, nino, out, nout, err) < 0 ||
		    scan_net(pids[i], AF_INET6, inos, nino, out, nout, err) < 0)
			goto fail;
	}
	return 0;
fail:
	free(*out);
	*out = NULL;
	*nout = 0;
	return om_error_wrap(err, "find the TCP connections of process group");
}

void om_netlock_name(char *buf, size_t len, unsigned long group, pid_t pid)
{
	if (group)
		snprintf(buf, len, "omtools_g%lu", group);
	else
		snprintf(buf, len, "omtools_p%d", (int)pid);
}

/* Feed a script to `nft -f -`; its complaint becomes the error. */
static int nft_run(const char *script, om_error_t *err)
{
	int in[2], outp[2], status;
	char msg[1024] = "";
	size_t used = 0;
	ssize_t r;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "pipe");
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return om_make_error(err, errno, "pipe");
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(in[0]);
		close(in[1]);
		close(outp[0]);
		close(outp[1]);
		return om_make_error(err, e, "fork");
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(outp[1], 1);
		dup2(outp[1], 2);
		execl(OM_NFT_BIN, OM_NFT_BIN, "-f", "-", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	(void)om_write_all(in[1], script, strlen(script));
	close(in[1]);
	while ((r = read(outp[0], msg + used, sizeof(msg) - 1 - used)) > 0 || (r < 0 && errno == EINTR))
		if (r > 0)
			used += (size_t)r;
	close(outp[0]);
	msg[used] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (used > 0 && msg[used - 1] == '\n')
		msg[--used] = '\0';
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return om_make_error(err, ENOENT, "cannot run `%s` (install nftables)", OM_NFT_BIN);
	return om_make_error(err, EIO, "`%s -f -` failed: %s", OM_NFT_BIN, used ? msg : "no output");
}

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if (*buf && *len + (size_t)n < *cap) {
			*len += (size_t)n;
			return 0;
		}
		size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(*buf, nc);
		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = nc;
	}
}

/* one drop rule for the packets from (a, ap) to (b, bp) */
static int rule(char **buf, size_t *len, size_t *cap, int family, const uint8_t *a, uint16_t ap, const uint8_t *b,
		uint16_t bp)
{
	char sa[INET6_ADDRSTRLEN], sb[INET6_ADDRSTRLEN];
	const char *kw = family == AF_INET ? "ip" : "ip6";

	if (!inet_ntop(family, a, sa, sizeof(sa)) || !inet_ntop(family, b, sb, sizeof(sb)))
		return -1;
	return append(buf, len, cap, "\t\t%s saddr %s tcp sport %u %s daddr %s tcp dport %u drop\n", kw, sa,
		      (unsigned)ap, kw, sb, (unsigned)bp);
}

int om_netlock_take(const char *name, const struct om_tcp_conn *c, size_t n, om_error_t *err)
{
	cleanup_free char *s = NULL;
	size_t len = 0, cap = 0;
	static const char *hooks[2][2] = {{"out", "output"}, {"in", "input"}};
	int ret = 0;

	/* a table left by an earlier dump of the same group is replaced whole */
	ret |= append(&s, &len, &cap, "table inet %s\ndelete table inet %s\ntable inet %s {\n", name, name, name);
	for (int h = 0; h < 2; h++) {
		ret |= append(&s, &len, &cap, "\tchain %s {\n\t\ttype filter hook %s priority -300; policy accept;\n",
			      hooks[h][0], hooks[h][1]);
		for (size_t i = 0; i < n && ret == 0; i++) {
			ret |= rule(&s, &len, &cap, c[i].family, c[i].laddr, c[i].lport, c[i].raddr, c[i].rport);
			ret |= rule(&s, &len, &cap, c[i].family, c[i].raddr, c[i].rport, c[i].laddr, c[i].lport);
		}
		ret |= append(&s, &len, &cap, "\t}\n");
	}
	ret |= append(&s, &len, &cap, "}\n");
	if (ret != 0)
		return om_make_error(err, ENOMEM, "network lock %s", name);
	if (nft_run(s, err) < 0)
		return om_error_wrap(err, "take the network lock (nftables table inet %s)", name);
	return 0;
}

int om_netlock_release(const char *name, om_error_t *err)
{
	cleanup_free char *s = om_strdup_printf("table inet %s\ndelete table inet %s\n", name, name);

	if (s == NULL)
		return om_make_error(err, ENOMEM, "network lock %s", name);
	if (nft_run(s, err) < 0)
		return om_error_wrap(err, "release the network lock (nftables table inet %s)", name);
	return 0;
}

int om_tcp_repair_grab(const pid_t *pids, size_t n, const struct om_tcp_conn *conns, size_t nconns, int **fds,
		       size_t *nfds, om_error_t *err)
{
	cleanup_free unsigned long *want = calloc(nconns ? nconns : 1, sizeof(*want));

	*fds = NULL;
	*nfds = 0;
	if (want == NULL)
		return om_make_error(err, ENOMEM, "TCP repair");
	for (size_t i = 0; i < nconns; i++)
		want[i] = conns[i].inode;
	for (size_t i = 0; i < n && nconns > 0; i++) {
		cleanup_free unsigned long *inos = NULL;
		cleanup_free int *fdnums = NULL;
		cleanup_close int pidfd = -1;
		size_t nino = 0;

		if (socket_inodes(pids[i], &inos, &fdnums, &nino, err) < 0)
			goto fail;
		for (size_t j = 0; j < nino; j++) {
			int one = 1, fd;
			int *nf;

			if (!has_ino(want, nconns, inos[j]))
				continue;
			if (pidfd < 0 && (pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0)) < 0) {
				om_make_error(err, errno, "pidfd_open %d", (int)pids[i]);
				goto fail;
			}
			fd = (int)syscall(SYS_pidfd_getfd, pidfd, fdnums[j], 0);
			if (fd < 0) {
				om_make_error(err, errno, "pidfd_getfd %d of process %d", fdnums[j], (int)pids[i]);
				goto fail;
			}
			nf = realloc(*fds, (*nfds + 1) * sizeof(**fds));
			if (nf == NULL) {
				close(fd);
				om_make_error(err, ENOMEM, "TCP repair");
				goto fail;
			}
			*fds = nf;
			(*fds)[(*nfds)++] = fd;
			if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)) < 0) {
				om_make_error(err, errno, "TCP repair mode on fd %d of process %d", fdnums[j],
					      (int)pids[i]);
				goto fail;
			}
		}
	}
	return 0;
fail:
	om_tcp_repair_undo(*fds, *nfds);
	*fds = NULL;
	*nfds = 0;
	return -1;
}

void om_tcp_repair_undo(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int off = 0;
		(void)setsockopt(fds[i], IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
	}
	om_fds_close(fds, n);
}

void om_fds_close(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
}
