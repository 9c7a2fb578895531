/*
 * The envelope of a queue file: whatever parses must come out of
 * envelope_format() in its normal form, x' = format(parse(x)), where
 * parse(x') == parse(x) and format(parse(x')) == x' byte for byte; x'
 * holds only lines whose keys x had, as many rcpt lines as x, and ends
 * with the empty line.  The spool writes the same envelope
 * (spool_begin()), and reading its file gives it back but for the new id.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "queue/envelope.h"
#include "queue/spool.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct spool *sp;

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
same_env(const struct envelope *a, const struct envelope *b, int id_too)
{
	size_t i;

	if ((id_too && strcmp(a->id, b->id) != 0) ||
	    a->arrival != b->arrival || !same_str(a->sender, b->sender) ||
	    a->nrcpts != b->nrcpts || a->ret != b->ret ||
	    !same_str(a->envid, b->envid) || !same_str(a->auth, b->auth) ||
	    !same_str(a->helo, b->helo) || !same_str(a->peer, b->peer) ||
	    !same_str(a->peer_name, b->peer_name) ||
	    !same_str(a->protocol, b->protocol) || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || a->requiretls != b->requiretls ||
	    !same_str(a->user, b->user) || !same_str(a->account, b->account))
		return 0;
	for (i = 0; i < a->nrcpts; i++)
		if (!same_str(a->rcpts[i].mailbox, b->rcpts[i].mailbox) ||
		    a->rcpts[i].notify != b->rcpts[i].notify ||
		    !same_str(a->rcpts[i].orcpt, b->rcpts[i].orcpt))
			return 0;
	return 1;
}

/* 1 if the envelope lines of x (up to its body) have a line "key...". */
static int
has_key(const char *x, size_t xlen, const char *key, size_t kl)
{
	const char *p = x, *end = x + xlen, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (nl == p)
			return 0;
		if ((size_t)(nl - p) >= kl && memcmp(p, key, kl) == 0 &&
		    (p + kl == nl || p[kl] == ' '))
			return 1;
		p = nl + 1;
	}
	return 0;
}

/* The normal form's lines are all keys that x had. */
static void
check_lines(const char *x, size_t xlen, const struct str *y)
{
	const char *p = y->s, *end = y->s + y->len, *nl, *sp2;

	if (y->len < 2 || memcmp(end - 2, "\n\n", 2) != 0)
		__builtin_trap();
	p = (const char *)memchr(p, '\n', y->len) + 1;	/* version line */
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl != p) {
		sp2 = memchr(p, ' ', (size_t)(nl - p));
		if (!has_key(x, xlen, p, sp2 ? (size_t)(sp2 - p) :
		    (size_t)(nl - p)))
			__builtin_trap();
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/fuzz-envelope-XXXXXX";
	struct envelope *q = NULL, *q2 = NULL, *q3 = NULL;
	struct spool_msg *m;
	struct str y, y2;
	char err[256];
	int fd;

	if (sp == NULL) {
		if (mkdtemp(dir) == NULL ||
		    (sp = spool_open(dir, 0, err, sizeof(err))) == NULL)
			abort();
	}
	if (envelope_parse((const char *)data, size, &q, err,
	    sizeof(err)) != 0)
		return 0;
	str_init(&y, ENVELOPE_MAX);
	str_init(&y2, ENVELOPE_MAX);
	/* What parsed is fit to be written: the parser checks as much. */
	if (envelope_format(q, &y, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_envelope: parsed, not written: %s\n",
		    err);
		__builtin_trap();
	}
	check_lines((const char *)data, size, &y);
	if (envelope_parse(y.s, y.len, &q2, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_envelope: written, not parsed: %s\n",
		    err);
		__builtin_trap();
	}
	if (!same_env(q, q2, 1) || (size_t)q2->body_off != y.len ||
	    envelope_format(q2, &y2, err, sizeof(err)) != 0 ||
	    y2.len != y.len || memcmp(y.s, y2.s, y.len) != 0)
		__builtin_trap();

	/* Through the spool: the same, with the spool's id. */
	if ((m = spool_begin(sp, q)) == NULL ||
	    (fd = spool_msg_read_fd(m)) == -1)
		abort();
	if (envelope_read(fd, &q3, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_envelope: spooled, not read: %s\n", err);
		__builtin_trap();
	}
	close(fd);
	spool_abort(&m);
	if (!same_env(q, q3, 0))
		__builtin_trap();
	str_free(&y);
	str_free(&y2);
	envelope_free(&q);
	envelope_free(&q2);
	envelope_free(&q3);
	return 0;
}
