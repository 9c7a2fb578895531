/*
 * Replies of a policy service (Postfix policy delegation), as smtpd reads
 * them: the input is what the service sends, arriving a line at a time;
 * each whole reply (up to its empty line) gives an action, applied to one
 * transaction.  Checks that the framing cuts where it says, that a reply
 * to the client has a code and an enhanced status code of the same class
 * and printable text, and that added header lines stay well formed and
 * within their bound.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "lib/log.h"
#include "policy/delegate.h"
#include "refusal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_REPLY_MAX	4096	/* what smtpd reads of one reply */

static void
check_verdict(enum verdict_kind k, const struct verdict *v)
{
	switch ((int)k) {
	case -1:
	case VERDICT_CONTINUE:
	case VERDICT_ACCEPT:
		return;
	case VERDICT_REJECT:
	case VERDICT_DEFER:
		if (v->kind != k)
			__builtin_trap();
		check_refusal(v, 0);
		return;
	default:
		__builtin_trap();
	}
}

/* Header lines: "name: value" CRLF each, no other control bytes. */
static void
check_prepend(const struct policy_session *ps)
{
	const char *p = ps->prepend, *end, *eol, *q;

	if (ps->prependlen > POLICY_PREPEND_MAX ||
	    (ps->prependlen > 0 && ps->prepend == NULL))
		__builtin_trap();
	/* Made when a service first asks for a header line. */
	if (p == NULL)
		return;
	end = p + ps->prependlen;
	while (p < end) {
		if ((eol = memchr(p, '\r', (size_t)(end - p))) == NULL ||
		    eol + 1 >= end || eol[1] != '\n' ||
		    (q = memchr(p, ':', (size_t)(eol - p))) == NULL || q == p)
			__builtin_trap();
		for (q = p; q < eol; q++)
			if (((unsigned char)*q < 0x20 && *q != '\t') ||
			    *q == 0x7f)
				__builtin_trap();
		p = eol + 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy_session ps;
	static int once;
	char buf[FUZZ_REPLY_MAX + 1], act[FUZZ_REPLY_MAX + 1];
	const char *s = (const char *)data, *nl;
	struct verdict v;
	enum verdict_kind k;
	size_t i = 0, got = 0, n;
	int extra, done;

	if (!once) {
		/* No syslog socket here: the module's log lines go nowhere. */
		log_init("fuzz_delegate", 0, 0);
		once = 1;
	}
	/* The last input's header lines go; their buffer with them. */
	policy_session_end(&ps);
	memset(&ps, 0, sizeof(ps));
	ps.id = "fuzz";
	while (i < size) {
		/* The next "read": up to and with a newline. */
		nl = memchr(s + i, '\n', size - i);
		n = nl != NULL ? (size_t)(nl - s) + 1 - i : size - i;
		if (n > FUZZ_REPLY_MAX - got)
			n = FUZZ_REPLY_MAX - got;
		memcpy(buf + got, s + i, n);
		got += n;
		i += n;
		buf[got] = '\0';
		if ((done = delegate_reply_end(buf, got, &extra)) == -1)
			return 0;
		if (done == 0) {
			if (got == FUZZ_REPLY_MAX)
				return 0;	/* too long: not the protocol */
			continue;
		}
		n = strlen(buf);
		if (n == 0 || n > got || buf[n - 1] != '\n' ||
		    (n > 1 && buf[n - 2] != '\n') || extra != (n < got))
			__builtin_trap();
		got = 0;
		if (delegate_reply_action(buf, act, sizeof(act)) == -1)
			continue;
		if (act[0] == '\0' || strchr(act, '\n') != NULL)
			__builtin_trap();
		memset(&v, 0, sizeof(v));
		k = delegate_apply(&ps, "fuzz", act, &v);
		check_verdict(k, &v);
		check_prepend(&ps);
	}
	return 0;
}
