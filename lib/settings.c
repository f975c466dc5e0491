/* lib/settings.c — omtools.conf into struct om_config (see settings.h). */
#include "config.h"
#include "settings.h"

#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OM_CONFIG_DEFAULT_FILE "/etc/omtools/omtools.conf"
#define OM_CONFIG_MAX_BYTES (1u << 20)

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int set_str(char **slot, const char *value, om_error_t *err)
{
	char *dup = strdup(value);
	if (dup == NULL)
		return om_make_error(err, ENOMEM, "config");
	free(*slot);
	*slot = dup;
	return 0;
}

int om_config_set(struct om_config *cfg, const char *key, const char *value, om_error_t *err)
{
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
	    {"store", offsetof(struct om_config, store)},
	    {"node", offsetof(struct om_config, node)},
	    {"map", offsetof(struct om_config, map)},
	    {"etcd", offsetof(struct om_config, etcd)},
	    {"etcd_ca", offsetof(struct om_config, etcd_ca)},
	    {"etcd_cert", offsetof(struct om_config, etcd_cert)},
	    {"etcd_key", offsetof(struct om_config, etcd_key)},
	    {"etcd_prefix", offsetof(struct om_config, etcd_prefix)},
	};
	unsigned long n;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strcmp(key, strs[i].key) == 0)
			return set_str((char **)((char *)cfg + strs[i].off), value, err);
	if (strcmp(key, "lease_ttl") == 0) {
		if (om_parse_uint(value, 3600, &n) < 0 || n < 2)
			return om_make_error(err, OM_EUSAGE, "lease_ttl must be 2 to 3600 seconds, not `%s`", value);
		cfg->lease_ttl = (int)n;
		return 0;
	}
	if (strcmp(key, "keep") == 0) {
		if (om_parse_uint(value, 100000, &n) < 0)
			return om_make_error(err, OM_EUSAGE, "keep must be a number of generations, not `%s`", value);
		cfg->keep = (unsigned)n;
		return 0;
	}
	return om_make_error(err, OM_EUSAGE, "unknown setting `%s`", key);
}

static int config_defaults(struct om_config *cfg, om_error_t *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->lease_ttl = OM_DEFAULT_LEASE_TTL;
	return set_str(&cfg->etcd_prefix, OM_DEFAULT_ETCD_PREFIX, err);
}

int om_config_load(const char *path, struct om_config *cfg, om_error_t *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0, lineno = 0;
	char *line, *next;
	int rc;

	if (config_defaults(cfg, err) < 0)
		return -1;
	if (path == NULL || *path == '\0')
		path = OM_CONFIG_DEFAULT_FILE;
	rc = om_read_file_at(AT_FDCWD, path, &text, &len, OM_CONFIG_MAX_BYTES, err);
	if (rc < 0) {
		if ((*err)->status == ENOENT) {
			om_error_release(err);
			return 0;
		}
		om_config_release(cfg);
		return om_error_wrap(err, "read configuration");
	}
	if (set_str(&cfg->path, path, err) < 0)
		goto fail;
	if (memchr(text, '\0', len)) {
		om_make_error(err, OM_EUSAGE, "%s: a NUL byte: not a configuration file", path);
		goto fail;
	}
	for (line = text; line; line = next) {
		char *eq, *key, *val;
		size_t vlen;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "#")] = '\0';
		if (*trim(line) == '\0')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL) {
			om_make_error(err, OM_EUSAGE, "%s:%zu: expected `key = value`", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') && val[vlen - 1] == val[0]) {
			val[vlen - 1] = '\0';
			val++;
		}
		if (*val == '\0')
			continue; /* `key =`: the default */
		if (om_config_set(cfg, key, val, err) < 0) {
			om_error_wrap(err, "%s:%zu", path, lineno);
			goto fail;
		}
	}
	return 0;
fail:
	om_config_release(cfg);
	return -1;
}

void om_config_release(struct om_config *cfg)
{
	free(cfg->path);
	free(cfg->store);
	free(cfg->node);
	free(cfg->map);
	free(cfg->etcd);
	free(cfg->etcd_ca);
	free(cfg->etcd_cert);
	free(cfg->etcd_key);
	free(cfg->etcd_prefix);
	memset(cfg, 0, sizeof(*cfg));
}
