/* omdecode — print (or verify) an omtools manifest given by its path; the
 * same as `omimg show PATH` / `omimg verify PATH` (storage/imgcli.c prints for both). */
#include "config.h"
#include "imgcli.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static const char *prog = "omdecode";

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [--json] FILE\n"
		"       %s --verify [--json] GEN_DIR\n"
		"\n"
		"Print every field of an omtools manifest. FILE is a manifest.om or a\n"
		"generation directory (STORE/groups/<G>/gen-<N>) holding one.\n"
		"\n"
		"  -j, --json     print JSON instead of text\n"
		"  -c, --verify   also re-hash every stored file of the generation\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n"
		"\n"
		"Exit status: 0 ok, 2 usage, 3 not found, 4 corrupt or unreadable.\n",
		prog, prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"verify", no_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	cleanup_om_error om_error_t err = NULL;
	cleanup_free char *manifest_path = NULL;
	cleanup_free char *gen_dir = NULL;
	bool json = false, verify = false;
	Om__Manifest *m = NULL;
	const char *arg;
	int c;

	while ((c = getopt_long(argc, argv, "jchV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'c':
			verify = true;
			break;
		case 'V':
			printf("%s (omtools) %s\n", prog, PACKAGE_VERSION);
			return OM_EXIT_OK;
		case 'h':
			usage(stdout);
			return OM_EXIT_OK;
		default:
			usage(stderr);
			return OM_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "%s: expected exactly one FILE\n", prog);
		usage(stderr);
		return OM_EXIT_USAGE;
	}
	arg = argv[optind];

	if (om_img_path_load(arg, &manifest_path, &gen_dir, &m, &err) < 0)
		goto fail;
	if (verify && om_gen_dir_verify(gen_dir, m, &err) < 0) {
		om_manifest_free(m);
		goto fail;
	}
	om_img_print(
	    stdout, m,
	    &(struct om_img_show){.path = manifest_path, .now_ns = om_img_now_ns(), .verified = verify ? 1 : -1}, json);
	om_manifest_free(m);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		om_make_error(&err, errno, "write output");
		goto fail;
	}
	return OM_EXIT_OK;
fail:
	om_img_fail_class(&err);
	om_error_print(stderr, prog, err);
	return om_error_exit_code(err);
}
