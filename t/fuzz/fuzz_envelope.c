/*
 * The envelope of a queue file, parsed, written again as smtpd writes it
 * (spool_begin()) and read back (qenv_read()): what comes back must be
 * what was parsed, but for the new queue id and control characters,
 * which the writer turns into '?'.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/qenv.h"
#include "queue/spool.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct spool *sp;

/* a as written (control characters as '?') equals b; NULLs alike. */
static int
same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (((unsigned char)*a < 0x20 || *a == 0x7f ? '?' : *a) != *b)
			return 0;
	return *a == *b;
}

static const char *
notify_list(int bits, char *buf, size_t len)
{
	if (bits == 0)
		return NULL;
	if (bits & QENV_NOTIFY_NEVER) {
		snprintf(buf, len, "NEVER");
		return buf;
	}
	snprintf(buf, len, "%s%s%s", bits & QENV_NOTIFY_SUCCESS ?
	    "SUCCESS," : "", bits & QENV_NOTIFY_FAILURE ? "FAILURE," : "",
	    bits & QENV_NOTIFY_DELAY ? "DELAY," : "");
	buf[strlen(buf) - 1] = '\0';
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/fuzz-envelope-XXXXXX";
	struct spool_envelope env;
	struct spool_rcpt *r;
	struct spool_msg *m;
	struct qenv *q = NULL, *q2 = NULL;
	char err[256], (*nb)[40];
	size_t i;
	int fd;

	if (sp == NULL) {
		if (mkdtemp(dir) == NULL ||
		    (sp = spool_open(dir, 0, err, sizeof(err))) == NULL)
			abort();
	}
	if (qenv_parse((const char *)data, size, &q, err, sizeof(err)) != 0)
		return 0;
	r = calloc(q->nrcpts + 1, sizeof(*r));
	nb = calloc(q->nrcpts + 1, sizeof(*nb));
	if (r == NULL || nb == NULL)
		abort();
	for (i = 0; i < q->nrcpts; i++) {
		r[i].addr = q->rcpts[i].mailbox;
		r[i].notify = notify_list(q->rcpts[i].notify, nb[i],
		    sizeof(nb[i]));
		r[i].orcpt = q->rcpts[i].orcpt;
	}
	memset(&env, 0, sizeof(env));
	env.sender = q->sender;
	env.rcpts = r;
	env.nrcpts = q->nrcpts;
	env.ret = q->ret == QENV_RET_FULL ? "FULL" : q->ret == QENV_RET_HDRS ?
	    "HDRS" : NULL;
	env.envid = q->envid;
	env.auth = q->auth;
	env.helo = q->helo;
	env.peer_addr = q->peer;
	env.peer_name = q->peer_name;
	env.protocol = q->protocol;
	env.body = q->body;
	env.smtputf8 = q->smtputf8;
	env.requiretls = q->requiretls;
	env.arrival = q->arrival;
	env.user = q->user;
	if ((m = spool_begin(sp, &env)) == NULL ||
	    (fd = spool_msg_read_fd(m)) == -1)
		abort();
	if (qenv_read(fd, &q2, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_envelope: written back: %s\n", err);
		__builtin_trap();
	}
	close(fd);
	spool_abort(&m);
	if (q2->arrival != q->arrival || !same(q->sender, q2->sender) ||
	    q2->nrcpts != q->nrcpts || q2->ret != q->ret ||
	    !same(q->envid, q2->envid) || !same(q->auth, q2->auth) ||
	    !same(q->helo, q2->helo) || !same(q->peer, q2->peer) ||
	    !same(q->peer_name, q2->peer_name) ||
	    !same(q->protocol, q2->protocol) || !same(q->body, q2->body) ||
	    q2->smtputf8 != q->smtputf8 || q2->requiretls != q->requiretls ||
	    !same(q->user, q2->user))
		__builtin_trap();
	for (i = 0; i < q->nrcpts; i++)
		if (!same(q->rcpts[i].mailbox, q2->rcpts[i].mailbox) ||
		    q2->rcpts[i].notify != q->rcpts[i].notify ||
		    !same(q->rcpts[i].orcpt, q2->rcpts[i].orcpt))
			__builtin_trap();
	free(r);
	free(nb);
	qenv_free(&q);
	qenv_free(&q2);
	return 0;
}
