/*
 * dovecotq: asks Dovecot what smtpd and smtpq ask it, for the end-to-end
 * tests against a private Dovecot.
 *
 *   dovecotq user SOCKET NAME	userdb lookup through the "dovecot:SOCKET"
 *				table: prints yes, no or tempfail
 *   dovecotq auth SOCKET NAME	password check, the password read from
 *				the first line of standard input: prints
 *				ok, fail or tempfail
 *
 * Exit status: 0 yes/ok, 1 no/fail, 75 (EX_TEMPFAIL) tempfail, 64 usage.
 * Errors about Dovecot itself go to standard error.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "auth/dovecot.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/table.h"

int
main(int argc, char **argv)
{
	char pass[SECRETS_PASS_MAX + 2], ref[TABLE_REF_MAX], err[512];
	struct table *t;
	enum table_result r;
	size_t len;

	log_init("dovecotq", 1, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: dovecotq user|auth SOCKET NAME\n");
		return EX_USAGE;
	}
	if (strcmp(argv[1], "user") == 0) {
		snprintf(ref, sizeof(ref), "dovecot:%s", argv[2]);
		if ((t = table_open(ref, err, sizeof(err))) == NULL) {
			fprintf(stderr, "dovecotq: %s\n", err);
			return EX_USAGE;
		}
		r = table_lookup(t, argv[3], NULL, 0, err, sizeof(err));
		table_free(&t);
		switch (r) {
		case TABLE_FOUND:
			printf("yes\n");
			return 0;
		case TABLE_NOTFOUND:
			printf("no\n");
			return 1;
		default:
			fprintf(stderr, "dovecotq: %s\n", err);
			printf("tempfail\n");
			return EX_TEMPFAIL;
		}
	}
	if (strcmp(argv[1], "auth") != 0) {
		fprintf(stderr, "usage: dovecotq user|auth SOCKET NAME\n");
		return EX_USAGE;
	}
	if (fgets(pass, sizeof(pass), stdin) == NULL) {
		fprintf(stderr, "dovecotq: no password on standard input\n");
		return EX_USAGE;
	}
	len = strcspn(pass, "\n");
	switch (dovecot_auth_verify(argv[2], argv[3], pass, len)) {
	case SECRETS_OK:
		str_wipe(pass, sizeof(pass));
		printf("ok\n");
		return 0;
	case SECRETS_FAIL:
		str_wipe(pass, sizeof(pass));
		printf("fail\n");
		return 1;
	default:
		str_wipe(pass, sizeof(pass));
		printf("tempfail\n");
		return EX_TEMPFAIL;
	}
}
