/* storage/imgcli.h — what the store's two commands share, omdecode(8) and
 * omimg(8): printing a manifest (text and JSON) and parsing a reference to a
 * generation ("G", "G/GEN", "G/gen-GEN", "G/all").
 *
 * This file prints, so it is not part of libom (which never prints): it is
 * compiled into each command that uses it (Makefile.am) and into its unit
 * test (tests/unit/test-imgcli.c).
 */
#ifndef OM_IMGCLI_H
#define OM_IMGCLI_H

#include "error.h"
#include "om.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- G[/GEN] ---- */

struct om_img_ref {
	unsigned long id; /* the miggroup (or PID with omimg --pids), 1..id_max */
	uint64_t gen;	  /* the generation; 0: not given (the newest) */
	bool all;	  /* "G/all": every generation */
};

/* Parse "G", "G/GEN", "G/gen-GEN" or "G/all" (the last only when allow_all):
 * G is a decimal 1..id_max, GEN a decimal 1..2^63-1; no signs, spaces, empty
 * parts or anything after. OM_EUSAGE naming the argument otherwise. */
int om_img_ref_parse(const char *s, unsigned long id_max, bool allow_all, struct om_img_ref *ref, om_error_t *err);
/* Does s look like a reference rather than a path? (a digit first and, after
 * the first '/', no other '/'): what omimg tries first, before a path. */
bool om_img_ref_like(const char *s);

/* ---- small renderings ---- */

/* "512 B", "1.5 KiB", "3.2 GiB" */
void om_img_size(uint64_t v, char *buf, size_t len);
/* "2026-12-02T19:33:11Z" (UTC) of nanoseconds since the epoch; "?" when out of range */
void om_img_time(int64_t ns, char *buf, size_t len);
/* "42 s", "5 min 3 s", "3 h 12 min", "2 d 4 h"; "in the future" for a negative age */
void om_img_age(double seconds, char *buf, size_t len);
/* Seconds from then_ns to now_ns. */
double om_img_age_seconds(int64_t then_ns, int64_t now_ns);
/* The wall clock in nanoseconds since the epoch. */
int64_t om_img_now_ns(void);
/* raw / stored, 0 when nothing is stored */
double om_img_ratio(uint64_t raw, uint64_t stored);
/* Processes of every tree of m. */
size_t om_img_processes(const Om__Manifest *m);
/* Stored files of m (trees and shared memory). */
size_t om_img_files(const Om__Manifest *m);

/* An untrusted string in text: control bytes as \xNN, NULL as "-"; returns the columns printed. */
int om_img_text(FILE *out, const char *s);
/* The same padded with spaces to width columns. */
void om_img_text_pad(FILE *out, const char *s, int width);
/* An untrusted string in JSON: invalid UTF-8 becomes U+FFFD, so the output always parses. */
void om_img_json_string(FILE *out, const char *s);
/* The same, null for NULL. */
void om_img_json_opt_string(FILE *out, const char *s);
/* A double in JSON (null when not finite). */
void om_img_json_double(FILE *out, double v);

/* The store's fence as a JSON value: {"token":T,"node":N,"generation":G}, null when token is 0. */
void om_img_json_fence(FILE *out, uint64_t token, const char *node, uint64_t gen);
/* "pinned":true|false,"pinned_by":"node pid"|null */
void om_img_json_pin(FILE *out, bool pinned, const char *holder);
/* The members of a generation's summary (omimg list, and the start of show's object):
 * "generation","time_unix_ns","time","age_seconds","node","kernel","criu_version",
 * "omtools_version","raw_bytes","stored_bytes","ratio","n_trees","processes","files","fence" */
void om_img_json_summary(FILE *out, const Om__Manifest *m, int64_t now_ns);

/* ---- a whole manifest ---- */

/* What a store knows about a generation beyond its manifest (omimg show). */
struct om_img_store_info {
	bool pinned;	      /* a live pin holds it */
	char holder[300];     /* who holds one pin ("process PID on node N") when pinned */
	uint64_t fence_token; /* STORE/<kind>/<id>/fence: 0 when none */
	char fence_node[256];
	uint64_t fence_gen;
};

struct om_img_show {
	const char *path;		       /* the manifest file, as shown */
	int64_t now_ns;			       /* for the age */
	int verified;			       /* -1: not checked, 1: every checksum matched */
	const struct om_img_store_info *store; /* NULL: a bare path (omdecode) */
};

/* Every field of m, as omdecode has always printed it, plus processes, age,
 * ratio, fence (and the store's pin and fence when s->store is set). */
void om_img_print_text(FILE *out, const Om__Manifest *m, const struct om_img_show *s);
/* The same as one JSON object and a newline. */
void om_img_print_json(FILE *out, const Om__Manifest *m, const struct om_img_show *s);

/* om_img_print_text or om_img_print_json; the text gains a last line
 * "verified: N files, all checksums match" when s->verified is 1. */
void om_img_print(FILE *out, const Om__Manifest *m, const struct om_img_show *s, bool json);

/* A generation given by a path, as omdecode and omimg show/verify PATH take it:
 * a generation directory (holding manifest.om) or a manifest file. Reads and
 * validates the manifest (*m: free with om_manifest_free); *manifest_path and
 * *gen_dir (the directory to verify) are malloc'd. */
int om_img_path_load(const char *arg, char **manifest_path, char **gen_dir, Om__Manifest **m, om_error_t *err);
/* Classify a failure to read or verify a generation for the exit status:
 * not found (ENOENT, OM_ENOTFOUND) 3, usage 2, anything else 4 (unreadable or
 * corrupt). Returns -1. */
int om_img_fail_class(om_error_t *err);

#endif
