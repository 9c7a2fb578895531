/*
 * makemap: the smtpq command that builds CDB tables.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "makemap.h"
#include "str.h"
#include "table.h"

int
makemap_main(int argc, char *argv[])
{
	const char *type = "cdb", *src;
	char dst[PATH_MAX], err[1024];
	size_t n;
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "t:")) != -1) {
		switch (ch) {
		case 't':
			type = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 1)
		goto usage;
	if (strcmp(type, "cdb") != 0) {
		fprintf(stderr, "smtpq: makemap: unknown table type \"%.50s\" "
		    "(only cdb is compiled)\n", type);
		return EX_USAGE;
	}
	src = argv[optind];
	if ((size_t)snprintf(dst, sizeof(dst), "%s.cdb", src) >= sizeof(dst)) {
		fprintf(stderr, "smtpq: makemap: %s: path too long\n", src);
		return EX_USAGE;
	}
	if (access(src, R_OK) == -1) {
		fprintf(stderr, "smtpq: makemap: %s: %s\n", src,
		    strerror(errno));
		return EX_NOINPUT;
	}
	if (table_make_cdb(src, dst, &n, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpq: makemap: %s\n", err);
		return EX_DATAERR;
	}
	printf("smtpq: makemap: %s: %zu entries\n", dst, n);
	return EX_OK;
usage:
	fprintf(stderr, "usage: smtpq makemap [-t cdb] file\n");
	return EX_USAGE;
}
