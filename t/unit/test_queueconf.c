#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "lib/str.h"
#include "queue/alias.h"
#include "queue/queueconf.h"
#include "tests.h"

/* Compiles text; NULL with err on failure. */
static struct queue_conf *
compile(const char *text, char *err, size_t errlen)
{
	struct queue_conf *qc;
	config_t cf;

	config_init(&cf);
	if (config_read_string(&cf, text) != CONFIG_TRUE) {
		snprintf(err, errlen, "syntax: %s", config_error_text(&cf));
		config_destroy(&cf);
		return NULL;
	}
	qc = queueconf_parse(config_root_setting(&cf), "t.conf",
	    "mx.example.com", "/tmp/spool", err, errlen);
	config_destroy(&cf);
	return qc;
}

static const char conf[] =
    "routes = (\n"
    "  { domain = \"example.com\"; local = \"list-*\"; action = \"pipe\";\n"
    "    command = [ \"/bin/cat\", \"%r\" ]; user = \"nobody\"; },\n"
    "  { domain = [ \"example.com\", \"mx.example.com\" ]; action = \"maildir\";\n"
    "    path = \"/var/mail/%d/%u\"; },\n"
    "  { domain = \"*.example.net\"; action = \"relay\"; host = \"tcp!smart!587\";\n"
    "    tls = \"require\"; auth = \"corp\"; concurrency = 3;\n"
    "    tls_cafile = \"/etc/ssl/corp.pem\"; },\n"
    "  { domain = \"*\"; action = \"relay\"; }\n"
    ");\n"
    "aliases = (\n"
    "  { name = \"postmaster\"; to = \"root\"; },\n"
    "  { name = \"root\"; to = [ \"root\", \"ops@example.org\" ]; },\n"
    "  { name = \"team@example.com\"; to = [ \"alice\", \"bob\", \"ALICE\" ]; },\n"
    "  { name = \"loop1\"; to = \"loop2\"; },\n"
    "  { name = \"loop2\"; to = \"loop3\"; },\n"
    "  { name = \"loop3\"; to = \"loop1\"; },\n"
    "  { name = \"deep0\"; to = \"deep1\"; }, { name = \"deep1\"; to = \"deep2\"; },\n"
    "  { name = \"deep2\"; to = \"deep3\"; }, { name = \"deep3\"; to = \"deep4\"; },\n"
    "  { name = \"deep4\"; to = \"deep5\"; }, { name = \"deep5\"; to = \"deep6\"; },\n"
    "  { name = \"deep6\"; to = \"deep7\"; }, { name = \"deep7\"; to = \"deep8\"; },\n"
    "  { name = \"deep8\"; to = \"deep9\"; }, { name = \"deep9\"; to = \"deep10\"; },\n"
    "  { name = \"deep10\"; to = \"deep11\"; }, { name = \"deep11\"; to = \"end\"; }\n"
    ");\n"
    "queue = { retry_min = \"2m\"; retry_max = 7200; lifetime = \"3d\";\n"
    "  delay_warning = \"4h\"; concurrency = 7; bounce_size = 1000;\n"
    "  relay_keys = \"/etc/smtpd/relay.keys\"; };\n";

static void
test_settings(void)
{
	struct queue_conf *qc;
	char err[512];

	qc = compile(conf, err, sizeof(err));
	if (qc == NULL)
		fprintf(stderr, "%s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qc);
	CU_ASSERT_EQUAL(qc->retry_min, 120);
	CU_ASSERT_EQUAL(qc->retry_max, 7200);
	CU_ASSERT_EQUAL(qc->lifetime, 3 * 86400);
	CU_ASSERT_EQUAL(qc->delay_warning, 4 * 3600);
	CU_ASSERT_EQUAL(qc->concurrency, 7);
	CU_ASSERT_EQUAL(qc->dest_concurrency, QC_DEF_DEST_CONCURRENCY);
	CU_ASSERT_EQUAL(qc->bounce_size, 1000);
	CU_ASSERT_EQUAL_FATAL(qc->nroutes, 4);
	CU_ASSERT_EQUAL(qc->routes[2].tls, ROUTE_TLS_REQUIRE);
	CU_ASSERT_STRING_EQUAL(qc->routes[2].auth, "corp");
	CU_ASSERT_EQUAL(qc->routes[2].concurrency, 3);
	/* Required TLS checks the certificate unless told otherwise. */
	CU_ASSERT_EQUAL(qc->routes[2].tls_verify, 1);
	CU_ASSERT_STRING_EQUAL(qc->routes[2].tls_cafile, "/etc/ssl/corp.pem");
	CU_ASSERT_PTR_NULL(qc->routes[2].tls_pin);
	/* By MX: DANE, else MTA-STS, else opportunistic. */
	CU_ASSERT_EQUAL(qc->routes[3].tls, ROUTE_TLS_AUTO);
	CU_ASSERT_EQUAL(qc->routes[3].tls_verify, 0);
	CU_ASSERT_STRING_EQUAL(qc->relay_keys, "/etc/smtpd/relay.keys");
	CU_ASSERT_STRING_EQUAL(qc->routes[0].user.name, "nobody");
	queueconf_unref(&qc);
	CU_ASSERT_PTR_NULL(qc);
}

/*
 * Local part and domain: lower case, no trailing dot; -1 when unusable,
 * some cut to 8 bytes.
 */
static void
test_split_mailbox(void)
{
	static const struct {
		const char	*mailbox;
		size_t		 len;
		int		 rc;
		const char	*local, *domain;
	} cases[] = {
		{ "Ann@Example.COM", 64, 0, "ann", "example.com" },
		{ "bob@example.com.", 64, 0, "bob", "example.com" },
		{ "a@b@example.org", 64, 0, "a@b", "example.org" },
		{ "postmaster", 64, 0, "postmaster", "mx.example.com" },
		{ "@example.com", 64, -1, "", "example.com" },
		{ "", 64, -1, "", "mx.example.com" },
		{ "0123456789@ex.com", 8, -1, "0123456", "ex.com" },
		{ "bob@0123456789.example", 8, -1, "bob", "0123456" },
	};
	struct queue_conf *qc;
	char err[512], local[64], domain[64];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(qc = compile(conf, err, sizeof(err)));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL(queueconf_split_mailbox(qc, cases[i].mailbox,
		    local, cases[i].len, domain, cases[i].len), cases[i].rc);
		CU_ASSERT_STRING_EQUAL(local, cases[i].local);
		CU_ASSERT_STRING_EQUAL(domain, cases[i].domain);
	}
	queueconf_unref(&qc);
}

static void
test_routes(void)
{
	static const struct {
		const char	*mailbox;
		int		 want;	/* route index, -1 none */
	} cases[] = {
		{ "list-users@example.com", 0 },
		{ "LIST-Users@Example.COM", 0 },
		{ "bob@example.com", 1 },
		{ "bob@example.com.", 1 },
		{ "postmaster", 1 },		/* bare: our hostname */
		{ "bob@a.example.net", 2 },
		{ "bob@example.net", 3 },	/* *.x does not match x */
		{ "bob@elsewhere.org", 3 },
	};
	struct queue_conf *qc;
	const struct route *r;
	char err[512];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(qc = compile(conf, err, sizeof(err)));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = queueconf_route(qc, cases[i].mailbox);
		if (r == NULL || (int)r->index != cases[i].want)
			fprintf(stderr, "%s: got route %d, want %d\n",
			    cases[i].mailbox, r ? (int)r->index : -1,
			    cases[i].want);
		CU_ASSERT(r != NULL && (int)r->index == cases[i].want);
	}
	queueconf_unref(&qc);

	/* No routes: everything is relayed by MX. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(qc = compile("", err, sizeof(err)));
	r = queueconf_route(qc, "x@anything.example");
	CU_ASSERT(r != NULL && r->action == ROUTE_RELAY && r->host == NULL);
	queueconf_unref(&qc);

	/* Routes, but none matches. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(qc = compile("routes = ( { domain = "
	    "\"a.example\"; action = \"relay\"; } );", err, sizeof(err)));
	CU_ASSERT_PTR_NULL(queueconf_route(qc, "x@b.example"));
	queueconf_unref(&qc);
}

static int
has(char **list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

static void
test_aliases(void)
{
	struct queue_conf *qc;
	char err[512], **list;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(qc = compile(conf, err, sizeof(err)));

	CU_ASSERT_EQUAL_FATAL(queueconf_expand(qc, "Postmaster@example.com",
	    &list, &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(has(list, n, "root@example.com"));
	CU_ASSERT(has(list, n, "ops@example.org"));
	queueconf_free_list(&list, n);

	/* Duplicates (any case) collapse. */
	CU_ASSERT_EQUAL_FATAL(queueconf_expand(qc, "team@example.com", &list,
	    &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n, 2);
	queueconf_free_list(&list, n);

	/* Relayed recipients are not expanded. */
	CU_ASSERT_EQUAL_FATAL(queueconf_expand(qc, "root@elsewhere.org", &list,
	    &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(list[0], "root@elsewhere.org");
	queueconf_free_list(&list, n);

	/* A cycle ends at the address that closes it. */
	CU_ASSERT_EQUAL_FATAL(queueconf_expand(qc, "loop1@example.com", &list,
	    &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(list[0], "loop1@example.com");
	queueconf_free_list(&list, n);

	CU_ASSERT_EQUAL(queueconf_expand(qc, "deep0@example.com", &list, &n,
	    err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "deeper than"));
	queueconf_unref(&qc);
}

/*
 * A 999-member alias and one of the same members in other cases, nested in
 * another: duplicates go, the first spelling and the order stay; one
 * member more is refused.
 */
static void
test_big_alias(void)
{
	struct queue_conf *qc;
	struct qc_addrset set;
	struct str s;
	char err[512], want[64], **list;
	size_t i, n;

	str_init(&s, 1 << 20);
	CU_ASSERT_EQUAL(str_appends(&s, "routes = ( { domain = \"example.com\";"
	    " action = \"maildir\"; path = \"/var/mail/%u\"; } );\n"
	    "aliases = ( { name = \"outer\"; to = [ \"big\", \"dups\", "
	    "\"u0\", \"outer\" ]; },\n{ name = \"big\"; to = [ "), 0);
	for (i = 0; i < 999; i++)
		CU_ASSERT_EQUAL(str_appendf(&s, "%s\"u%zu\"", i ? ", " : "",
		    i), 0);
	CU_ASSERT_EQUAL(str_appends(&s, " ]; },\n{ name = \"dups\"; to = [ "),
	    0);
	for (i = 0; i < 999; i++)
		CU_ASSERT_EQUAL(str_appendf(&s, "%s\"U%zu@Example.COM\"",
		    i ? ", " : "", i), 0);
	CU_ASSERT_EQUAL(str_appends(&s, " ]; },\n"
	    "{ name = \"bigger\"; to = [ \"big\", \"x1\", \"x2\" ]; } );\n"), 0);
	qc = compile(str_cstr(&s), err, sizeof(err));
	str_free(&s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qc);

	CU_ASSERT_EQUAL_FATAL(queueconf_expand(qc, "outer@example.com", &list,
	    &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1000);
	for (i = 0; i < 999; i++) {
		snprintf(want, sizeof(want), "u%zu@example.com", i);
		CU_ASSERT_STRING_EQUAL(list[i], want);
	}
	/* outer names itself: delivered to, not expanded again. */
	CU_ASSERT_STRING_EQUAL(list[999], "outer@example.com");
	queueconf_free_list(&list, n);

	CU_ASSERT_EQUAL(queueconf_expand(qc, "bigger@example.com", &list, &n,
	    err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 1000 addresses"));
	queueconf_unref(&qc);

	memset(&set, 0, sizeof(set));
	for (i = 0; i < 5000; i++) {
		snprintf(want, sizeof(want), "a%zu@x", i);
		CU_ASSERT_EQUAL(queueconf_addrset_add(&set, want), 1);
	}
	CU_ASSERT_EQUAL(queueconf_addrset_add(&set, "A4999@X"), 0);
	CU_ASSERT_EQUAL(queueconf_addrset_add(&set, "a5000@x"), 1);
	CU_ASSERT_EQUAL(set.n, 5001);
	queueconf_addrset_free(&set);
}

static void
test_errors(void)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "routes = ( { domain = \"x.example\"; action = \"fly\"; } );",
		    "t.conf:1: unknown action" },
		{ "routes = (\n { action = \"relay\"; } );",
		    "t.conf:2: a route needs a domain" },
		{ "routes = ( { domain = \"x.example\"; action = \"maildir\"; } );",
		    "a maildir route needs a path" },
		{ "routes = ( { domain = \"x.example\"; action = \"maildir\"; "
		    "path = \"/m/%x\"; } );", "only %u" },
		{ "routes = ( { domain = \"x.example\"; action = \"pipe\"; "
		    "command = [ \"prog\" ]; } );", "must be an absolute path" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "path = \"/x\"; } );", "path applies only to maildir" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "auth = \"corp\"; } );", "auth needs a smarthost" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "tls = \"maybe\"; } );", "tls must be" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "host = \"smart\"; auth = \"corp\"; } );",
		    "auth needs queue.relay_keys" },
		{ "queue = { relay_keys = \"\"; };",
		    "relay_keys must be a path" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "tls_verify = true; } );", "tls_verify needs tls" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "tls = \"may\"; tls_cafile = \"/ca.pem\"; } );",
		    "need tls = \"require\"" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "tls = \"require\"; tls_verify = false; "
		    "tls_pin = \"sha256:AB\"; } );", "tls_pin must be" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "tls = \"require\"; tls_verify = false; tls_pin = "
		    "\"sha256:0000000000000000000000000000000000000000000000000000"
		    "000000000000\"; } );", "need tls = \"require\" with the" },
		{ "routes = ( { domain = \"x.example\"; action = \"maildir\"; "
		    "path = \"/m\"; tls_pin = \"x\"; } );",
		    "tls_pin applies only to relay" },
		{ "routes = ( { domain = \"bad..domain\"; action = \"relay\"; } );",
		    "is not a domain" },
		{ "routes = ( { domain = \"x.example\"; action = \"relay\"; "
		    "colour = 1; } );", "unknown setting \"colour\"" },
		{ "routes = ( { domain = \"x.example\"; action = \"pipe\"; "
		    "command = [ \"/bin/true\" ]; user = \"no-such-user-x\"; } );",
		    "no such user" },
		{ "aliases = ( { name = \"a\"; to = \"b\"; },\n"
		    "{ name = \"A\"; to = \"c\"; } );", "defined twice" },
		{ "aliases = ( { name = \"a b\"; to = \"b\"; } );",
		    "is not a local part" },
		{ "queue = { retry_min = 600; retry_max = 60; };",
		    "retry_max must not be less" },
		{ "queue = { lifetime = \"5 days\"; };", "is not a duration" },
		{ "queue = { delay_warning = \"6d\"; };",
		    "delay_warning must be shorter" },
		{ "queue = { concurrency = 0; };", "between 1 and" },
	};
	struct queue_conf *qc;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		qc = compile(cases[i].text, err, sizeof(err));
		CU_ASSERT_PTR_NULL(qc);
		if (strstr(err, cases[i].want) == NULL)
			fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n",
			    i, err, cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
		queueconf_unref(&qc);
	}
}

static void
test_duration(void)
{
	unsigned int v;

	CU_ASSERT(queueconf_duration("90", &v) == 0 && v == 90);
	CU_ASSERT(queueconf_duration("90s", &v) == 0 && v == 90);
	CU_ASSERT(queueconf_duration("15m", &v) == 0 && v == 900);
	CU_ASSERT(queueconf_duration("2h", &v) == 0 && v == 7200);
	CU_ASSERT(queueconf_duration("5d", &v) == 0 && v == 432000);
	CU_ASSERT(queueconf_duration("1w", &v) == 0 && v == 604800);
	CU_ASSERT_EQUAL(queueconf_duration("", &v), -1);
	CU_ASSERT_EQUAL(queueconf_duration("m", &v), -1);
	CU_ASSERT_EQUAL(queueconf_duration("5x", &v), -1);
	CU_ASSERT_EQUAL(queueconf_duration("5mm", &v), -1);
	CU_ASSERT_EQUAL(queueconf_duration("99999999999", &v), -1);
	CU_ASSERT_EQUAL(queueconf_duration("9999999w", &v), -1);
}

int
suite_queueconf(void)
{
	CU_pSuite s = CU_add_suite("queueconf", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "settings", test_settings) == NULL ||
	    CU_add_test(s, "mailboxes split", test_split_mailbox) == NULL ||
	    CU_add_test(s, "route matching", test_routes) == NULL ||
	    CU_add_test(s, "alias expansion", test_aliases) == NULL ||
	    CU_add_test(s, "a big alias", test_big_alias) == NULL ||
	    CU_add_test(s, "errors", test_errors) == NULL ||
	    CU_add_test(s, "durations", test_duration) == NULL)
		return -1;
	return 0;
}
