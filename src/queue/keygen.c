/*
 * smtpq dkim-keygen.  See keygen.h and smtpq(8).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "lib/dkim.h"
#include "lib/str.h"
#include "keygen.h"

#define TXT_CHUNK	255	/* bytes in one DNS character-string */

static int
usage(void)
{
	fprintf(stderr, "usage: smtpq dkim-keygen [-t rsa|ed25519] [-b bits] "
	    "domain selector keyfile\n");
	return EX_USAGE;
}

static int
dns_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

int
keygen_main(int argc, char **argv)
{
	const char *type = "rsa", *dom, *sel, *path;
	struct dkim_key *k;
	struct str rec;
	char err[512], *end;
	unsigned long bits = 2048;
	size_t i;
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "t:b:")) != -1) {
		switch (ch) {
		case 't':
			type = optarg;
			break;
		case 'b':
			bits = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg)
				return usage();
			break;
		default:
			return usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		return usage();
	dom = argv[0];
	sel = argv[1];
	path = argv[2];
	if (!dns_name(dom) || !dns_name(sel)) {
		fprintf(stderr, "smtpq: bad domain or selector\n");
		return EX_USAGE;
	}
	if (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0) {
		fprintf(stderr, "smtpq: key type must be rsa or ed25519\n");
		return EX_USAGE;
	}
	if (dkim_keygen(type, (unsigned int)(bits > 65536 ? 0 : bits), path,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpq: %s\n", err);
		return access(path, F_OK) == 0 ? EX_CANTCREAT : EX_USAGE;
	}
	if ((k = dkim_key_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smtpq: %s\n", err);
		return EX_SOFTWARE;
	}
	str_init(&rec, 16384);
	if (dkim_key_record(k, &rec) == -1) {
		fprintf(stderr, "smtpq: cannot make the DNS record\n");
		dkim_key_free(&k);
		return EX_SOFTWARE;
	}
	/* Zone file syntax; a long record is split in 255-byte strings. */
	printf("%s._domainkey.%s. IN TXT (", sel, dom);
	for (i = 0; i < rec.len; i += TXT_CHUNK)
		printf(" \"%.*s\"", (int)(rec.len - i < TXT_CHUNK ?
		    rec.len - i : TXT_CHUNK), rec.s + i);
	printf(" )\n");
	str_free(&rec);
	dkim_key_free(&k);
	return fflush(stdout) == EOF ? EX_IOERR : EX_OK;
}
