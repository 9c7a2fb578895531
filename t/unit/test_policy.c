#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conffile.h"
#include "policy/milterconf.h"
#include "policy/policy.h"
#include "tests.h"

static char path[64];
static struct conf_file *loaded;

/* The policy section of path as smtpd compiles it, or NULL. */
static struct policy *
load_path(const char *file, int missing_ok,
    const struct policy_overrides *pov, char *err, size_t errlen)
{
	struct conf_overrides ov;

	memset(&ov, 0, sizeof(ov));
	if (pov != NULL)
		ov.policy = *pov;
	loaded = conf_file_load(file, missing_ok, &ov, err, errlen);
	return loaded != NULL ? loaded->policy : NULL;
}

/* Lets go of what load() compiled. */
static void
release(struct policy **p)
{
	*p = NULL;
	conf_file_unref(&loaded);
}

/* Writes text to a temp config file and loads it. */
static struct policy *
load(const char *text, char *err, size_t errlen)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/test-policy-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return load_path(path, 0, NULL, err, errlen);
}

/* The error must name the file and the line. */
static void
expect_error(const char *text, int line, const char *what)
{
	char err[512], want[128];
	struct policy *p = load(text, err, sizeof(err));

	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
		fprintf(stderr, "\ngot \"%s\", want \"%s...%s\"\n", err, want, what);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, what));
	release(&p);
	unlink(path);
}

/* A listener's milters names become indexes into milters, in its order. */
static void
test_listener_milters(void)
{
	char err[512];
	const struct listen_conf *l;
	struct policy *p = load(
	    "milters = ( { name = \"a\"; address = \"inet:h:1\"; },\n"
	    "  { address = \"inet:h:2\"; },\n"
	    "  { name = \"c-2_x\"; address = \"unix:/x\"; } );\n"
	    "listen = ( { address = \":25\"; milters = [ \"c-2_x\", "
	    "\"a\" ]; },\n"
	    "  { address = \":26\"; milters = []; }, \":27\",\n"
	    "  { address = \":28\"; milters = \"a\"; } );\n",
	    err, sizeof(err));

	if (p == NULL)
		fprintf(stderr, "\n%s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL_FATAL(p->listeners.n, 4);
	CU_ASSERT_STRING_EQUAL(p->milters->m[2].name, "c-2_x");
	CU_ASSERT_STRING_EQUAL(p->milters->m[1].name, "");
	l = &p->listeners.l[0];
	CU_ASSERT(l->milters_set && l->nmilters == 2);
	CU_ASSERT(l->milter[0] == 2 && l->milter[1] == 0);
	l = &p->listeners.l[1];
	CU_ASSERT(l->milters_set && l->nmilters == 0);
	CU_ASSERT_FALSE(p->listeners.l[2].milters_set);
	l = &p->listeners.l[3];
	CU_ASSERT(l->milters_set && l->nmilters == 1 && l->milter[0] == 0);
	release(&p);
	unlink(path);
	expect_error("milters = ( { name = \"a\"; address = \"inet:h:1\"; } );"
	    "\nlisten = ( { address = \":25\";\n milters = [ \"a\", \"b\" ]; "
	    "} );\n", 3, "no milter named \"b\"");
	expect_error("milters = ( { name = \"a\"; address = \"inet:h:1\"; },\n"
	    "{ name = \"a\"; address = \"inet:h:2\"; } );\n", 2,
	    "two milters named \"a\"");
}

static void
test_good(void)
{
	char err[512];
	struct policy *p = load(
	    "hostname = \"mx.example.com\";\n"
	    "listen = [ \"127.0.0.1:25\", \"[::1]:25\" ];\n"
	    "spool = \"/tmp/x\";\n"
	    "limits = { message_size = 1000; recipients = 200; };\n",
	    err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->hostname, "mx.example.com");
	CU_ASSERT_EQUAL(p->nlisten, 2);
	CU_ASSERT_STRING_EQUAL(p->listen[1], "[::1]:25");
	CU_ASSERT_EQUAL(p->message_size, 1000);
	CU_ASSERT_EQUAL(p->recipients, 200);
	CU_ASSERT_EQUAL(p->sessions, DEF_SESSIONS);
	release(&p);
	CU_ASSERT_PTR_NULL(p);
	unlink(path);
}

static void
test_errors(void)
{
	expect_error("hostname = \"a.b\";\nbogus = 1;\n", 2, "unknown setting \"bogus\"");
	expect_error("limits = {\n  recipients = 10;\n};\n", 2, "between 100 and");
	expect_error("limits = {\n\n  nope = 1;\n};\n", 3, "unknown setting");
	expect_error("spool = 5;\n", 1, "must be a string");
	expect_error("listen = [ \"1.2.3.4\" ];\n", 1, "bad listen address");
	expect_error("hostname = \"a b\";\n", 1, "not a valid domain");
	expect_error("x = ;\n", 1, "syntax error");
	expect_error("\nlimits = { line_length = 100; };\n", 2, "at least 998");
	expect_error("ournets = [ \"10.0.0.1/8\" ];\n", 1, "host bits");
	expect_error("ournets = [ \"10.0.0.0/8\",\n \"nonsense\" ];\n", 2,
	    "not an IPv4 or IPv6 address");
	expect_error("ourdomains = [ \"bad domain\" ];\n", 1, "not a domain");
	expect_error("block = \"300.1.1.1\";\n", 1, "block");
	expect_error("access = [ \"allow 10.0.0.0/8\",\n \"frob 1.2.3.4\" ];\n", 2,
	    "is not allow, block, deny, dial or delay");
	expect_error("access = [ \"deny *!*\" ];\n", 1, "match everyone");
	expect_error("rules = (\n { sender = \"(unclosed\"; } );\n", 2,
	    "bad regular expression");
	expect_error("rules = (\n { sender = \"x\"; action = \"zap\"; } );\n", 2,
	    "is not reject, defer");
	expect_error("rules = ( { sender = \"x\"; action = \"tag\"; text = \"X-A: b\"; } );\n",
	    1, "only header rules can tag");
	expect_error("rules = ( { sender = \"x\"; action = \"defer\"; code = 550; } );\n",
	    1, "does not fit action");
	expect_error("greylist = { delay = 60;\n frob = 1; };\n", 2, "unknown setting");
	expect_error("norelay = \"on\";\n", 1, "true or false");
}

/* A configured enhanced status is taken whole or refused, never cut. */
static void
test_rule_status(void)
{
	char err[512];
	struct policy *p;

	expect_error("rules = ( { sender = \"x\";\n"
	    " status = \"5.7.1234\"; } );\n", 2,
	    "status \"5.7.1234\" does not fit code 550");
	expect_error("rules = ( { sender = \"x\";\n\n"
	    " status = \"5.7.1.2\"; } );\n", 3, "does not fit code");
	expect_error("rules = ( { sender = \"x\"; status = \"4.7.1\"; } );\n",
	    1, "does not fit code 550");
	expect_error("rules = ( { sender = \"x\"; status = \"5.7\"; } );\n",
	    1, "does not fit code 550");
	p = load("rules = ( { sender = \"x\"; status = \"5.999.999\"; } );\n",
	    err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->nrules, 1);
	CU_ASSERT_STRING_EQUAL(p->rules[0].status, "5.999.999");
	release(&p);
	unlink(path);
}

static void
test_overrides(void)
{
	struct policy_overrides ov;
	char err[256];
	struct policy *p;

	memset(&ov, 0, sizeof(ov));
	ov.hostname = "cmdline.example";
	ov.listen[0] = ":2525";
	ov.nlisten = 1;
	p = load_path("/nonexistent/smtpd.conf", 1, &ov, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->hostname, "cmdline.example");
	CU_ASSERT_EQUAL(p->nlisten, 1);
	release(&p);
	/* A missing file named on purpose is an error. */
	p = load_path("/nonexistent/smtpd.conf", 0, &ov, err, sizeof(err));
	CU_ASSERT_PTR_NULL(p);
}

int
suite_policy(void)
{
	CU_pSuite s = CU_add_suite("policy", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "a good config", test_good) == NULL ||
	    CU_add_test(s, "errors name file and line", test_errors) == NULL ||
	    CU_add_test(s, "a rule's status is never cut",
	    test_rule_status) == NULL ||
	    CU_add_test(s, "command line overrides", test_overrides) == NULL ||
	    CU_add_test(s, "listener milters", test_listener_milters) == NULL)
		return -1;
	return 0;
}
