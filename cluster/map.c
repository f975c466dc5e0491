/* cluster/map.c — the cluster map (openmosix.map format); see map.h and
 * cluster.map(5).
 *
 * Decisions this file makes, documented in cluster.map(5):
 *  - An entry is three tokens on one line: entries never span lines, and an
 *    entry cut short by the end of its line (or of the file) is an error.
 *  - `#` starts a comment anywhere on a line.
 *  - IPv4 and IPv6 addresses are kept in their canonical (inet_ntop) form and
 *    compare by value; host names are kept as written and compare without
 *    regard to case.
 *  - An IPv4 range counts up through the whole 32-bit address (10.0.0.255 is
 *    followed by 10.0.1.0) and is refused past 255.255.255.255; an IPv6 range
 *    counts in the last 16-bit group and is refused past ffff. A host name
 *    takes range 1.
 *  - ALIAS entries may come before or after the entry that defines their
 *    node; an ALIAS of a node that no entry defines is reported at the
 *    ALIAS's line.
 *  - Syntax errors stop the parse where they are met; the checks across
 *    entries (duplicate id, duplicate address, unknown ALIAS node) run on what
 *    was parsed, and the error with the earliest line is the one reported.
 *  - A map with no entries is valid (0 nodes); om_map_self() then finds
 *    nothing.
 */
#include "config.h"
#include "map.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#define MAP_MAX_BYTES (1u << 20)
#define MAX_NAME 253 /* a DNS name, without a trailing dot */

enum fam { FAM_NAME = 0, FAM_V4 = 4, FAM_V6 = 6 };

/* An address in a comparable form. */
struct addr {
	enum fam fam;
	unsigned char bin[16]; /* 4 bytes for IPv4, 16 for IPv6 */
};

/* One entry of the map as written: ID ADDRESS RANGE, or ID ADDRESS ALIAS. */
struct entry {
	unsigned long id;
	unsigned long range; /* 0: ALIAS */
	unsigned long line;
	struct addr a;
	char *text; /* the address: canonical for IPs, as written for names */
};

/* One node or alias after ranges are expanded. */
struct slot {
	unsigned long id;
	unsigned long line;
	size_t seq; /* order in the file */
	struct addr a;
	const char *name; /* FAM_NAME: the host name */
	bool alias;
};

struct parse {
	const char *name;
	struct entry *ents;
	size_t n_ents, cap_ents;
	size_t n_nodes, n_aliases;
	unsigned long eline; /* the earliest error so far (ULONG_MAX: none) */
	char emsg[512];
};

__attribute__((format(printf, 3, 4))) static void note(struct parse *p, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	if (line >= p->eline)
		return;
	p->eline = line;
	va_start(ap, fmt);
	vsnprintf(p->emsg, sizeof(p->emsg), fmt, ap);
	va_end(ap);
}

/* A token fit for a message: at most 40 bytes, anything unprintable escaped. */
static const char *show(const char *s, size_t len, char buf[200])
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < 40; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
	}
	if (len > 40) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A decimal number of at most 10 digits; false if not one (or too long). */
static bool decimal(const char *s, size_t len, unsigned long *out)
{
	unsigned long v = 0;

	if (!all_digits(s, len))
		return false;
	while (len > 1 && *s == '0') /* leading zeros do not count toward the length */
		s++, len--;
	if (len > 10)
		return false;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	*out = v;
	return true;
}

/* A host name: dot-separated labels of letters, digits, '-' and '_', each
 * 1-63 long and not starting or ending with '-', with at least one letter
 * (all digits and dots is a malformed IPv4 address, not a name). */
static bool host_name(const char *s, size_t len)
{
	size_t label = 0;
	bool letter = false;

	if (len == 0 || len > MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (isalpha((unsigned char)c))
			letter = true;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-' && letter;
}

/* Classify a NUL-terminated address; <0 if it is none of IPv4, IPv6, name. */
static int classify(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bin) == 1) {
		a->fam = FAM_V4;
		return 0;
	}
	if (strchr(s, ':') != NULL) {
		if (inet_pton(AF_INET6, s, a->bin) != 1)
			return -1;
		a->fam = FAM_V6;
		return 0;
	}
	if (!host_name(s, strlen(s)))
		return -1;
	a->fam = FAM_NAME;
	return 0;
}

/* The text of an IP address. */
static void ntop(const struct addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->fam == FAM_V4 ? AF_INET : AF_INET6, a->bin, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

/* a + k (k < 2^32, checked by the caller). */
static void addr_add(struct addr *a, unsigned long k)
{
	if (a->fam == FAM_V4) {
		uint32_t v =
		    ((uint32_t)a->bin[0] << 24) | ((uint32_t)a->bin[1] << 16) | ((uint32_t)a->bin[2] << 8) | a->bin[3];
		v += (uint32_t)k;
		a->bin[0] = (unsigned char)(v >> 24);
		a->bin[1] = (unsigned char)(v >> 16);
		a->bin[2] = (unsigned char)(v >> 8);
		a->bin[3] = (unsigned char)v;
	} else if (a->fam == FAM_V6) {
		unsigned v = ((unsigned)a->bin[14] << 8 | a->bin[15]) + (unsigned)k;
		a->bin[14] = (unsigned char)(v >> 8);
		a->bin[15] = (unsigned char)v;
	}
}

/* One complete entry: tokens t[0..2] of lengths l[0..2] on line `line`.
 * Returns <0 after noting a syntax error. */
static int add_entry(struct parse *p, const char *const t[3], const size_t l[3], unsigned long line)
{
	char b1[200], b2[200];
	char tok[MAX_NAME + 1];
	struct entry e = {.line = line};
	unsigned long last_id;

	/* the id was checked as it came (see take_token) */
	(void)decimal(t[0], l[0], &e.id);

	/* the address */
	if (l[1] > MAX_NAME) {
		note(p, line, "address `%s` is too long (at most %d bytes)", show(t[1], l[1], b1), MAX_NAME);
		return -1;
	}
	memcpy(tok, t[1], l[1]);
	tok[l[1]] = '\0';
	if (classify(tok, &e.a) < 0) {
		bool v4ish = true;
		for (size_t i = 0; i < l[1]; i++)
			v4ish = v4ish && ((tok[i] >= '0' && tok[i] <= '9') || tok[i] == '.');
		note(p, line, "`%s` is not a %s", show(t[1], l[1], b1),
		     memchr(tok, ':', l[1]) ? "valid IPv6 address"
		     : v4ish		    ? "valid IPv4 address"
					    : "valid address (IPv4, IPv6 or host name)");
		return -1;
	}

	/* the range */
	if (l[2] == 5 && strncasecmp(t[2], "ALIAS", 5) == 0) {
		e.range = 0;
	} else if (!decimal(t[2], l[2], &e.range)) {
		note(p, line, "range `%s` of node %lu is not a number (nor ALIAS)", show(t[2], l[2], b1), e.id);
		return -1;
	} else if (e.range == 0) {
		note(p, line, "range 0 for node %lu (a range is 1 or more; ALIAS for a second address)", e.id);
		return -1;
	} else if (e.range > OM_MAP_MAX_NODES) {
		note(p, line, "range %lu of node %lu: a map holds at most %d nodes", e.range, e.id, OM_MAP_MAX_NODES);
		return -1;
	}

	if (e.range > 0) {
		last_id = e.id + e.range - 1;
		if (last_id > OM_MAP_MAX_ID) {
			note(p, line, "nodes %lu-%lu: node ids go up to %lu", e.id, last_id,
			     (unsigned long)OM_MAP_MAX_ID);
			return -1;
		}
		if (e.a.fam == FAM_NAME && e.range != 1) {
			note(p, line, "host name `%s` with range %lu (a host name takes range 1)", show(t[1], l[1], b1),
			     e.range);
			return -1;
		}
		if (e.a.fam == FAM_V4) {
			uint32_t v = ((uint32_t)e.a.bin[0] << 24) | ((uint32_t)e.a.bin[1] << 16) |
				     ((uint32_t)e.a.bin[2] << 8) | e.a.bin[3];
			if ((uint64_t)v + e.range - 1 > UINT32_MAX) {
				ntop(&e.a, b2, sizeof(b2));
				note(p, line, "range %lu from %s runs past 255.255.255.255", e.range, b2);
				return -1;
			}
		}
		if (e.a.fam == FAM_V6 && ((unsigned long)e.a.bin[14] << 8 | e.a.bin[15]) + e.range - 1 > 0xffff) {
			ntop(&e.a, b2, sizeof(b2));
			note(p, line, "range %lu from %s runs past the last group's ffff", e.range, b2);
			return -1;
		}
		if (p->n_nodes + e.range > OM_MAP_MAX_NODES) {
			note(p, line, "more than %d nodes in the map", OM_MAP_MAX_NODES);
			return -1;
		}
	} else if (p->n_aliases + 1 > OM_MAP_MAX_NODES) {
		note(p, line, "more than %d aliases in the map", OM_MAP_MAX_NODES);
		return -1;
	}

	if (e.a.fam == FAM_NAME) {
		e.text = strdup(tok);
	} else {
		ntop(&e.a, b2, sizeof(b2));
		e.text = strdup(b2);
	}
	if (e.text == NULL)
		return -2;
	if (p->n_ents == p->cap_ents) {
		size_t cap = p->cap_ents ? p->cap_ents * 2 : 64;
		struct entry *ne = realloc(p->ents, cap * sizeof(*ne));
		if (ne == NULL) {
			free(e.text);
			return -2;
		}
		p->ents = ne;
		p->cap_ents = cap;
	}
	p->ents[p->n_ents++] = e;
	if (e.range > 0)
		p->n_nodes += e.range;
	else
		p->n_aliases++;
	return 0;
}

/* Split the text into entries. Returns 0, -1 after a noted syntax error, -2
 * when out of memory. */
static int tokenize(struct parse *p, const char *text, size_t len)
{
	unsigned long line = 1;
	size_t pos = 0;
	char b[200];

	while (pos < len) {
		const char *t[3];
		size_t l[3], k = 0;
		size_t eol = pos, end;

		while (eol < len && text[eol] != '\n')
			eol++;
		end = eol;
		for (size_t i = pos; i < eol; i++) {
			if (text[i] == '\0') {
				note(p, line, "NUL byte in the map");
				return -1;
			}
		}
		for (size_t i = pos; i < eol; i++)
			if (text[i] == '#') {
				end = i;
				break;
			}
		for (size_t i = pos; i < end;) {
			size_t s;
			int rc;
			if (strchr(" \t\r\v\f", text[i]) != NULL) {
				i++;
				continue;
			}
			s = i;
			while (i < end && strchr(" \t\r\v\f", text[i]) == NULL)
				i++;
			t[k] = text + s;
			l[k] = i - s;
			if (k == 0) {
				unsigned long id;
				if (!decimal(t[0], l[0], &id)) {
					note(p, line, "`%s` is not a node id (a number, 1-%lu)", show(t[0], l[0], b),
					     (unsigned long)OM_MAP_MAX_ID);
					return -1;
				}
				if (id == 0 || id > OM_MAP_MAX_ID) {
					note(p, line, "node id %s is out of range (1-%lu)", show(t[0], l[0], b),
					     (unsigned long)OM_MAP_MAX_ID);
					return -1;
				}
			}
			if (++k < 3)
				continue;
			rc = add_entry(p, t, l, line);
			if (rc < 0)
				return rc;
			k = 0;
		}
		if (k != 0) {
			note(p, line, "entry `%s` is cut short (ID ADDRESS RANGE, or ID ADDRESS ALIAS)",
			     show(t[0], (size_t)(t[k - 1] + l[k - 1] - t[0]), b));
			return -1;
		}
		pos = eol + 1;
		line++;
	}
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int addr_cmp(const struct slot *x, const struct slot *y)
{
	if (x->a.fam != y->a.fam)
		return x->a.fam < y->a.fam ? -1 : 1;
	if (x->a.fam == FAM_NAME)
		return strcasecmp(x->name, y->name);
	return memcmp(x->a.bin, y->a.bin, x->a.fam == FAM_V4 ? 4 : 16);
}

static int cmp_addr(const void *a, const void *b)
{
	const struct slot *x = *(const struct slot *const *)a, *y = *(const struct slot *const *)b;
	int c = addr_cmp(x, y);
	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void slot_text(const struct slot *s, char *buf, size_t size)
{
	if (s->a.fam == FAM_NAME)
		snprintf(buf, size, "%s", s->name);
	else
		ntop(&s->a, buf, size);
}

static const struct slot *find_id(const struct slot *nodes, size_t n, unsigned long id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && nodes[lo].id == id ? &nodes[lo] : NULL;
}

static void release_parse(struct parse *p)
{
	for (size_t i = 0; i < p->n_ents; i++)
		free(p->ents[i].text);
	free(p->ents);
	p->ents = NULL;
	p->n_ents = 0;
}

void om_map_release(struct om_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; m->nodes != NULL && i < m->n; i++) {
		for (size_t j = 0; j < m->nodes[i].n_aliases; j++)
			free(m->nodes[i].aliases[j]);
		free(m->nodes[i].aliases);
	}
	free(m->nodes);
	free(m->name);
	m->nodes = NULL;
	m->n = 0;
	m->name = NULL;
}

/* The checks across entries; then the map itself. */
static int build(struct parse *p, bool complete, struct om_map *m)
{
	cleanup_free struct slot *nodes = calloc(p->n_nodes + 1, sizeof(*nodes));
	cleanup_free struct slot *aliases = calloc(p->n_aliases + 1, sizeof(*aliases));
	cleanup_free struct slot **all = calloc(p->n_nodes + p->n_aliases + 1, sizeof(*all));
	size_t nn = 0, na = 0, seq = 0;
	char b1[300];

	if (nodes == NULL || aliases == NULL || all == NULL)
		return -2;
	for (size_t i = 0; i < p->n_ents; i++) {
		const struct entry *e = &p->ents[i];
		if (e->range == 0) {
			struct slot *s = &aliases[na++];
			*s = (struct slot){.id = e->id, .line = e->line, .seq = seq++, .a = e->a, .name = e->text};
			s->alias = true;
			continue;
		}
		for (unsigned long k = 0; k < e->range; k++) {
			struct slot *s = &nodes[nn++];
			*s = (struct slot){.id = e->id + k, .line = e->line, .seq = seq++, .a = e->a, .name = e->text};
			addr_add(&s->a, k);
		}
	}

	/* duplicate ids: the later of two is the error */
	qsort(nodes, nn, sizeof(*nodes), cmp_id);
	for (size_t i = 1; i < nn; i++)
		if (nodes[i].id == nodes[i - 1].id) {
			const struct slot *later = nodes[i].seq > nodes[i - 1].seq ? &nodes[i] : &nodes[i - 1];
			const struct slot *first = later == &nodes[i] ? &nodes[i - 1] : &nodes[i];
			note(p, later->line, "duplicate node id %lu (already at line %lu)", later->id, first->line);
		}

	/* duplicate addresses, across nodes and aliases */
	for (size_t i = 0; i < nn; i++)
		all[i] = &nodes[i];
	for (size_t i = 0; i < na; i++)
		all[nn + i] = &aliases[i];
	qsort(all, nn + na, sizeof(*all), cmp_addr);
	for (size_t i = 1; i < nn + na; i++)
		if (addr_cmp(all[i], all[i - 1]) == 0) {
			/* sorted by seq among equals: all[i] is the later */
			slot_text(all[i], b1, sizeof(b1));
			note(p, all[i]->line, "duplicate address %s (already %s of node %lu at line %lu)", b1,
			     all[i - 1]->alias ? "an ALIAS" : "the address", all[i - 1]->id, all[i - 1]->line);
		}

	/* aliases of nodes no entry defines (not known when the parse stopped early) */
	if (complete)
		for (size_t i = 0; i < na; i++)
			if (find_id(nodes, nn, aliases[i].id) == NULL) {
				slot_text(&aliases[i], b1, sizeof(b1));
				note(p, aliases[i].line, "ALIAS %s of node %lu, which the map does not define", b1,
				     aliases[i].id);
			}
	if (p->eline != ULONG_MAX)
		return -1;

	/* the map: nodes sorted by id, each with its aliases in file order */
	m->nodes = calloc(nn + 1, sizeof(*m->nodes));
	if (m->nodes == NULL)
		return -2;
	m->n = nn;
	for (size_t i = 0; i < nn; i++) {
		m->nodes[i].id = nodes[i].id;
		slot_text(&nodes[i], m->nodes[i].addr, sizeof(m->nodes[i].addr));
	}
	/* aliases[] is in file order: count, then fill */
	cleanup_free size_t *count = calloc(nn + 1, sizeof(*count));
	if (count == NULL)
		return -2;
	for (size_t i = 0; i < na; i++)
		count[find_id(nodes, nn, aliases[i].id) - nodes]++;
	for (size_t i = 0; i < nn; i++) {
		if (count[i] == 0)
			continue;
		m->nodes[i].aliases = calloc(count[i] + 1, sizeof(char *));
		if (m->nodes[i].aliases == NULL)
			return -2;
	}
	for (size_t i = 0; i < na; i++) {
		struct om_map_node *node = &m->nodes[find_id(nodes, nn, aliases[i].id) - nodes];
		slot_text(&aliases[i], b1, sizeof(b1));
		node->aliases[node->n_aliases] = strdup(b1);
		if (node->aliases[node->n_aliases] == NULL)
			return -2;
		node->n_aliases++;
	}
	return 0;
}

int om_map_parse(const char *text, size_t len, const char *name, struct om_map *m, om_error_t *err)
{
	struct parse p = {.name = name ? name : "map", .eline = ULONG_MAX};
	int rc;

	memset(m, 0, sizeof(*m));
	if (len > MAP_MAX_BYTES)
		return om_make_error(err, OM_EUSAGE, "%s: the map is larger than 1 MiB (%zu bytes)", p.name, len);
	if (text == NULL && len > 0)
		return om_make_error(err, EINVAL, "%s: no text", p.name);
	rc = tokenize(&p, text, len);
	if (rc != -2)
		rc = build(&p, rc == 0, m);
	release_parse(&p);
	if (rc == 0) {
		m->name = strdup(p.name);
		if (m->name != NULL)
			return 0;
		rc = -2;
	}
	om_map_release(m);
	if (rc == -2)
		return om_make_error(err, ENOMEM, "%s: parse the map", p.name);
	return om_make_error(err, OM_EUSAGE, "%s:%lu: %s", p.name, p.eline, p.emsg);
}

int om_map_load(const char *path, struct om_map *m, om_error_t *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;

	memset(m, 0, sizeof(*m));
	/* one byte over the limit is enough to tell a file that is too large */
	if (om_read_file_at(AT_FDCWD, path, &text, &len, MAP_MAX_BYTES + 1, err) < 0) {
		if ((*err)->status == EFBIG)
			return om_make_error(err, OM_EUSAGE, "%s: the map is larger than 1 MiB", path);
		return om_error_wrap(err, "cluster map");
	}
	return om_map_parse(text, len, path, m, err);
}

/* Does a node's address or alias (text as kept in the map) equal q? */
static bool same_addr(const char *text, const struct addr *q, const char *qtext)
{
	struct addr a;

	if (classify(text, &a) < 0 || a.fam != q->fam)
		return false;
	if (a.fam == FAM_NAME)
		return strcasecmp(text, qtext) == 0;
	return memcmp(a.bin, q->bin, a.fam == FAM_V4 ? 4 : 16) == 0;
}

static bool node_has(const struct om_map_node *n, const struct addr *q, const char *qtext)
{
	if (same_addr(n->addr, q, qtext))
		return true;
	for (size_t j = 0; j < n->n_aliases; j++)
		if (same_addr(n->aliases[j], q, qtext))
			return true;
	return false;
}

const struct om_map_node *om_map_find(const struct om_map *m, const char *id_or_addr)
{
	struct addr q;
	size_t len;

	if (m == NULL || m->nodes == NULL || id_or_addr == NULL)
		return NULL;
	len = strlen(id_or_addr);
	if (all_digits(id_or_addr, len)) {
		unsigned long id;
		size_t lo = 0, hi = m->n;
		if (!decimal(id_or_addr, len, &id))
			return NULL;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (m->nodes[mid].id < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < m->n && m->nodes[lo].id == id ? &m->nodes[lo] : NULL;
	}
	if (classify(id_or_addr, &q) < 0)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (node_has(&m->nodes[i], &q, id_or_addr))
			return &m->nodes[i];
	return NULL;
}

/* The host's interface addresses. */
struct local {
	struct addr *a;
	size_t n;
};

static int local_addrs(struct local *l, om_error_t *err)
{
	struct ifaddrs *ifa = NULL;
	size_t cap = 0;

	if (getifaddrs(&ifa) < 0)
		return om_make_error(err, errno, "list this host's addresses (getifaddrs)");
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
			cap++;
	l->a = calloc(cap + 1, sizeof(*l->a));
	if (l->a == NULL) {
		freeifaddrs(ifa);
		return om_make_error(err, ENOMEM, "list this host's addresses");
	}
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
		struct addr *a = &l->a[l->n];
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			a->fam = FAM_V4;
			memcpy(a->bin, &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			a->fam = FAM_V6;
			memcpy(a->bin, &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		l->n++;
	}
	freeifaddrs(ifa);
	return 0;
}

static bool is_local(const struct local *l, const struct addr *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->a[i].fam == a->fam && memcmp(l->a[i].bin, a->bin, a->fam == FAM_V4 ? 4 : 16) == 0)
			return true;
	return false;
}

/* How a map address matches this host, by one of three means. */
enum how { BY_NUMBER, BY_HOSTNAME, BY_DNS };

static bool short_eq(const char *a, const char *b)
{
	size_t la = strcspn(a, "."), lb = strcspn(b, ".");
	if (strcasecmp(a, b) == 0)
		return true;
	/* "node1" matches "node1.lab" (one of them without a domain) */
	if (a[la] != '\0' && b[lb] != '\0')
		return false;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static bool resolves_local(const char *name, const struct local *l)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	bool found = false;

	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return false;
	for (struct addrinfo *r = res; r != NULL && !found; r = r->ai_next) {
		struct addr a = {0};
		if (r->ai_family == AF_INET) {
			a.fam = FAM_V4;
			memcpy(a.bin, &((const struct sockaddr_in *)(const void *)r->ai_addr)->sin_addr, 4);
		} else if (r->ai_family == AF_INET6) {
			a.fam = FAM_V6;
			memcpy(a.bin, &((const struct sockaddr_in6 *)(const void *)r->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		found = is_local(l, &a);
	}
	freeaddrinfo(res);
	return found;
}

static bool matches(const char *text, enum how how, const struct local *l, const char *hostname)
{
	struct addr a;

	if (classify(text, &a) < 0)
		return false;
	if (how == BY_NUMBER)
		return a.fam != FAM_NAME && is_local(l, &a);
	if (a.fam != FAM_NAME)
		return false;
	if (how == BY_HOSTNAME)
		return hostname[0] != '\0' && short_eq(text, hostname);
	return resolves_local(text, l);
}

/* Nodes matching by one means: the first two, and how many. */
static size_t match_nodes(const struct om_map *m, enum how how, const struct local *l, const char *hostname,
			  const struct om_map_node *hit[2], const char *what[2])
{
	size_t found = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct om_map_node *n = &m->nodes[i];
		const char *w = NULL;
		if (matches(n->addr, how, l, hostname))
			w = n->addr;
		for (size_t j = 0; w == NULL && j < n->n_aliases; j++)
			if (matches(n->aliases[j], how, l, hostname))
				w = n->aliases[j];
		if (w == NULL)
			continue;
		if (found < 2) {
			hit[found] = n;
			what[found] = w;
		}
		found++;
	}
	return found;
}

int om_map_self(const struct om_map *m, const struct om_map_node **out, om_error_t *err)
{
	struct local l = {0};
	struct utsname u;
	const struct om_map_node *hit[2] = {NULL, NULL};
	const char *what[2] = {NULL, NULL};
	const char *name = m != NULL && m->name != NULL ? m->name : "map";
	size_t found = 0;
	char list[512];
	size_t o = 0;

	*out = NULL;
	if (m == NULL)
		return om_make_error(err, EINVAL, "find this node: no map");
	if (local_addrs(&l, err) < 0)
		return om_error_wrap(err, "find this node in the map %s", name);
	if (uname(&u) < 0)
		u.nodename[0] = '\0';
	/* numbers first; host names only if no number matched, and DNS last
	 * (a resolver can take its timeouts on a name) */
	for (enum how how = BY_NUMBER; how <= BY_DNS && found == 0; how++)
		found = match_nodes(m, how, &l, u.nodename, hit, what);
	if (found == 1) {
		free(l.a);
		*out = hit[0];
		return 0;
	}
	if (found > 1) {
		free(l.a);
		return om_make_error(err, OM_EUSAGE,
				     "this host is %zu nodes of the map %s: node %lu (%s) and node %lu (%s)%s; "
				     "name this node with `node =` in omtools.conf",
				     found, name, hit[0]->id, what[0], hit[1]->id, what[1],
				     found > 2 ? " and more" : "");
	}
	list[0] = '\0';
	for (size_t i = 0; i < l.n && o + 64 < sizeof(list); i++) {
		char b[INET6_ADDRSTRLEN];
		ntop(&l.a[i], b, sizeof(b));
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", b);
		if (i + 1 < l.n && o + 64 >= sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o, ", ...");
	}
	free(l.a);
	return om_make_error(err, OM_ENOTFOUND, "this host's addresses (%s; host name %s) are not in the map %s",
			     l.n ? list : "none", u.nodename[0] ? u.nodename : "unknown", name);
}
