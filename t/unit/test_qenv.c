#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/qenv.h"
#include "queue/spool.h"
#include "queue/tlsreq.h"
#include "tests.h"
#include "testutil.h"

static void
test_parse_full(void)
{
	static const char env[] =
	    "smtpd-spool 1\n"
	    "id 1K1375QXW1J630BV\n"
	    "arrival 1700000000\n"
	    "from <alice@example.org>\n"
	    "rcpt <bob@example.com> notify=SUCCESS,DELAY orcpt=rfc822;bob+2B1@example.com\n"
	    "rcpt <\"odd > name\"@example.com>\n"
	    "rcpt <Postmaster>\n"
	    "ret HDRS\n"
	    "envid ABC+2B1\n"
	    "auth alice\n"
	    "helo client.example.org\n"
	    "peer 192.0.2.1\n"
	    "protocol ESMTPA\n"
	    "body 8BITMIME\n"
	    "smtputf8\n"
	    "future-item whatever\n"
	    "\n"
	    "Subject: x\r\n\r\nbody\r\n";
	struct qenv *e;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(qenv_parse(env, sizeof(env) - 1, &e, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e->id, "1K1375QXW1J630BV");
	CU_ASSERT_EQUAL(e->arrival, 1700000000);
	CU_ASSERT_STRING_EQUAL(e->sender, "alice@example.org");
	CU_ASSERT_EQUAL_FATAL(e->nrcpts, 3);
	CU_ASSERT_STRING_EQUAL(e->rcpts[0].mailbox, "bob@example.com");
	CU_ASSERT_EQUAL(e->rcpts[0].notify, QENV_NOTIFY_SUCCESS |
	    QENV_NOTIFY_DELAY);
	CU_ASSERT_STRING_EQUAL(e->rcpts[0].orcpt, "rfc822;bob+2B1@example.com");
	CU_ASSERT_STRING_EQUAL(e->rcpts[1].mailbox, "\"odd > name\"@example.com");
	CU_ASSERT_EQUAL(e->rcpts[1].notify, 0);
	CU_ASSERT_PTR_NULL(e->rcpts[1].orcpt);
	CU_ASSERT_STRING_EQUAL(e->rcpts[2].mailbox, "Postmaster");
	CU_ASSERT_EQUAL(e->ret, QENV_RET_HDRS);
	CU_ASSERT_STRING_EQUAL(e->envid, "ABC+2B1");
	CU_ASSERT_STRING_EQUAL(e->auth, "alice");
	CU_ASSERT_STRING_EQUAL(e->protocol, "ESMTPA");
	CU_ASSERT_STRING_EQUAL(e->body, "8BITMIME");
	CU_ASSERT_EQUAL(e->smtputf8, 1);
	CU_ASSERT_EQUAL((size_t)e->body_off, strstr(env, "Subject") - env);
	qenv_free(&e);
	CU_ASSERT_PTR_NULL(e);
}

static void
test_parse_null_sender(void)
{
	static const char env[] = "smtpd-spool 1\nid X\narrival 1\nfrom <>\n"
	    "rcpt <a@b.example>\n\n";
	struct qenv *e;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(qenv_parse(env, sizeof(env) - 1, &e, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e->sender, "");
	qenv_free(&e);
}

static void
test_parse_damaged(void)
{
	static const struct {
		const char	*in;
		const char	*want;
	} cases[] = {
		{ "", "not terminated" },
		{ "hello\n\n", "not a spool file" },
		{ "smtpd-spool 2\n\n", "unsupported spool format version" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n", "not terminated" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n\n",
		    "lacks recipients" },
		{ "smtpd-spool 1\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n\n", "lacks an id" },
		{ "smtpd-spool 1\nid X\narrival -5\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n\n", "bad arrival" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example\n"
		    "rcpt <c@d.example>\n\n", "bad from" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"
		    "rcpt c@d.example\n\n", "bad rcpt" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example> notify=NEVER,DELAY\n\n", "bad notify" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example> orcpt=nosemicolon\n\n", "bad orcpt" },
		{ "smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"
		    "ret MAYBE\nrcpt <c@d.example>\n\n", "bad ret" },
		{ "smtpd-spool 1\nid X\r\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n\n", "control characters" },
	};
	struct qenv *e;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(qenv_parse(cases[i].in, strlen(cases[i].in), &e,
		    err, sizeof(err)), -1);
		CU_ASSERT_PTR_NULL(e);
		if (strstr(err, cases[i].want) == NULL)
			fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n",
			    i, err, cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
	}
}

static void
test_read_file(void)
{
	static const char data[] = "smtpd-spool 1\nid X\narrival 1\n"
	    "from <a@b.example>\nrcpt <c@d.example>\n\nmessage\r\n";
	struct qenv *e;
	char err[256];
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f = tmpfile());
	CU_ASSERT_EQUAL(fwrite(data, 1, sizeof(data) - 1, f), sizeof(data) - 1);
	fflush(f);
	CU_ASSERT_EQUAL_FATAL(qenv_read(fileno(f), &e, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(e->size, 9);
	qenv_free(&e);
	/* Cut inside the envelope: damaged. */
	CU_ASSERT_EQUAL(ftruncate(fileno(f), 20), 0);
	CU_ASSERT_EQUAL(qenv_read(fileno(f), &e, err, sizeof(err)), -2);
	fclose(f);
}

static void
test_xtext(void)
{
	char out[64];

	CU_ASSERT_EQUAL(qenv_xtext_decode("a+2Bb+3Dc", out, sizeof(out)), 5);
	CU_ASSERT_STRING_EQUAL(out, "a+b=c");
	CU_ASSERT_EQUAL(qenv_xtext_decode("bad+2", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(qenv_xtext_decode("bad+zz", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(qenv_xtext_decode("a=b", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(qenv_xtext_decode("toolong", out, 4), -1);
	CU_ASSERT_EQUAL(qenv_xtext_encode("a+b c", out, sizeof(out)), 9);
	CU_ASSERT_STRING_EQUAL(out, "a+2Bb+20c");
	CU_ASSERT_EQUAL(qenv_xtext_encode("a+b", out, 4), -1);
}

static void
test_notify(void)
{
	CU_ASSERT_EQUAL(qenv_parse_notify("never"), QENV_NOTIFY_NEVER);
	CU_ASSERT_EQUAL(qenv_parse_notify("SUCCESS,FAILURE"),
	    QENV_NOTIFY_SUCCESS | QENV_NOTIFY_FAILURE);
	CU_ASSERT_EQUAL(qenv_parse_notify("NEVER,SUCCESS"), -1);
	CU_ASSERT_EQUAL(qenv_parse_notify("SOMETIMES"), -1);
	CU_ASSERT_EQUAL(qenv_parse_notify(""), -1);
}

/* What spool_begin() writes, qenv_read() reads back: the flags too. */
static void
test_round_trip(void)
{
	const struct spool_rcpt rcpt = { "b\xc3\xbcro@example.com",
	    "FAILURE", NULL };
	struct spool_envelope env;
	struct spool_msg *m;
	struct spool *sp;
	struct qenv *e;
	char dir[256], path[512], err[256], id[SPOOL_ID_LEN + 1];
	int fd, flags;

	CU_ASSERT_EQUAL_FATAL(tu_mkdtemp(dir, sizeof(dir)), 0);
	sp = spool_open(dir, 0, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
	for (flags = 0; flags < 4; flags++) {
		memset(&env, 0, sizeof(env));
		env.sender = "alice@example.org";
		env.rcpts = &rcpt;
		env.nrcpts = 1;
		env.smtputf8 = flags & 1;
		env.requiretls = (flags & 2) != 0;
		env.arrival = 1700000000;
		m = spool_begin(sp, &env);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		snprintf(id, sizeof(id), "%s", spool_msg_id(m));
		CU_ASSERT_EQUAL(spool_write(m, "Subject: x\r\n\r\nhi\r\n",
		    19), 0);
		CU_ASSERT_EQUAL_FATAL(spool_commit(&m), 0);
		snprintf(path, sizeof(path), "%s/queue/%s", dir, id);
		CU_ASSERT_FATAL((fd = open(path, O_RDONLY)) != -1);
		CU_ASSERT_EQUAL_FATAL(qenv_read(fd, &e, err, sizeof(err)), 0);
		close(fd);
		TU_CHECK(e->smtputf8 == (flags & 1), "flags %d: smtputf8 "
		    "got %d", flags, e->smtputf8);
		TU_CHECK(e->requiretls == ((flags & 2) != 0), "flags %d: "
		    "requiretls got %d", flags, e->requiretls);
		CU_ASSERT_STRING_EQUAL(e->rcpts[0].mailbox, rcpt.addr);
		CU_ASSERT_EQUAL(e->rcpts[0].notify, QENV_NOTIFY_FAILURE);
		CU_ASSERT_EQUAL(e->size, 19);
		qenv_free(&e);
	}
	spool_close(&sp);
	/* The spool has directories of its own: more than one level. */
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(path), 0);
}

static void
test_tls_required(void)
{
	static const struct {
		const char	*hdr;
		int		 want;
	} cases[] = {
		{ "Subject: x\r\nTLS-Required: No\r\n\r\nbody", 1 },
		{ "tls-required:no\n\n", 1 },
		{ "TLS-Required :\r\n  No \r\n\r\n", 1 },
		{ "TLS-Required: Yes\r\n\r\n", 0 },
		{ "TLS-Required: Nope\r\n\r\n", 0 },
		{ "X-TLS-Required: No\r\n\r\n", 0 },
		{ "Subject: x\r\n TLS-Required: No\r\n\r\n", 0 },
		{ "Subject: x\r\n\r\nTLS-Required: No\r\n", 0 },
		{ "TLS-Required: No", 1 },
		{ "", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		TU_CHECK(tlsreq_header_no(cases[i].hdr, strlen(cases[i].hdr)) ==
		    cases[i].want, "case %zu: want %d", i, cases[i].want);
}

int
suite_qenv(void)
{
	CU_pSuite s = CU_add_suite("qenv", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "full envelope", test_parse_full) == NULL ||
	    CU_add_test(s, "null sender", test_parse_null_sender) == NULL ||
	    CU_add_test(s, "damaged envelopes", test_parse_damaged) == NULL ||
	    CU_add_test(s, "read from a file", test_read_file) == NULL ||
	    CU_add_test(s, "xtext", test_xtext) == NULL ||
	    CU_add_test(s, "notify", test_notify) == NULL ||
	    CU_add_test(s, "spool round trip", test_round_trip) == NULL ||
	    CU_add_test(s, "TLS-Required header", test_tls_required) == NULL)
		return -1;
	return 0;
}
