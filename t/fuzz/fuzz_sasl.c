/*
 * SMTP AUTH as the session drives it: the first line is AUTH's argument
 * (mechanism and initial response), each further line a client response
 * to a 334 challenge.  The first byte picks the connection facts and the
 * enabled mechanisms.  Checks that every reply is one of the documented
 * ones and that a finished exchange stays finished.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sasl.h"
#include "auth/secrets.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct secrets *secrets;

static void
load_secrets(void)
{
	static char path[] = "/tmp/fuzz-sasl-XXXXXX";
	static const char table[] = "alice:{PLAIN}wonderland\n";
	char err[256];
	int fd;

	if ((fd = mkstemp(path)) == -1 ||
	    write(fd, table, sizeof(table) - 1) != sizeof(table) - 1 ||
	    fchmod(fd, 0600) == -1 || close(fd) == -1 ||
	    (secrets = secrets_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_sasl: %s\n", err);
		abort();
	}
	(void)unlink(path);
}

static void
check_reply(enum sasl_result r, const struct reply *rep)
{
	if ((int)r < 0 || r >= SASL_NRESULTS ||
	    strlen(rep->text) >= sizeof(rep->text) ||
	    (r == SASL_CONTINUE) != (rep->code == 334) ||
	    (r != SASL_CONTINUE && rep->status[0] == '\0') ||
	    rep->code < 200 || rep->code > 599)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sasl_conf conf;
	struct reply rep;
	struct sasl *sa = NULL;
	enum sasl_result r;
	char *buf, *line, *nl, mech[SASL_MECH_MAX + 1];
	const char *ir;

	if (secrets == NULL)
		load_secrets();
	if (size == 0 || size > 4 * SASL_LINE_MAX)
		return 0;
	memset(&conf, 0, sizeof(conf));
	conf.flags = data[0] & (SASL_F_TLS | SASL_F_CLEARTEXT);
	conf.mechs = (data[0] >> 2) & SASL_M_ALL;
	conf.secrets = secrets;
	conf.hostname = "mx.example.org";
	if ((buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	line = buf;
	if ((nl = memchr(line, '\n', size - 1)) != NULL)
		*nl = '\0';
	if (sasl_split(line, mech, sizeof(mech), &ir) == -1) {
		free(buf);
		return 0;
	}
	r = sasl_start(&sa, mech, ir, &conf, &rep);
	check_reply(r, &rep);
	while (r == SASL_CONTINUE && nl != NULL) {
		line = nl + 1;
		nl = memchr(line, '\n', (size_t)(buf + size - 1 - line));
		/* Lines as the session hands them over, with their LF. */
		r = sasl_step(sa, line, nl != NULL ? (size_t)(nl + 1 - line) :
		    (size_t)(buf + size - 1 - line), &rep);
		check_reply(r, &rep);
	}
	if (sa != NULL) {
		if (strlen(sasl_user(sa)) > SASL_USER_MAX)
			__builtin_trap();
		(void)sasl_mech(sa);
		(void)sasl_why(sa);
		if (r != SASL_CONTINUE &&
		    sasl_step(sa, "*", 1, &rep) != SASL_TEMPFAIL)
			__builtin_trap();
	}
	sasl_free(&sa);
	free(buf);
	return 0;
}
