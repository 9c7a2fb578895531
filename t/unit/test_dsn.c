#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/agent.h"
#include "queue/dsn.h"
#include "tests.h"

struct fixture {
	FILE		*f;
	struct envelope	*env;
};

static int
load(struct fixture *fx, const char *envelope, const char *message)
{
	char err[256];

	if ((fx->f = tmpfile()) == NULL)
		return -1;
	fputs(envelope, fx->f);
	fputs(message, fx->f);
	fflush(fx->f);
	return envelope_read(fileno(fx->f), &fx->env, err, sizeof(err));
}

static void
unload(struct fixture *fx)
{
	envelope_free(&fx->env);
	fclose(fx->f);
}

static char *
build(struct fixture *fx, enum dsn_kind kind, struct dsn_rcpt *r, size_t n,
    size_t bounce_size)
{
	struct dsn_report rep;
	struct str out;
	char err[256];

	memset(&rep, 0, sizeof(rep));
	rep.kind = kind;
	rep.hostname = "mx.example.com";
	rep.queue_id = "1K1375QXW1J630BV";
	rep.env = fx->env;
	rep.fd = fileno(fx->f);
	rep.bounce_size = bounce_size;
	rep.retry_until = 1700086400;
	rep.rcpts = r;
	rep.nrcpts = n;
	if (dsn_build(&rep, "2AAAAAAAAAAAAAAA", &out, err, sizeof(err)) == -1)
		return NULL;
	return out.s;
}

static const char message[] =
    "Subject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nthe body\r\n";

static void
test_failure(void)
{
	struct fixture fx;
	struct reply last = { 550, "5.1.1", "no such user" };
	struct dsn_rcpt r = { "bob@example.com", "rfc822;Bob+2B1@example.com",
	    "failed", &last, "mx.example.net", 1700000000 };
	char *d;

	CU_ASSERT_EQUAL_FATAL(load(&fx, "smtpd-spool 1\nid 1K1375QXW1J630BV\n"
	    "arrival 1700000000\nfrom <alice@example.org>\n"
	    "rcpt <bob@example.com>\nenvid E+2B1\n\n", message), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d = build(&fx, DSN_FAILURE, &r, 1, 65536));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "To: <alice@example.org>\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Content-Type: multipart/report; "
	    "report-type=delivery-status;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Auto-Submitted: auto-replied\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Reporting-MTA: dns; mx.example.com\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Original-Envelope-Id: E+1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "\r\nFinal-Recipient: rfc822; "
	    "bob@example.com\r\nOriginal-Recipient: rfc822; Bob+1@example.com"
	    "\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; "
	    "mx.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user"
	    "\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Content-Type: message/rfc822\r\n\r\n"
	    "Subject: hello\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "the body\r\n\r\n--2AAAAAAAAAAAAAAA/"
	    "mx.example.com--\r\n"));
	/* No bare LF anywhere: the spool holds CRLF text. */
	{
		char *p;

		for (p = d; (p = strchr(p, '\n')) != NULL; p++)
			CU_ASSERT(p > d && p[-1] == '\r');
	}
	free(d);
	unload(&fx);
}

static void
test_headers_only(void)
{
	struct fixture fx;
	struct dsn_rcpt r = { "bob@example.com", NULL, "failed", NULL, NULL,
	    0 };
	char *d;

	/* RET=HDRS */
	CU_ASSERT_EQUAL_FATAL(load(&fx, "smtpd-spool 1\nid X\narrival 1\n"
	    "from <a@example.org>\nrcpt <bob@example.com>\nret HDRS\n\n",
	    message), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d = build(&fx, DSN_FAILURE, &r, 1, 65536));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Content-Type: text/rfc822-headers"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Subject: hello\r\n"));
	CU_ASSERT_PTR_NULL(strstr(d, "the body"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Status: 5.0.0\r\n"));
	CU_ASSERT_PTR_NULL(strstr(d, "Diagnostic-Code"));
	free(d);
	unload(&fx);

	/* Larger than bounce_size. */
	CU_ASSERT_EQUAL_FATAL(load(&fx, "smtpd-spool 1\nid X\narrival 1\n"
	    "from <a@example.org>\nrcpt <bob@example.com>\n\n", message), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d = build(&fx, DSN_FAILURE, &r, 1, 10));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "larger than 10 bytes"));
	CU_ASSERT_PTR_NULL(strstr(d, "the body"));
	free(d);

	/* Delay warnings carry the header only, and the retry horizon. */
	r.action = "delayed";
	CU_ASSERT_PTR_NOT_NULL_FATAL(d = build(&fx, DSN_DELAY, &r, 1, 65536));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Subject: Delayed Mail"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Action: delayed\r\nStatus: 4.0.0\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Will-Retry-Until: "));
	CU_ASSERT_PTR_NULL(strstr(d, "the body"));
	free(d);
	unload(&fx);
}

static void
test_queue_refuses_null_sender(void)
{
	struct fixture fx;
	struct dsn_report rep;
	char err[256], id[32];

	CU_ASSERT_EQUAL_FATAL(load(&fx, "smtpd-spool 1\nid X\narrival 1\n"
	    "from <>\nrcpt <bob@example.com>\n\n", message), 0);
	memset(&rep, 0, sizeof(rep));
	rep.env = fx.env;
	CU_ASSERT_EQUAL(dsn_queue(NULL, &rep, id, sizeof(id), err,
	    sizeof(err)), -1);
	unload(&fx);
}

/* 1,000 failed recipients with long texts: a bounded report all the same. */
static void
test_many_recipients(void)
{
	static struct reply last = { 550, "5.3.0", "" };
	struct fixture fx;
	struct dsn_rcpt *r;
	struct dsn_report rep;
	struct str out;
	char (*names)[64], err[256], *d;
	size_t i, n = 1000;

	memset(last.text, 'x', sizeof(last.text) - 1);
	CU_ASSERT_EQUAL_FATAL(load(&fx, "smtpd-spool 1\nid X\narrival 1\n"
	    "from <alice@example.org>\nrcpt <bob@example.com>\n\n", message),
	    0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = calloc(n, sizeof(*r)));
	CU_ASSERT_PTR_NOT_NULL_FATAL(names = calloc(n, sizeof(*names)));
	for (i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "user%zu@example.com", i);
		r[i].mailbox = names[i];
		r[i].action = "failed";
		r[i].reply = &last;
		r[i].mta = "";
	}
	d = build(&fx, DSN_FAILURE, r, n, 65536);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT(strlen(d) < 256 * 1024);
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "<user0@example.com>: 550 5.3.0 xxx"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Final-Recipient: rfc822; "
	    "user49@example.com\r\n"));
	CU_ASSERT_PTR_NULL(strstr(d, "user50@example.com"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "... and 950 more recipients\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "Subject: hello\r\n"));
	free(d);

	/* The fallback: one recipient, the count, no original. */
	memset(&rep, 0, sizeof(rep));
	rep.kind = DSN_FAILURE;
	rep.hostname = "mx.example.com";
	rep.env = fx.env;
	rep.fd = -1;
	rep.rcpts = r;
	rep.nrcpts = n;
	rep.minimal = 1;
	CU_ASSERT_EQUAL_FATAL(dsn_build(&rep, "2AAAAAAAAAAAAAAA", &out, err,
	    sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out.s, "1000 recipients failed.\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out.s, "... and 999 more recipients"));
	CU_ASSERT_PTR_NULL(strstr(out.s, "Subject: hello"));
	CU_ASSERT(out.len < 16 * 1024);
	free(out.s);
	free(names);
	free(r);
	unload(&fx);
}

int
suite_dsn(void)
{
	CU_pSuite s = CU_add_suite("dsn", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "failure report", test_failure) == NULL ||
	    CU_add_test(s, "headers only", test_headers_only) == NULL ||
	    CU_add_test(s, "never a bounce to a bounce",
	    test_queue_refuses_null_sender) == NULL ||
	    CU_add_test(s, "many recipients", test_many_recipients) == NULL)
		return -1;
	return 0;
}
