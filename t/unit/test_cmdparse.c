#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core/cmdparse.h"
#include "tests.h"

static void
test_split(void)
{
	struct cmd c;
	char l1[] = "ehlo   client.example  ";
	char l2[] = "QUIT";
	char l3[] = "XYZZY foo";
	char l4[] = "GET / HTTP/1.1";
	char l5[] = "NOOP a\rb";

	CU_ASSERT_EQUAL(cmd_split(l1, strlen(l1), &c), 0);
	CU_ASSERT_EQUAL(c.verb, CMD_EHLO);
	CU_ASSERT_STRING_EQUAL(c.arg, "client.example");
	CU_ASSERT_EQUAL(cmd_split(l2, strlen(l2), &c), 0);
	CU_ASSERT_EQUAL(c.verb, CMD_QUIT);
	CU_ASSERT_EQUAL(c.arglen, 0);
	CU_ASSERT_EQUAL(cmd_split(l3, strlen(l3), &c), 0);
	CU_ASSERT_EQUAL(c.verb, CMD_UNKNOWN);
	CU_ASSERT_EQUAL(cmd_split(l4, strlen(l4), &c), 0);
	CU_ASSERT_EQUAL(c.verb, CMD_HTTP);
	/* A bare CR inside a command is refused outright. */
	CU_ASSERT_EQUAL(cmd_split(l5, strlen(l5), &c), -1);
}

struct mail_case {
	const char		*arg;
	enum path_status	 want;
	const char		*mailbox;
	long long		 size;
	enum env_body		 body;
	int			 utf8;
};

static const struct mail_case mails[] = {
	{ "FROM:<a@example.com>", PATH_OK, "a@example.com", -1, ENV_BODY_UNSET, 0 },
	{ "from: <a@example.com>", PATH_OK, "a@example.com", -1, ENV_BODY_UNSET, 0 },
	{ "FROM:<>", PATH_OK, "", -1, ENV_BODY_UNSET, 0 },
	{ "FROM:<a@example.com> SIZE=1000 BODY=8BITMIME", PATH_OK, "a@example.com", 1000, ENV_BODY_8BITMIME, 0 },
	{ "FROM:<a@example.com> body=7bit", PATH_OK, "a@example.com", -1, ENV_BODY_7BIT, 0 },
	{ "FROM:<j\xc3\xb6@example.com> SMTPUTF8", PATH_OK, "j\xc3\xb6@example.com", -1, ENV_BODY_UNSET, 1 },
	{ "FROM:<j\xc3\xb6@example.com>", PATH_UTF8, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> FOO=BAR", PATH_PARAM_UNKNOWN, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> BODY=BINARYMIME", PATH_PARAM_UNKNOWN, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> SIZE=12x", PATH_PARAM_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> SIZE=1 SIZE=2", PATH_PARAM_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> SMTPUTF8=yes", PATH_PARAM_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com>junk", PATH_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:a@example.com", PATH_SYNTAX, NULL, 0, 0, 0 },
	{ "TO:<a@example.com>", PATH_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<\"x>y\"@example.com>", PATH_OK, "\"x>y\"@example.com", -1, ENV_BODY_UNSET, 0 },
	{ "FROM:<a@example.com> SIZE=99999999999999999999", PATH_OK, "a@example.com", 9223372036854775800LL, ENV_BODY_UNSET, 0 },
	{ "FROM:<a@example.com> RET=HDRS ENVID=QQ314159", PATH_OK, "a@example.com", -1, ENV_BODY_UNSET, 0 },
	{ "FROM:<a@example.com> RET=BODY", PATH_PARAM_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> ENVID=a=b", PATH_PARAM_SYNTAX, NULL, 0, 0, 0 },
	{ "FROM:<a@example.com> AUTH=<>", PATH_OK, "a@example.com", -1, ENV_BODY_UNSET, 0 },
	{ "FROM:<a@example.com> AUTH=joe+40example.com", PATH_OK, "a@example.com", -1, ENV_BODY_UNSET, 0 },
};

static void
test_mail(void)
{
	struct mail_params mp;
	struct addr a;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(mails) / sizeof(mails[0]); i++) {
		const struct mail_case *c = &mails[i];
		enum path_status st = cmd_parse_mail(c->arg, &a, &mp, &why);

		if (st != c->want)
			fprintf(stderr, "\nMAIL %s: got %d (%s), want %d\n",
			    c->arg, st, why, c->want);
		CU_ASSERT_EQUAL(st, c->want);
		if (st != PATH_OK || c->want != PATH_OK)
			continue;
		CU_ASSERT_STRING_EQUAL(a.mailbox, c->mailbox);
		CU_ASSERT_EQUAL(mp.size, c->size);
		CU_ASSERT_EQUAL(mp.body, c->body);
		CU_ASSERT_EQUAL(mp.smtputf8, c->utf8);
	}
}

static void
test_rcpt(void)
{
	struct rcpt_params rp;
	struct addr a;
	const char *why;
	char buf[64];

	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net>", 0, &a, &rp, &why), PATH_OK);
	CU_ASSERT_STRING_EQUAL(a.mailbox, "b@example.net");
	CU_ASSERT_EQUAL(cmd_parse_rcpt("To: <postmaster>", 0, &a, &rp, &why), PATH_OK);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<>", 0, &a, &rp, &why), PATH_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> XYZ", 0, &a, &rp, &why), PATH_PARAM_UNKNOWN);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<\xc3\xa9@example.net>", 0, &a, &rp, &why), PATH_UTF8);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<\xc3\xa9@example.net>", 1, &a, &rp, &why), PATH_OK);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("FROM:<b@example.net>", 0, &a, &rp, &why), PATH_SYNTAX);
	/* RFC 3461 parameters. */
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.net",
	    0, &a, &rp, &why), PATH_OK);
	CU_ASSERT_EQUAL(rp.notify, ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE);
	CU_ASSERT_STRING_EQUAL(rp.orcpt, "rfc822;b+40example.net");
	CU_ASSERT_EQUAL(env_notify_format(rp.notify, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "SUCCESS,FAILURE");
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> NOTIFY=NEVER", 0, &a, &rp, &why), PATH_OK);
	CU_ASSERT_EQUAL(rp.notify, ENV_NOTIFY_NEVER);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> NOTIFY=NEVER,DELAY", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> NOTIFY=SOMETIMES", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> NOTIFY=DELAY NOTIFY=DELAY", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> ORCPT=rfc822", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> ORCPT=rfc822;a+4", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
	CU_ASSERT_EQUAL(cmd_parse_rcpt("TO:<b@example.net> ORCPT=rfc822;a+4a", 0, &a, &rp, &why), PATH_PARAM_SYNTAX);
}

static void
test_bdat(void)
{
	unsigned long long n;
	int last;

	CU_ASSERT_EQUAL(cmd_parse_bdat("100", &n, &last), 0);
	CU_ASSERT_EQUAL(n, 100);
	CU_ASSERT_EQUAL(last, 0);
	CU_ASSERT_EQUAL(cmd_parse_bdat("0 LAST", &n, &last), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(last, 1);
	CU_ASSERT_EQUAL(cmd_parse_bdat("10 last", &n, &last), 0);
	CU_ASSERT_EQUAL(cmd_parse_bdat("", &n, &last), -1);
	CU_ASSERT_EQUAL(cmd_parse_bdat("x", &n, &last), -1);
	CU_ASSERT_EQUAL(cmd_parse_bdat("10 FIRST", &n, &last), -1);
	CU_ASSERT_EQUAL(cmd_parse_bdat("99999999999999999999999", &n, &last), -1);
}

static void
test_helo(void)
{
	static const struct {
		const char	*arg;
		int		 want;
		const char	*want_name;
	} cases[] = {
		{ "mx.example.org", 0, "mx.example.org" },
		{ "mx.example.org extra words", 0, "mx.example.org" },
		{ "[192.0.2.1]", 0, "[192.0.2.1]" },
		{ "", -1, NULL },
		{ "\033[2Jx", -1, NULL },	/* the name would be empty */
		{ "mx\033.example.org", -1, NULL },
		{ "mx.example.org \001", -1, NULL },	/* in the extra words */
		{ "mx\t.example.org", -1, NULL },
		{ "mx\177", -1, NULL },
		{ "0123456789", -2, NULL },		/* namelen 9 */
	};
	char name[64];
	const char *why;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		r = cmd_parse_helo(cases[i].arg, strlen(cases[i].arg), name,
		    cases[i].want == -2 ? 9 : sizeof(name), &why);
		if (r != cases[i].want)
			fprintf(stderr, "helo \"%s\": got %d, want %d\n",
			    cases[i].arg, r, cases[i].want);
		CU_ASSERT_EQUAL(r, cases[i].want);
		if (r == 0 && cases[i].want == 0)
			CU_ASSERT_STRING_EQUAL(name, cases[i].want_name);
		if (r != 0)
			CU_ASSERT_PTR_NOT_NULL(why);
	}
}

int
suite_cmdparse(void)
{
	CU_pSuite s = CU_add_suite("cmdparse", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "command split", test_split) == NULL ||
	    CU_add_test(s, "MAIL arguments (table)", test_mail) == NULL ||
	    CU_add_test(s, "RCPT arguments", test_rcpt) == NULL ||
	    CU_add_test(s, "BDAT arguments", test_bdat) == NULL ||
	    CU_add_test(s, "HELO argument", test_helo) == NULL)
		return -1;
	return 0;
}
