#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "queue/envelope.h"
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
	struct envelope *e;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(envelope_parse(env, sizeof(env) - 1, &e, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e->id, "1K1375QXW1J630BV");
	CU_ASSERT_EQUAL(e->arrival, 1700000000);
	CU_ASSERT_STRING_EQUAL(e->sender, "alice@example.org");
	CU_ASSERT_EQUAL_FATAL(e->nrcpts, 3);
	CU_ASSERT_STRING_EQUAL(e->rcpts[0].mailbox, "bob@example.com");
	CU_ASSERT_EQUAL(e->rcpts[0].notify, ENV_NOTIFY_SUCCESS |
	    ENV_NOTIFY_DELAY);
	CU_ASSERT_STRING_EQUAL(e->rcpts[0].orcpt, "rfc822;bob+2B1@example.com");
	CU_ASSERT_STRING_EQUAL(e->rcpts[1].mailbox, "\"odd > name\"@example.com");
	CU_ASSERT_EQUAL(e->rcpts[1].notify, 0);
	CU_ASSERT_PTR_NULL(e->rcpts[1].orcpt);
	CU_ASSERT_STRING_EQUAL(e->rcpts[2].mailbox, "Postmaster");
	CU_ASSERT_EQUAL(e->ret, ENV_RET_HDRS);
	CU_ASSERT_STRING_EQUAL(e->envid, "ABC+2B1");
	CU_ASSERT_STRING_EQUAL(e->auth, "alice");
	CU_ASSERT_STRING_EQUAL(e->protocol, "ESMTPA");
	CU_ASSERT_EQUAL(e->body, ENV_BODY_8BITMIME);
	CU_ASSERT_EQUAL(e->smtputf8, 1);
	CU_ASSERT_EQUAL((size_t)e->body_off, strstr(env, "Subject") - env);
	envelope_free(&e);
	CU_ASSERT_PTR_NULL(e);
}

static void
test_parse_null_sender(void)
{
	static const char env[] = "smtpd-spool 1\nid X\narrival 1\nfrom <>\n"
	    "rcpt <a@b.example>\n\n";
	struct envelope *e;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(envelope_parse(env, sizeof(env) - 1, &e, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e->sender, "");
	envelope_free(&e);
}

#define H	"smtpd-spool 1\nid X\narrival 1\nfrom <a@b.example>\n"

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
		    "lacks a rcpt line" },
		{ "smtpd-spool 1\narrival 1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n\n", "lacks an id line" },
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
		{ H "rcpt <c@d.example>\nid Y\n\n", "line 6: second id line" },
		{ H "rcpt <c@d.example>\nfrom <e@f.example>\n\n",
		    "second from" },
		{ H "rcpt <c@d.example>\nsmtputf8 yes\n\n", "bad smtputf8" },
		{ H "rcpt <c@d.example> notify=DELAY notify=DELAY\n\n",
		    "bad notify" },
		{ H "rcpt <c@d.example> notify=DELAY,DELAY\n\n",
		    "bad notify" },
		{ H "rcpt <c@d.example> notify=DELAY,\n\n", "bad notify" },
		{ H "rcpt <c@d.example> notify=\n\n", "bad notify" },
		{ H "rcpt <c@d.example> orcpt=rfc822;a+2b\n\n", "bad orcpt" },
		{ H "rcpt <c@d.example> orcpt=rfc822;a=b\n\n", "bad orcpt" },
		{ H "rcpt <c@d.example> orcpt=;a\n\n", "bad orcpt" },
		{ H "rcpt <c@d.example> orcpt=rf@c;a\n\n", "bad orcpt" },
		{ H "rcpt <c@d.example> orcpt=rfc822;a orcpt=rfc822;b\n\n",
		    "bad orcpt" },
		{ H "rcpt <c@d.example>x\n\n", "bad rcpt" },
		{ H "rcpt <c@d.example>\nenvid a+2\n\n", "bad envid" },
		{ H "rcpt <c@d.example>\nenvid a b\n\n", "bad envid" },
		{ H "rcpt <c@d.example>\nbody BINARYMIME\n\n", "bad body" },
		{ "smtpd-spool 1\nid X\narrival +1\nfrom <a@b.example>\n"
		    "rcpt <c@d.example>\n\n", "bad arrival" },
		{ "smtpd-spool 1\nid X\narrival 99999999999999999999\n"
		    "from <a@b.example>\nrcpt <c@d.example>\n\n",
		    "bad arrival" },
		{ "smtpd-spool 1\nid 0123456789abcdef0123456789abcdef\n"
		    "arrival 1\nfrom <a@b.example>\nrcpt <c@d.example>\n\n",
		    "bad id" },
	};
	struct envelope *e;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(envelope_parse(cases[i].in, strlen(cases[i].in), &e,
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
	struct envelope *e;
	char err[256];
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f = tmpfile());
	CU_ASSERT_EQUAL(fwrite(data, 1, sizeof(data) - 1, f), sizeof(data) - 1);
	fflush(f);
	CU_ASSERT_EQUAL_FATAL(envelope_read(fileno(f), &e, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(e->size, 9);
	envelope_free(&e);
	/* Cut inside the envelope: damaged. */
	CU_ASSERT_EQUAL(ftruncate(fileno(f), 20), 0);
	CU_ASSERT_EQUAL(envelope_read(fileno(f), &e, err, sizeof(err)), -2);
	fclose(f);
}

static void
test_xtext(void)
{
	char out[64];

	CU_ASSERT_EQUAL(env_xtext_decode("a+2Bb+3Dc", out, sizeof(out)), 5);
	CU_ASSERT_STRING_EQUAL(out, "a+b=c");
	CU_ASSERT_EQUAL(env_xtext_decode("bad+2", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(env_xtext_decode("bad+zz", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(env_xtext_decode("a=b", out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(env_xtext_decode("toolong", out, 4), -1);
	CU_ASSERT_EQUAL(env_xtext_encode("a+b c", out, sizeof(out)), 9);
	CU_ASSERT_STRING_EQUAL(out, "a+2Bb+20c");
	CU_ASSERT_EQUAL(env_xtext_encode("a+b", out, 4), -1);
}

static void
test_notify(void)
{
	CU_ASSERT_EQUAL(env_notify_parse("never"), ENV_NOTIFY_NEVER);
	CU_ASSERT_EQUAL(env_notify_parse("SUCCESS,FAILURE"),
	    ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE);
	CU_ASSERT_EQUAL(env_notify_parse("NEVER,SUCCESS"), -1);
	CU_ASSERT_EQUAL(env_notify_parse("SOMETIMES"), -1);
	CU_ASSERT_EQUAL(env_notify_parse(""), -1);
}


/* Two strings alike, NULLs too. */
static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Every item of the envelope (not body_off and size). */
static int
same_env(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (strcmp(a->id, b->id) != 0 || a->arrival != b->arrival ||
	    !same_str(a->sender, b->sender) || a->nrcpts != b->nrcpts ||
	    a->ret != b->ret || !same_str(a->envid, b->envid) ||
	    !same_str(a->auth, b->auth) || !same_str(a->helo, b->helo) ||
	    !same_str(a->peer, b->peer) ||
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

/*
 * A queue file exactly as the writer before the envelope module made it
 * (every item it knew, in its order), and a maildrop file of sendmail's
 * offline queue: both parse, and formatting them again gives the same
 * bytes, so queues written by older versions keep working.
 */
static void
test_today_format(void)
{
	static const char *const files[] = {
	    "smtpd-spool 1\n"
	    "id 1K1375QXW1J630BV\n"
	    "arrival 1764720000\n"
	    "from <alice@example.org>\n"
	    "rcpt <bob@example.com> notify=SUCCESS,FAILURE,DELAY "
	    "orcpt=rfc822;bob+2Bx@example.com\n"
	    "rcpt <carol@example.com> notify=NEVER\n"
	    "rcpt <\"d d\"@example.com> orcpt=utf-8;d+20d@example.com\n"
	    "ret FULL\n"
	    "envid QQ314159+2B\n"
	    "auth alice\n"
	    "helo [192.0.2.1]\n"
	    "peer 192.0.2.1\n"
	    "peer-name mx.example.org\n"
	    "protocol UTF8SMTPSA\n"
	    "body 8BITMIME\n"
	    "smtputf8\n"
	    "requiretls\n"
	    "user alice\n"
	    "\n",
	    "smtpd-spool 1\n"
	    "id 001764720000-0a1b2c3d4e5f\n"
	    "arrival 1764720000\n"
	    "from <>\n"
	    "rcpt <x@example.net> notify=FAILURE,DELAY\n"
	    "ret HDRS\n"
	    "envid abc\n"
	    "body 7BIT\n"
	    "account work\n"
	    "\n",
	};
	struct envelope *e;
	struct str out;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		TU_CHECK(envelope_parse(files[i], strlen(files[i]), &e, err,
		    sizeof(err)) == 0, "file %zu: %s", i, err);
		if (e == NULL)
			continue;
		str_init(&out, ENVELOPE_MAX);
		TU_CHECK(envelope_format(e, &out, err, sizeof(err)) == 0,
		    "file %zu: %s", i, err);
		TU_CHECK(out.s != NULL && strcmp(out.s, files[i]) == 0,
		    "file %zu: written again as\n%s", i, out.s ? out.s : "");
		str_free(&out);
		if (i == 0) {
			CU_ASSERT_EQUAL(e->rcpts[0].notify, ENV_NOTIFY_SUCCESS |
			    ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY);
			CU_ASSERT_EQUAL(e->rcpts[1].notify, ENV_NOTIFY_NEVER);
			CU_ASSERT_STRING_EQUAL(e->rcpts[2].orcpt,
			    "utf-8;d+20d@example.com");
			CU_ASSERT_EQUAL(e->ret, ENV_RET_FULL);
			CU_ASSERT_STRING_EQUAL(e->peer_name, "mx.example.org");
			CU_ASSERT_EQUAL(e->requiretls, 1);
			CU_ASSERT_STRING_EQUAL(e->user, "alice");
		} else {
			CU_ASSERT_STRING_EQUAL(e->sender, "");
			CU_ASSERT_EQUAL(e->body, ENV_BODY_7BIT);
			CU_ASSERT_STRING_EQUAL(e->account, "work");
		}
		envelope_free(&e);
	}
}

/* Lower case and any order come back in the one spelling. */
static void
test_normalise(void)
{
	static const char in[] = "smtpd-spool 1\nrcpt <c@d.example> "
	    "NOTIFY=delay,success future=1\nfrom <a@b.example>\n"
	    "arrival 0007\nid X\nret hdrs\nbody 8bitmime\nnew-item\n\n";
	static const char want[] = "smtpd-spool 1\nid X\narrival 7\n"
	    "from <a@b.example>\nrcpt <c@d.example> notify=SUCCESS,DELAY\n"
	    "ret HDRS\nbody 8BITMIME\n\n";
	struct envelope *e;
	struct str out;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(envelope_parse(in, sizeof(in) - 1, &e, err,
	    sizeof(err)), 0);
	str_init(&out, ENVELOPE_MAX);
	CU_ASSERT_EQUAL(envelope_format(e, &out, err, sizeof(err)), 0);
	TU_CHECK(out.s != NULL && strcmp(out.s, want) == 0, "got\n%s",
	    out.s ? out.s : "");
	str_free(&out);
	envelope_free(&e);
}

/* parse(format(e)) == e over envelopes with every item and its edges. */
static void
test_format_parse(void)
{
	static struct env_rcpt r_plain[] = { { "b@example.com", 0, NULL } };
	static struct env_rcpt r_all[] = {
		{ "b@example.com", ENV_NOTIFY_SUCCESS, NULL },
		{ "c@example.com", ENV_NOTIFY_FAILURE, "rfc822;c@example.com" },
		{ "d@example.com", ENV_NOTIFY_DELAY, "x-local;+2B+3D+20" },
		{ "e@example.com", ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE,
		    NULL },
		{ "f@example.com", ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY,
		    NULL },
		{ "g@example.com", ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE |
		    ENV_NOTIFY_DELAY, NULL },
		{ "h@example.com", ENV_NOTIFY_NEVER, "utf-8;h\\x{E9}" },
		{ "\"q > \\\" x\"@example.com", 0, NULL },
		{ "\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example", 0, NULL },
		{ "Postmaster", 0, NULL },
		{ "i@[192.0.2.1]", 0, NULL },
		{ "j@[IPv6:2001:db8::1]", 0, NULL },
	};
	static struct env_rcpt r_many[1000];
	static char many_names[1000][32];
	struct envelope cases[8], *e;
	struct str out, again;
	char err[256], longtext[2000];
	size_t i;

	memset(cases, 0, sizeof(cases));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cases[i].id, sizeof(cases[i].id), "ID%zu", i);
		cases[i].sender = "a@example.org";
		cases[i].rcpts = r_plain;
		cases[i].nrcpts = 1;
	}
	/* 0: the least there is. */
	/* 1: every item. */
	cases[1].arrival = 1764720000;
	cases[1].rcpts = r_all;
	cases[1].nrcpts = sizeof(r_all) / sizeof(r_all[0]);
	cases[1].ret = ENV_RET_HDRS;
	cases[1].envid = "QQ+2B314+3D159";
	cases[1].auth = "alice@example.org";
	cases[1].helo = "client.example.org";
	cases[1].peer = "2001:db8::1";
	cases[1].peer_name = "client.example.org";
	cases[1].protocol = "UTF8SMTPSA";
	cases[1].body = ENV_BODY_8BITMIME;
	cases[1].smtputf8 = 1;
	cases[1].requiretls = 1;
	cases[1].user = "alice";
	cases[1].account = "work";
	/* 2: the null sender, RET=FULL, BODY=7BIT, empty values. */
	cases[2].sender = "";
	cases[2].ret = ENV_RET_FULL;
	cases[2].body = ENV_BODY_7BIT;
	cases[2].helo = "";
	cases[2].auth = "";
	cases[2].envid = "";
	/* 3: the longest ENVID (100 decoded), all of it encoded. */
	for (i = 0; i < 100; i++)
		memcpy(longtext + 3 * i, "+2B", 3);
	longtext[300] = '\0';
	cases[3].envid = longtext;
	/* 4: values with spaces and UTF-8. */
	cases[4].helo = "  spaced  out ";
	cases[4].auth = "j\xc3\xb6rg";
	cases[4].peer_name = "x";
	/* 5: many recipients. */
	for (i = 0; i < 1000; i++) {
		snprintf(many_names[i], sizeof(many_names[i]),
		    "r%zu@example.net", i);
		r_many[i].mailbox = many_names[i];
		r_many[i].notify = (int)(i % 3 == 0 ? ENV_NOTIFY_DELAY : 0);
	}
	cases[5].rcpts = r_many;
	cases[5].nrcpts = 1000;
	/* 6: the largest arrival time, the longest id. */
	cases[6].arrival = (time_t)0x7fffffffffffffffLL;
	memset(cases[6].id, 'Z', ENVELOPE_ID_MAX);
	cases[6].id[ENVELOPE_ID_MAX] = '\0';
	/* 7: the longest mailbox (RFC 5321 4.5.3.1.3). */
	{
		static char big[257];

		memset(big, 'l', 64);
		big[64] = '@';
		for (i = 65; i < 254; i++)
			big[i] = (i - 65) % 60 == 59 ? '.' : 'd';
		memcpy(big + 250, ".net", 5);
		cases[7].sender = big;
	}

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		str_init(&out, ENVELOPE_MAX);
		str_init(&again, ENVELOPE_MAX);
		TU_CHECK(envelope_format(&cases[i], &out, err, sizeof(err)) ==
		    0, "case %zu: format: %s", i, err);
		e = NULL;
		TU_CHECK(out.s != NULL && envelope_parse(out.s, out.len, &e,
		    err, sizeof(err)) == 0, "case %zu: parse: %s", i, err);
		if (e != NULL) {
			TU_CHECK(same_env(&cases[i], e), "case %zu: differs "
			    "after the round trip:\n%s", i, out.s);
			TU_CHECK((size_t)e->body_off == out.len, "case %zu: "
			    "body_off %lld", i, (long long)e->body_off);
			TU_CHECK(envelope_format(e, &again, err,
			    sizeof(err)) == 0 && again.len == out.len &&
			    memcmp(again.s, out.s, out.len) == 0,
			    "case %zu: formatted twice, not alike", i);
		}
		envelope_free(&e);
		str_free(&out);
		str_free(&again);
	}
}

/* What the writer refuses, with the reason; nothing cut short. */
static void
test_format_errors(void)
{
	struct {
		struct env_rcpt	 r;
		const char	*sender;
		const char	*envid;
		size_t		 max;
		const char	*want;
	} cases[] = {
		{ { "b@example.com", ENV_NOTIFY_NEVER | ENV_NOTIFY_DELAY,
		    NULL }, "a@example.org", NULL, 0, "invalid NOTIFY" },
		{ { "b@example.com", 0x10, NULL }, "a@example.org", NULL, 0,
		    "invalid NOTIFY" },
		{ { "b@example.com", 0, "rfc822" }, "a@example.org", NULL, 0,
		    "invalid ORCPT" },
		{ { "b@example.com", 0, "rfc822;a+2b" }, "a@example.org",
		    NULL, 0, "invalid ORCPT" },
		{ { "b@example.com", 0, "rfc822;a b" }, "a@example.org",
		    NULL, 0, "invalid ORCPT" },
		{ { "b@example.com", 0, NULL }, "a@example.org", "a=b", 0,
		    "invalid envid" },
		{ { "b@example.com", 0, NULL }, NULL, NULL, 0,
		    "lacks its from" },
		{ { "b c@example.com", 0, NULL }, "a@example.org", NULL, 0,
		    "not a valid mailbox" },
		{ { "b@example.com", 0, NULL }, "a\n@example.org", NULL, 0,
		    "not a valid mailbox" },
		{ { NULL, 0, NULL }, "a@example.org", NULL, 0,
		    "without a mailbox" },
		{ { "b@example.com", 0, NULL }, "a@example.org", NULL, 60,
		    "larger than 60 bytes" },
	};
	struct envelope env;
	struct str out;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&env, 0, sizeof(env));
		str_lcpy(env.id, "X", sizeof(env.id));
		env.sender = cases[i].sender;
		env.rcpts = &cases[i].r;
		env.nrcpts = 1;
		env.envid = cases[i].envid;
		env.helo = "a long enough name to pass sixty bytes";
		str_init(&out, cases[i].max ? cases[i].max : ENVELOPE_MAX);
		err[0] = '\0';
		TU_CHECK(envelope_format(&env, &out, err, sizeof(err)) == -1 &&
		    strstr(err, cases[i].want) != NULL, "case %zu: got "
		    "\"%s\", want \"%s\"", i, err, cases[i].want);
		str_free(&out);
	}
	/* No recipients at all. */
	memset(&env, 0, sizeof(env));
	str_lcpy(env.id, "X", sizeof(env.id));
	env.sender = "";
	str_init(&out, ENVELOPE_MAX);
	CU_ASSERT_EQUAL(envelope_format(&env, &out, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "lacks its rcpt"));
	str_free(&out);
}

/* Free text is one line: a control character is written as '?'. */
static void
test_format_control(void)
{
	struct env_rcpt r = { "b@example.com", 0, NULL };
	struct envelope env, *e;
	struct str out;
	char err[256];

	memset(&env, 0, sizeof(env));
	str_lcpy(env.id, "X", sizeof(env.id));
	env.sender = "";
	env.rcpts = &r;
	env.nrcpts = 1;
	env.helo = "evil\r\nrcpt <x@example.net>";
	str_init(&out, ENVELOPE_MAX);
	CU_ASSERT_EQUAL_FATAL(envelope_format(&env, &out, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(envelope_parse(out.s, out.len, &e, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(e->helo, "evil??rcpt <x@example.net>");
	CU_ASSERT_EQUAL(e->nrcpts, 1);
	envelope_free(&e);
	str_free(&out);
}

static void
test_notify_format(void)
{
	static const struct {
		int		 bits;
		const char	*want;
	} cases[] = {
		{ 0, "" },
		{ ENV_NOTIFY_NEVER, "NEVER" },
		{ ENV_NOTIFY_SUCCESS, "SUCCESS" },
		{ ENV_NOTIFY_DELAY, "DELAY" },
		{ ENV_NOTIFY_SUCCESS | ENV_NOTIFY_DELAY, "SUCCESS,DELAY" },
		{ ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY, "FAILURE,DELAY" },
		{ ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE, "SUCCESS,FAILURE" },
		{ 14, "SUCCESS,FAILURE,DELAY" },
	};
	char buf[ENV_NOTIFY_STRMAX];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TU_CHECK(env_notify_format(cases[i].bits, buf, sizeof(buf)) ==
		    0 && strcmp(buf, cases[i].want) == 0, "bits %d: got "
		    "\"%s\"", cases[i].bits, buf);
		if (cases[i].bits != 0)
			TU_CHECK(env_notify_parse(buf) == cases[i].bits,
			    "\"%s\" parsed back", buf);
	}
	CU_ASSERT_EQUAL(env_notify_format(ENV_NOTIFY_NEVER | 2, buf,
	    sizeof(buf)), -1);
	CU_ASSERT_EQUAL(env_notify_format(14, buf, 10), -1);
	CU_ASSERT_EQUAL(env_orcpt_valid("rfc822;a+40b"), 1);
	CU_ASSERT_EQUAL(env_orcpt_valid("rfc822;"), 1);
	CU_ASSERT_EQUAL(env_orcpt_valid(";a"), 0);
	CU_ASSERT_EQUAL(env_orcpt_valid("rfc822;a+4"), 0);
}

/* What spool_begin() writes, envelope_read() reads back: the flags too. */
static void
test_round_trip(void)
{
	const struct env_rcpt rcpt = { "b\xc3\xbcro@example.com",
	    ENV_NOTIFY_FAILURE, NULL };
	struct envelope env;
	struct spool_msg *m;
	struct spool *sp;
	struct envelope *e;
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
		CU_ASSERT_EQUAL_FATAL(envelope_read(fd, &e, err, sizeof(err)), 0);
		close(fd);
		TU_CHECK(e->smtputf8 == (flags & 1), "flags %d: smtputf8 "
		    "got %d", flags, e->smtputf8);
		TU_CHECK(e->requiretls == ((flags & 2) != 0), "flags %d: "
		    "requiretls got %d", flags, e->requiretls);
		CU_ASSERT_STRING_EQUAL(e->rcpts[0].mailbox, rcpt.mailbox);
		CU_ASSERT_EQUAL(e->rcpts[0].notify, ENV_NOTIFY_FAILURE);
		CU_ASSERT_EQUAL(e->size, 19);
		envelope_free(&e);
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
suite_envelope(void)
{
	CU_pSuite s = CU_add_suite("envelope", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "full envelope", test_parse_full) == NULL ||
	    CU_add_test(s, "null sender", test_parse_null_sender) == NULL ||
	    CU_add_test(s, "damaged envelopes", test_parse_damaged) == NULL ||
	    CU_add_test(s, "read from a file", test_read_file) == NULL ||
	    CU_add_test(s, "xtext", test_xtext) == NULL ||
	    CU_add_test(s, "notify", test_notify) == NULL ||
	    CU_add_test(s, "notify format", test_notify_format) == NULL ||
	    CU_add_test(s, "today's format", test_today_format) == NULL ||
	    CU_add_test(s, "normalised", test_normalise) == NULL ||
	    CU_add_test(s, "format and parse", test_format_parse) == NULL ||
	    CU_add_test(s, "format errors", test_format_errors) == NULL ||
	    CU_add_test(s, "control characters", test_format_control) ==
	    NULL ||
	    CU_add_test(s, "spool round trip", test_round_trip) == NULL ||
	    CU_add_test(s, "TLS-Required header", test_tls_required) == NULL)
		return -1;
	return 0;
}
