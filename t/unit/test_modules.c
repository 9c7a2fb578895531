#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/str.h"
#include "conf/conffile.h"
#include "policy/policy.h"
#include "policy/state.h"
#include "tests.h"

static struct conf_file *pol_file, *nogrey_file;
static struct policy *pol, *nogrey;
static struct policy_state *st;
static char conf[64], grey[80];

/* Writes the test configuration, with or without greylisting. */
static struct conf_file *
load_conf(int greylisting)
{
	char err[512];
	struct conf_file *cf;
	FILE *f;

	if ((f = fopen(conf, "w")) == NULL)
		return NULL;
	fprintf(f,
	    "hostname = \"mx.ours.example\";\n"
	    "ournets = [ \"127.0.0.1\", \"2001:db8:1::/48\" ];\n"
	    "ourdomains = [ \"ours.example\", \"*.corp.example\", \"[192.0.2.1]\" ];\n"
	    "norelay = true;\n"
	    "helo_checks = true;\n"
	    "access = [ \"dial 198.51.100.0/24\", \"deny 203.0.113.5\",\n"
	    "    \"block *.spam.example!*\", \"delay slow.example!bulk*\",\n"
	    "    \"allow friend.example!*\" ];\n"
	    "rules = (\n"
	    "  { header = \"^Subject:.*lottery\"; action = \"reject\"; text = \"No lotteries\"; },\n"
	    "  { header = \"^X-Mailer: bulk\"; action = \"tag\"; text = \"X-Bulk: yes\"; },\n"
	    "  { rcpt = \"^abuse@\"; action = \"accept\"; },\n"
	    "  { sender = \"@evil\\\\.example$\"; action = \"defer\"; }\n"
	    ");\n");
	if (greylisting)
		fprintf(f, "greylist = { delay = 0; file = \"%s\"; };\n", grey);
	fclose(f);
	if ((cf = conf_file_load(conf, 0, NULL, err, sizeof(err))) == NULL)
		fprintf(stderr, "%s\n", err);
	return cf;
}

static int
setup(void)
{
	snprintf(conf, sizeof(conf), "/tmp/test-modules-XXXXXX");
	close(mkstemp(conf));
	snprintf(grey, sizeof(grey), "%s.grey", conf);
	pol_file = load_conf(1);
	nogrey_file = load_conf(0);
	pol = pol_file != NULL ? pol_file->policy : NULL;
	nogrey = nogrey_file != NULL ? nogrey_file->policy : NULL;
	st = policy_state_new();
	return pol && nogrey && st ? 0 : -1;
}

static int
teardown(void)
{
	conf_file_unref(&pol_file);
	conf_file_unref(&nogrey_file);
	pol = nogrey = NULL;
	policy_state_free(&st);
	unlink(conf);
	unlink(grey);
	return 0;
}

static void
session_with(const struct policy *p, struct policy_session *ps,
    const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct verdict v;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else {
		CU_ASSERT_FATAL(inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1);
		s6->sin6_family = AF_INET6;
	}
	policy_session_init(ps, p, st, &ss, "test");
	(void)policy_connect(ps, &v);
}

static void
session(struct policy_session *ps, const char *addr)
{
	session_with(pol, ps, addr);
}

struct relay_case {
	const char	*rcpt;
	int		 want;	/* enum verdict_kind */
};

static void
test_relay_battery(void)
{
	static const struct relay_case cases[] = {
		{ "a@ours.example", VERDICT_CONTINUE },
		{ "a@OURS.Example", VERDICT_CONTINUE },
		{ "a@ours.example.", VERDICT_CONTINUE },
		{ "a@x.y.corp.example", VERDICT_CONTINUE },
		{ "a@X.Corp.Example.", VERDICT_CONTINUE },
		/* "*.corp.example" is below corp.example only, as in routes. */
		{ "a@corp.example", VERDICT_REJECT },
		{ "Postmaster", VERDICT_CONTINUE },
		{ "a@[192.0.2.1]", VERDICT_CONTINUE },
		{ "a@other.example", VERDICT_REJECT },
		{ "a@ours.example.other.example", VERDICT_REJECT },
		{ "a@evilcorp.example", VERDICT_REJECT },
		{ "a@[192.0.2.2]", VERDICT_REJECT },
		{ "a%other.example@ours.example", VERDICT_REJECT },
		{ "other.example!a@ours.example", VERDICT_REJECT },
		{ "\"a@other.example\"@ours.example", VERDICT_REJECT },
	};
	struct policy_session ps;
	struct verdict v;
	size_t i;

	session_with(nogrey, &ps, "192.0.2.50");
	CU_ASSERT_FALSE(ps.trusted);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = policy_rcpt(&ps, cases[i].rcpt, &v);

		if (got != cases[i].want)
			fprintf(stderr, "\nRCPT %s: got %d, want %d\n",
			    cases[i].rcpt, got, cases[i].want);
		CU_ASSERT_EQUAL(got, cases[i].want);
		if (got == VERDICT_REJECT) {
			CU_ASSERT_EQUAL(v.reply.code, 554);
			CU_ASSERT_STRING_EQUAL(v.reply.status, "5.7.1");
		}
	}
	/* Trusted networks and authenticated clients may relay. */
	session(&ps, "127.0.0.1");
	CU_ASSERT_TRUE(ps.trusted);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "a@other.example", &v), VERDICT_CONTINUE);
	session(&ps, "::ffff:127.0.0.1");
	CU_ASSERT_TRUE(ps.trusted);
	session(&ps, "2001:db8:1:2::3");
	CU_ASSERT_TRUE(ps.trusted);
	session_with(nogrey, &ps, "192.0.2.50");
	policy_session_trust(&ps, 1);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "a@other.example", &v), VERDICT_CONTINUE);
}

static void
test_access_verbs(void)
{
	struct policy_session ps;
	struct verdict v;

	session(&ps, "198.51.100.7");	/* dial: everything refused */
	CU_ASSERT_EQUAL(policy_helo(&ps, "host.isp.net", &v), VERDICT_REJECT);
	CU_ASSERT_PTR_NOT_NULL(strstr(v.reply.text, "dial-up"));
	session(&ps, "203.0.113.5");	/* deny: at MAIL */
	CU_ASSERT_EQUAL(policy_mail(&ps, "x@y.example", &v), VERDICT_REJECT);
	CU_ASSERT_EQUAL(v.reply.code, 554);
	CU_ASSERT_PTR_NOT_NULL(strstr(v.reply.text,
	    "We don't accept mail from x@y.example.\n"));
	session(&ps, "192.0.2.60");	/* block: at the end of the data */
	CU_ASSERT_EQUAL(policy_mail(&ps, "x@a.spam.example", &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(policy_data_end(&ps, &v), VERDICT_REJECT);
	CU_ASSERT_EQUAL(v.reply.code, 554);
	policy_reset(&ps);
	CU_ASSERT_EQUAL(policy_mail(&ps, "bulk7@slow.example", &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(policy_data_end(&ps, &v), VERDICT_DEFER);
	CU_ASSERT_EQUAL(v.reply.code, 450);
	policy_reset(&ps);
	/* "block *.spam.example!*" leaves spam.example itself alone. */
	CU_ASSERT_EQUAL(policy_mail(&ps, "x@spam.example", &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(policy_data_end(&ps, &v), VERDICT_CONTINUE);
	policy_reset(&ps);
	/* allow skips the remaining MAIL checks (here: the defer rule). */
	CU_ASSERT_EQUAL(policy_mail(&ps, "x@friend.example", &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(policy_mail(&ps, "x@evil.example", &v), VERDICT_DEFER);
	CU_ASSERT_EQUAL(v.reply.code, 451);
}

static void
test_helo_checks(void)
{
	static const struct {
		const char	*helo;
		int		 want;
	} cases[] = {
		{ "mail.isp.net", VERDICT_CONTINUE },
		{ "[192.0.2.9]", VERDICT_CONTINUE },
		{ "[IPv6:2001:db8::1]", VERDICT_CONTINUE },
		{ "[300.1.1.1]", VERDICT_REJECT },
		{ "mx.ours.example", VERDICT_REJECT },
		{ "ours.example", VERDICT_REJECT },
		{ "localhost", VERDICT_REJECT },
		{ "box.localdomain", VERDICT_REJECT },
		{ "a.test", VERDICT_REJECT },
		{ "www.example.com", VERDICT_REJECT },
		{ "192.0.2.9", VERDICT_REJECT },
		{ "nodots", VERDICT_REJECT },
	};
	struct policy_session ps;
	struct verdict v;
	size_t i;

	session(&ps, "192.0.2.70");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = policy_helo(&ps, cases[i].helo, &v);

		if (got != cases[i].want)
			fprintf(stderr, "\nHELO %s: got %d, want %d\n",
			    cases[i].helo, got, cases[i].want);
		CU_ASSERT_EQUAL(got, cases[i].want);
	}
	/* Trusted clients are not checked. */
	session(&ps, "127.0.0.1");
	CU_ASSERT_EQUAL(policy_helo(&ps, "localhost", &v), VERDICT_CONTINUE);
}

static void
test_spoof_and_header_rules(void)
{
	const char *h1 = "From: Boss <boss@ours.example>\r\nTo: x@ours.example\r\n";
	const char *h2 = "Sender: list@lists.other.example\r\nFrom: boss@ours.example\r\n";
	const char *h3 = "Subject: you won\r\n the lottery\r\n";
	const char *h4 = "X-Mailer: bulk 1.0\r\nSubject: hi\r\n";
	struct policy_session ps;
	struct verdict v;
	struct str tags;

	str_init(&tags, 4096);
	session(&ps, "192.0.2.80");
	(void)policy_mail(&ps, "someone@ours.example", &v);
	CU_ASSERT_EQUAL(policy_headers(&ps, h1, strlen(h1), &tags, &v), VERDICT_CONTINUE);
	CU_ASSERT_STRING_EQUAL(str_cstr(&tags), "X-warning: suspect envelope domain\r\n"
	    "X-warning: suspect From: domain\r\n");
	/* A good Sender: vouches for the message (mailing lists). */
	str_clear(&tags);
	policy_reset(&ps);
	(void)policy_mail(&ps, "list@lists.other.example", &v);
	CU_ASSERT_EQUAL(policy_headers(&ps, h2, strlen(h2), &tags, &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(tags.len, 0);
	/* Folded header lines are matched unfolded. */
	str_clear(&tags);
	CU_ASSERT_EQUAL(policy_headers(&ps, h3, strlen(h3), &tags, &v), VERDICT_REJECT);
	CU_ASSERT_STRING_EQUAL(v.reply.text, "No lotteries");
	str_clear(&tags);
	CU_ASSERT_EQUAL(policy_headers(&ps, h4, strlen(h4), &tags, &v), VERDICT_CONTINUE);
	CU_ASSERT_STRING_EQUAL(str_cstr(&tags), "X-Bulk: yes\r\n");
	/* Trusted senders are never tagged. */
	str_clear(&tags);
	session(&ps, "127.0.0.1");
	(void)policy_mail(&ps, "someone@ours.example", &v);
	CU_ASSERT_EQUAL(policy_headers(&ps, h1, strlen(h1), &tags, &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(tags.len, 0);
	str_free(&tags);
}

static void
test_greylist(void)
{
	struct policy_session ps;
	struct verdict v;

	session(&ps, "192.0.2.90");
	(void)policy_mail(&ps, "a@sender.example", &v);
	/* First time: 451, continuing the session. */
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "u@ours.example", &v), VERDICT_DEFER);
	CU_ASSERT_EQUAL(v.reply.code, 451);
	CU_ASSERT_STRING_EQUAL(v.reply.status, "4.7.1");
	/* A retry (delay 0 here) from the same /24 passes, and stays passed. */
	session(&ps, "192.0.2.91");
	(void)policy_mail(&ps, "a@sender.example", &v);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "u@ours.example", &v), VERDICT_CONTINUE);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "u@ours.example", &v), VERDICT_CONTINUE);
	/* Another triplet starts over; trusted clients are never greylisted. */
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "w@ours.example", &v), VERDICT_DEFER);
	session(&ps, "127.0.0.1");
	(void)policy_mail(&ps, "a@sender.example", &v);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "z@ours.example", &v), VERDICT_CONTINUE);
	/* The rules' accept skips the greylist. */
	session(&ps, "192.0.2.95");
	(void)policy_mail(&ps, "b@sender.example", &v);
	CU_ASSERT_EQUAL(policy_rcpt(&ps, "abuse@ours.example", &v), VERDICT_CONTINUE);
	policy_state_flush(st, pol);
	CU_ASSERT_EQUAL(access(grey, R_OK), 0);
}

/* One more connection from addr against a limit of max a minute. */
static int
rate_from(struct policy_state *rs, const char *addr, unsigned int max)
{
	struct sockaddr_storage ss;

	CU_ASSERT_FATAL(net_pton(addr, &ss) == 0);
	return state_rate(rs, &ss, RATE_CONN, max);
}

static void
test_rate_grouping(void)
{
	struct policy_state *rs = policy_state_new();

	CU_ASSERT_FATAL(rs != NULL);
	/* IPv6: one /64 is one client, whatever its addresses. */
	CU_ASSERT_EQUAL(rate_from(rs, "2001:db8:1:2::1", 2), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "2001:db8:1:2::ffff", 2), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "2001:db8:1:2:abcd::9", 2), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "2001:db8:1:3::1", 2), 0);
	/* IPv4: each address; a mapped address is the same client. */
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.1", 1), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.1", 1), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "::ffff:192.0.2.1", 1), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.2", 1), 0);
	policy_state_free(&rs);
}

static void
test_rate_eviction(void)
{
	struct policy_state *rs = policy_state_new();

	CU_ASSERT_FATAL(rs != NULL);
	state_set_rate_max(rs, 4);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.1", 1), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.2", 1), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.3", 1), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.4", 1), 0);
	/* .1 is seen again: now .2 is the least recent. */
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.1", 1), 1);
	/* Full: a new client is still counted, and .2 is forgotten. */
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.5", 1), 0);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.5", 1), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.1", 1), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.2", 1), 0);
	/* That pushed out .3, the least recent then; .4 is still there. */
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.4", 1), 1);
	CU_ASSERT_EQUAL(rate_from(rs, "192.0.2.3", 1), 0);
	policy_state_free(&rs);
}

int
suite_modules(void)
{
	CU_pSuite s = CU_add_suite("modules", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "relay battery", test_relay_battery) == NULL ||
	    CU_add_test(s, "Plan 9 access verbs", test_access_verbs) == NULL ||
	    CU_add_test(s, "HELO checks", test_helo_checks) == NULL ||
	    CU_add_test(s, "spoof tags and header rules", test_spoof_and_header_rules) == NULL ||
	    CU_add_test(s, "greylisting", test_greylist) == NULL ||
	    CU_add_test(s, "rate table: IPv6 /64 grouping",
	    test_rate_grouping) == NULL ||
	    CU_add_test(s, "rate table: least recent client evicted",
	    test_rate_eviction) == NULL)
		return -1;
	return 0;
}
