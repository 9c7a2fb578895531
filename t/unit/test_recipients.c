#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "queue/queueconf.h"
#include "queue/recipients.h"
#include "tests.h"
#include "testutil.h"

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
	qc = queueconf_parse(config_root_setting(&cf), "/etc/t.conf",
	    "mx.example.com", "/tmp/spool", err, errlen);
	config_destroy(&cf);
	return qc;
}

static const char conf[] =
    "routes = (\n"
    "  { domain = \"lists.example.com\"; action = \"pipe\"; local = \"*\";\n"
    "    command = [ \"/bin/true\" ]; user = \"root\"; },\n"
    "  { domain = \"catch.example\"; action = \"maildir\"; catchall = true;\n"
    "    path = \"/nonexistent/%u\"; create = true; },\n"
    "  { domain = \"example.com\"; action = \"maildir\";\n"
    "    path = \"/nonexistent/%u\"; create = true; },\n"
    "  { domain = \"*\"; sender = \"*@sales.example\"; action = \"relay\";\n"
    "    host = \"127.0.0.1:1\"; },\n"
    "  { domain = \"*\"; login = \"bob\"; action = \"relay\";\n"
    "    host = \"127.0.0.1:2\"; },\n"
    "  { domain = \"*\"; action = \"relay\"; }\n"
    ");\n"
    "aliases = ( { name = \"info\"; to = \"alice\"; } );\n"
    "users = [ \"alice\", \"bob@example.com\" ];\n"
    "relay_recipients = [ \"ok@example.net\", \"@all.example\" ];\n"
    "recipient_delimiter = \"+\";\n";

static void
test_verify(void)
{
	static const struct {
		const char	*rcpt;
		int		 ours;
		enum qc_verdict	 want;
	} rows[] = {
		{ "alice@example.com", 1, QV_OK },
		{ "ALICE+news@example.com", 1, QV_OK },
		{ "bob@example.com", 1, QV_OK },
		{ "bob+x@example.com", 1, QV_OK },
		{ "carol@example.com", 1, QV_UNKNOWN },
		{ "carol+alice@example.com", 1, QV_UNKNOWN },
		{ "info+x@example.com", 1, QV_OK },
		{ "postmaster@example.com", 1, QV_OK },
		{ "postmaster", 1, QV_OK },
		{ "anyone@lists.example.com", 1, QV_OK },
		{ "anyone@catch.example", 1, QV_OK },
		{ "ok@example.net", 1, QV_OK },
		{ "no@example.net", 1, QV_UNKNOWN },
		{ "no@example.net", 0, QV_OK },
		{ "z@all.example", 1, QV_OK },
	};
	struct queue_conf *qc;
	char err[512], why[256];
	enum qc_verdict v;
	size_t i;

	qc = compile(conf, err, sizeof(err));
	TU_CHECK(qc != NULL, "compile: %s", err);
	if (qc == NULL)
		return;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		v = queueconf_verify(qc, rows[i].rcpt, "a@b.example", NULL,
		    rows[i].ours, why, sizeof(why));
		TU_CHECK(v == rows[i].want, "%s: got %d, want %d", rows[i].rcpt,
		    (int)v, (int)rows[i].want);
	}
	/* create = true makes Maildirs for listed users only. */
	CU_ASSERT(queueconf_may_create(qc, queueconf_route(qc,
	    "alice+x@example.com"), "alice+x@example.com", why,
	    sizeof(why)) == 1);
	CU_ASSERT(queueconf_may_create(qc, queueconf_route(qc,
	    "carol@example.com"), "carol@example.com", why, sizeof(why)) == 0);
	CU_ASSERT(queueconf_may_create(qc, queueconf_route(qc,
	    "carol@catch.example"), "carol@catch.example", why,
	    sizeof(why)) == 1);
	queueconf_unref(&qc);
}

static void
test_sender_routes(void)
{
	struct queue_conf *qc;
	const struct route *r;
	char err[512];

	qc = compile(conf, err, sizeof(err));
	TU_CHECK(qc != NULL, "compile: %s", err);
	if (qc == NULL)
		return;
	r = queueconf_route_from(qc, "x@example.net", "Ann@Sales.Example", NULL);
	CU_ASSERT(r != NULL && r->index == 3);
	r = queueconf_route_from(qc, "x@example.net", "ann@eng.example", "bob");
	CU_ASSERT(r != NULL && r->index == 4);
	r = queueconf_route_from(qc, "x@example.net", "", "carol");
	CU_ASSERT(r != NULL && r->index == 5);
	/* Without a sender (alias expansion), sender routes do not match. */
	r = queueconf_route(qc, "x@example.net");
	CU_ASSERT(r != NULL && r->index == 5);
	queueconf_unref(&qc);
}

static void
test_errors(void)
{
	static const struct {
		const char	*text, *want;
	} rows[] = {
		{ "recipient_delimiter = \"@\";", "t.conf:1: recipient_delimiter" },
		{ "\nusers = 5;", "t.conf:2: users must be a table" },
		{ "users = \"ldap:x\";", "is not a table" },
		{ "users = [ \"a\", \"A\" ];", "listed twice" },
		{ "users = \"file:/nonexistent/users\";",
		    "/nonexistent/users: No such file" },
		{ "routes = ( { domain = \"*\"; action = \"relay\"; "
		    "catchall = true; } );", "catchall applies only to maildir" },
		{ "routes = ( { domain = \"*\"; action = \"relay\"; "
		    "sender = \"\"; } );", "sender must not be empty" },
	};
	struct queue_conf *qc;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = '\0';
		qc = compile(rows[i].text, err, sizeof(err));
		TU_CHECK(qc == NULL && strstr(err, rows[i].want) != NULL,
		    "%s: got \"%s\"", rows[i].text, err);
		queueconf_unref(&qc);
	}
}

int
suite_recipients(void)
{
	CU_pSuite s = CU_add_suite("recipients", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "verification", test_verify) == NULL ||
	    CU_add_test(s, "sender-dependent routes", test_sender_routes) ==
	    NULL ||
	    CU_add_test(s, "errors", test_errors) == NULL)
		return -1;
	return 0;
}
