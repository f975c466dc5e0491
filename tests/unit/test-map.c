/* tests/unit/test-map.c — unit tests of cluster/map.c: the openmosix.map
 * format (the HOWTO's examples, ranges, ALIAS, IPv6, host names), every
 * refusal with the line it names, om_map_find() by id, address and alias,
 * and om_map_self() against this host's addresses (127.0.0.1 is always one
 * of them; the TEST-NET addresses of RFC 5737 never are). TAP output.
 */
#include "config.h"
#include "../tap.h"
#include "map.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

static bool parse(const char *text, struct om_map *m)
{
	om_error_t err = NULL;
	int rc = om_map_parse(text, strlen(text), "t.map", m, &err);
	if (rc < 0)
		diag("unexpected error: %s", err->msg);
	om_error_release(&err);
	return rc == 0;
}

/* The map is refused with "t.map:LINE: " and a message containing `want`. */
static void refused(const char *text, size_t len, unsigned long line, const char *want, const char *what)
{
	om_error_t err = NULL;
	struct om_map m;
	char prefix[64];
	int rc = om_map_parse(text, len, "t.map", &m, &err);

	snprintf(prefix, sizeof(prefix), "t.map:%lu: ", line);
	if (rc == 0) {
		ok(0, "%s: refused (it was accepted)", what);
		om_map_release(&m);
		return;
	}
	ok(err->status == OM_EUSAGE && strncmp(err->msg, prefix, strlen(prefix)) == 0 &&
	       strstr(err->msg, want) != NULL && m.n == 0 && m.nodes == NULL,
	   "%s: %s", what, err->msg);
	om_error_release(&err);
}
#define REFUSED(text, line, want, what) refused(text, strlen(text), line, want, what)

static bool node_is(const struct om_map *m, size_t i, unsigned long id, const char *addr)
{
	return i < m->n && m->nodes[i].id == id && strcmp(m->nodes[i].addr, addr) == 0;
}

static void seed_examples(void)
{
	struct om_map m;

	ok(parse("1 node1 1 2 node2 1 3 node3 1 4 node4 1\n", &m) && m.n == 4 && node_is(&m, 0, 1, "node1") &&
	       node_is(&m, 3, 4, "node4"),
	   "HOWTO: four host names on one line");
	om_map_release(&m);
	ok(parse("1 192.168.1.1 1 2 192.168.1.2 1 3 192.168.1.3 1 4 192.168.1.4 1", &m) && m.n == 4 &&
	       node_is(&m, 1, 2, "192.168.1.2"),
	   "HOWTO: four addresses on one line, no final newline");
	om_map_release(&m);
	ok(parse("1 192.168.1.1 4\n", &m) && m.n == 4 && node_is(&m, 0, 1, "192.168.1.1") &&
	       node_is(&m, 3, 4, "192.168.1.4"),
	   "HOWTO: one range of four");
	om_map_release(&m);
	ok(parse("1 192.168.1.1 1 2 192.168.1.2 1 3 192.168.1.3 1 4 192.168.1.4 1 4 192.168.10.10 ALIAS\n", &m) &&
	       m.n == 4 && m.nodes[3].n_aliases == 1 && strcmp(m.nodes[3].aliases[0], "192.168.10.10") == 0 &&
	       m.nodes[3].aliases[1] == NULL && m.nodes[0].aliases == NULL,
	   "HOWTO: ALIAS, a second interface of node 4");
	om_map_release(&m);
}

static void layout(void)
{
	struct om_map m;

	ok(parse("# cluster\n\n   \t\n10 10.0.0.10 3   # rack 1\r\n1 10.0.1.1 2\n#end", &m) && m.n == 5 &&
	       node_is(&m, 0, 1, "10.0.1.1") && node_is(&m, 1, 2, "10.0.1.2") && node_is(&m, 2, 10, "10.0.0.10") &&
	       node_is(&m, 4, 12, "10.0.0.12"),
	   "comments, blank lines, CRLF; nodes come back sorted by id");
	om_map_release(&m);
	ok(parse("1 10.0.0.254 4\n", &m) && m.n == 4 && node_is(&m, 1, 2, "10.0.0.255") &&
	       node_is(&m, 2, 3, "10.0.1.0") && node_is(&m, 3, 4, "10.0.1.1"),
	   "an IPv4 range carries into the next octet");
	om_map_release(&m);
	ok(parse("1 255.255.255.253 3\n", &m) && m.n == 3 && node_is(&m, 2, 3, "255.255.255.255"),
	   "an IPv4 range up to 255.255.255.255");
	om_map_release(&m);
	ok(parse("1 2001:DB8::fffe 2\n3 fe80::1 1\n", &m) && m.n == 3 && node_is(&m, 0, 1, "2001:db8::fffe") &&
	       node_is(&m, 1, 2, "2001:db8::ffff") && node_is(&m, 2, 3, "fe80::1"),
	   "IPv6: canonical form, a range in the last group");
	om_map_release(&m);
	ok(parse("2 a.example.org 1\n2 10.9.9.9 alias 2 b ALIAS\n", &m) && m.n == 1 && m.nodes[0].n_aliases == 2 &&
	       strcmp(m.nodes[0].aliases[0], "10.9.9.9") == 0 && strcmp(m.nodes[0].aliases[1], "b") == 0,
	   "aliases in file order; alias is case-insensitive");
	om_map_release(&m);
	ok(parse("5 10.1.1.1 ALIAS\n5 10.0.0.5 1\n", &m) && m.n == 1 && m.nodes[0].n_aliases == 1,
	   "an ALIAS may come before its node");
	om_map_release(&m);
	ok(parse("", &m) && m.n == 0, "an empty map has no nodes");
	om_map_release(&m);
	ok(parse("# nothing\n\n", &m) && m.n == 0, "a map of comments has no nodes");
	om_map_release(&m);
	ok(parse("16777215 10.0.0.1 1\n", &m) && m.n == 1 && m.nodes[0].id == OM_MAP_MAX_ID, "the largest id");
	om_map_release(&m);
	ok(parse("1 10.0.0.0 65536\n", &m) && m.n == OM_MAP_MAX_NODES && node_is(&m, 65535, 65536, "10.0.255.255"),
	   "65536 nodes in one range");
	om_map_release(&m);
}

static void errors(void)
{
	REFUSED("1 10.0.0.1 1\n2 10.0.0.2 1\n\n2 10.0.0.9 1\n", 4, "duplicate node id 2 (already at line 2)",
		"duplicate id");
	REFUSED("1 10.0.0.1 4\n# x\n3 10.0.0.9 1\n", 3, "duplicate node id 3", "duplicate id inside a range");
	REFUSED("3 10.0.0.9 1\n1 10.0.0.1 4\n", 2, "duplicate node id 3 (already at line 1)",
		"a range over an earlier id");
	REFUSED("1 10.0.0.1 1\n2 10.0.0.1 1\n", 2, "duplicate address 10.0.0.1", "duplicate address");
	REFUSED("1 10.0.0.1 4\n9 10.0.0.3 1\n", 2, "duplicate address 10.0.0.3", "duplicate address inside a range");
	REFUSED("1 10.0.0.1 1\n2 10.0.0.2 1\n2 10.0.0.1 ALIAS\n", 3, "duplicate address 10.0.0.1", "alias = a node");
	REFUSED("1 10.0.0.1 1 1 10.5.0.1 ALIAS\n2 10.5.0.1 1\n", 2, "already an ALIAS of node 1",
		"node address = an alias");
	REFUSED("1 2001:db8::1 1\n2 2001:DB8:0::1 1\n", 2, "duplicate address 2001:db8::1", "IPv6 compared by value");
	REFUSED("1 Node1 1\n2 node1 1\n", 2, "duplicate address node1", "host names compared without case");
	REFUSED("\n0 10.0.0.1 1\n", 2, "node id 0 is out of range", "id 0");
	REFUSED("16777216 10.0.0.1 1\n", 1, "out of range", "id > OM_MAP_MAX_ID");
	REFUSED("99999999999999999999 10.0.0.1 1\n", 1, "not a node id", "an id too long");
	REFUSED("16777210 10.0.0.1 7\n", 1, "node ids go up to 16777215", "a range past the last id");
	REFUSED("1 10.0.0.1 1\n2 10.0.0.2 0\n", 2, "range 0", "range 0");
	REFUSED("1 10.0.0.1 x\n", 1, "range `x` of node 1 is not a number", "range not a number");
	REFUSED("1 10.0.0.1 -1\n", 1, "is not a number", "negative range");
	REFUSED("1 10.0.0.1 65537\n", 1, "at most 65536 nodes", "range over the limit");
	REFUSED("1 10.0.0.0 65536\n70000 10.1.0.0 1\n", 2, "more than 65536 nodes", "total nodes over the limit");
	REFUSED("1 node1 2\n", 1, "a host name takes range 1", "host name with range 2");
	REFUSED("1 255.255.255.254 3\n", 1, "runs past 255.255.255.255", "IPv4 range overflow");
	REFUSED("1 ::fffe 3\n", 1, "runs past the last group", "IPv6 range overflow");
	REFUSED("1 10.0.0.1 1\n2 10.0.0.2\n3 10.0.0.3 1\n", 2, "cut short", "a triple cut short at end of line");
	REFUSED("1 10.0.0.1 1 2\n", 1, "entry `2` is cut short", "one token left on a line");
	REFUSED("1 10.0.0.1 1\n2", 2, "cut short", "a triple cut short at end of file");
	REFUSED("1 10.0.0.1 1\nnode2 10.0.0.2 1\n", 2, "`node2` is not a node id", "garbage id");
	REFUSED("1 10.0.0.1 1 |\n", 1, "`|` is not a node id", "the HOWTO's table bar");
	REFUSED("1 10.0.0.300 1\n", 1, "not a valid IPv4 address", "bad IPv4");
	REFUSED("1 10.0.0.01 1\n", 1, "not a valid IPv4 address", "IPv4 with a leading zero");
	REFUSED("1 2001:db8:::1 1\n", 1, "not a valid IPv6 address", "bad IPv6");
	REFUSED("1 bad_name! 1\n", 1, "not a valid address", "bad host name");
	REFUSED("1 -node 1\n", 1, "not a valid address", "host name starting with -");
	REFUSED("\n\n1 10.0.0.1 1\n7 10.0.0.7 ALIAS\n", 4, "ALIAS 10.0.0.7 of node 7, which the map does not define",
		"alias for an unknown node");
	REFUSED("1 10.0.0.1 1\n2 10.0.0.1 1\n3 10.0.0.3\n", 2, "duplicate address", "earliest error wins");
	refused("1 10.0.0.1 1\n2 10.0.\0.2 1\n", 26, 2, "NUL byte", "NUL byte");
	refused("# \0\n", 4, 1, "NUL byte", "NUL byte in a comment");
	REFUSED("1 10.0.0.1 1 \x01\xff\n", 1, "`\\x01\\xff` is not a node id", "unprintable garbage is escaped");

	{
		size_t big = (1u << 20) + 1;
		char *t = malloc(big);
		om_error_t err = NULL;
		struct om_map m;
		memset(t, '#', big);
		int rc = om_map_parse(t, big, "t.map", &m, &err);
		ok(rc < 0 && err->status == OM_EUSAGE && strstr(err->msg, "larger than 1 MiB") != NULL,
		   "a map over 1 MiB is refused: %s", err ? err->msg : "");
		om_error_release(&err);
		ok(om_map_parse(t, big - 1, "t.map", &m, &err) == 0 && m.n == 0, "a map of exactly 1 MiB is read");
		om_map_release(&m);
		free(t);
	}
}

static void find(void)
{
	struct om_map m;

	if (!parse("1 10.0.0.1 3\n2 10.9.0.2 ALIAS\n7 2001:db8::7 1\n8 gw.example.org 1\n8 fd00::8 ALIAS\n", &m)) {
		skip(9, "map not parsed");
		return;
	}
	ok(om_map_find(&m, "2") == &m.nodes[1], "find by id");
	ok(om_map_find(&m, "0002") == &m.nodes[1], "find by id with leading zeros");
	ok(om_map_find(&m, "4") == NULL && om_map_find(&m, "99999999999999999999") == NULL, "unknown id: NULL");
	ok(om_map_find(&m, "10.0.0.3") == &m.nodes[2], "find by address in a range");
	ok(om_map_find(&m, "10.9.0.2") == &m.nodes[1], "find by alias");
	ok(om_map_find(&m, "2001:DB8:0:0::7") == &m.nodes[3], "find IPv6 by value");
	ok(om_map_find(&m, "GW.example.org") == &m.nodes[4] && om_map_find(&m, "fd00:0::8") == &m.nodes[4],
	   "find by host name (any case) and by IPv6 alias");
	ok(om_map_find(&m, "10.0.0.9") == NULL && om_map_find(&m, "nosuch") == NULL && om_map_find(&m, "") == NULL &&
	       om_map_find(&m, "10.0.0.01") == NULL,
	   "unknown addresses: NULL");
	ok(om_map_find(NULL, "1") == NULL && om_map_find(&m, NULL) == NULL, "NULL map or key: NULL");
	om_map_release(&m);
}

/* A local non-loopback IPv4 address, if this host has one. */
static bool other_local_v4(char *buf, size_t size)
{
	struct ifaddrs *ifa = NULL;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (struct ifaddrs *i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf, (socklen_t)size);
		found = strncmp(buf, "127.", 4) != 0;
	}
	freeifaddrs(ifa);
	return found;
}

/* Is this text one of this host's interface addresses? */
static bool local_text(const char *text)
{
	struct ifaddrs *ifa = NULL;
	char buf[INET6_ADDRSTRLEN];
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return true;
	for (struct ifaddrs *i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
		else if (i->ifa_addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, buf, sizeof(buf));
		else
			continue;
		found = strcmp(buf, text) == 0;
	}
	freeifaddrs(ifa);
	return found;
}

static void self(void)
{
	struct om_map m = {0};
	const struct om_map_node *n = NULL;
	om_error_t err = NULL;
	char other[INET_ADDRSTRLEN], text[256];

	if (parse("1 192.0.2.1 1\n2 127.0.0.1 1\n3 198.51.100.3 1\n", &m)) {
		ok(om_map_self(&m, &n, &err) == 0 && n != NULL && n->id == 2, "127.0.0.1 in the map: this is node 2");
		om_error_release(&err);
	}
	om_map_release(&m);
	if (parse("1 192.0.2.1 1\n2 198.51.100.2 1\n2 127.0.0.1 ALIAS\n", &m)) {
		ok(om_map_self(&m, &n, &err) == 0 && n != NULL && n->id == 2, "found by its ALIAS 127.0.0.1");
		om_error_release(&err);
	}
	om_map_release(&m);
	/* a map without this host's addresses (this host may have TEST-NET
	 * addresses of its own: a lab's; pick ones it has not) */
	if (!local_text("203.0.113.77") && !local_text("203.0.113.78") && !local_text("2001:db8::77") &&
	    parse("# none of this host\n1 203.0.113.77 2\n2001 2001:db8::77 1\n", &m)) {
		int rc = om_map_self(&m, &n, &err);
		ok(rc < 0 && n == NULL && err->status == OM_ENOTFOUND && strstr(err->msg, "127.0.0.1") != NULL &&
		       strstr(err->msg, "not in the map t.map") != NULL,
		   "no local address: OM_ENOTFOUND naming the host's addresses: %s", err ? err->msg : "");
		om_error_release(&err);
	} else {
		skip(1, "203.0.113.77 or 2001:db8::77 is this host's");
	}
	om_map_release(&m);
	if (other_local_v4(other, sizeof(other))) {
		snprintf(text, sizeof(text), "1 127.0.0.1 1\n2 %s 1\n", other);
		if (parse(text, &m)) {
			int rc = om_map_self(&m, &n, &err);
			ok(rc < 0 && err->status == OM_EUSAGE && strstr(err->msg, "node 1") &&
			       strstr(err->msg, "node 2"),
			   "two nodes are this host: OM_EUSAGE: %s", err ? err->msg : "");
			om_error_release(&err);
		}
		om_map_release(&m);
	} else {
		skip(1, "no non-loopback IPv4 address on this host");
	}
}

static void load(void)
{
	char path[] = "/tmp/test-map-XXXXXX";
	int fd = mkstemp(path);
	struct om_map m;
	om_error_t err = NULL;
	const char text[] = "1 10.0.0.1 2\nx\n";

	if (fd < 0 || write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1)) {
		skip(2, "cannot write a temporary file");
		return;
	}
	close(fd);
	int rc = om_map_load(path, &m, &err);
	ok(rc < 0 && err->status == OM_EUSAGE && strstr(err->msg, ":2: ") != NULL &&
	       strncmp(err->msg, path, strlen(path)) == 0,
	   "om_map_load names the file and line: %s", err ? err->msg : "");
	om_error_release(&err);
	unlink(path);
	ok(om_map_load(path, &m, &err) < 0 && err->status == ENOENT, "a missing map: ENOENT");
	om_error_release(&err);
}

int main(void)
{
	seed_examples();
	layout();
	errors();
	find();
	self();
	load();
	return done_testing();
}
