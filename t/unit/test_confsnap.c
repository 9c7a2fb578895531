#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "auth/secrets.h"
#include "core/confsnap.h"
#include "conf/conffile.h"
#include "testutil.h"
#include "tests.h"

static char	dir[PATH_MAX];

static int
setup(void)
{
	return tu_mkdtemp(dir, sizeof(dir));
}

static int
teardown(void)
{
	tu_rmtree(dir);
	return 0;
}

static int
verifies(const struct config *c, const char *pass)
{
	return secrets_verify(c->secrets, "alice", pass, strlen(pass)) ==
	    SECRETS_OK;
}

/*
 * A changed secrets file makes a new snapshot for what starts next; one
 * taken before keeps its own table, and both share the policy.
 */
static void
test_secrets_change_makes_snapshot(void)
{
	char conf[PATH_MAX], sec[PATH_MAX], text[PATH_MAX + 64], err[512];
	struct config *c, *before, *after, *again;
	struct secrets *t;
	struct conf_file *cf;

	tu_path(sec, sizeof(sec), dir, "secrets");
	tu_path(conf, sizeof(conf), dir, "smtpd.conf");
	CU_ASSERT_FATAL(tu_write_file(sec, "alice:{PLAIN}first\n",
	    (size_t)-1, 0600) == 0);
	snprintf(text, sizeof(text), "spool = \"%s\";\n"
	    "auth = { secrets = \"secrets\"; };\n", dir);
	CU_ASSERT_FATAL(tu_write_file(conf, text, (size_t)-1, 0600) == 0);
	cf = conf_file_load(conf, 0, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
	CU_ASSERT_STRING_EQUAL(cf->auth.secrets, sec);
	t = secrets_load(sec, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	c = config_new(cf, NULL, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_EQUAL(c->queue, cf->queue);
	CU_ASSERT_PTR_EQUAL(c->auth, &cf->auth);
	config_install(c);

	before = config_session();
	CU_ASSERT_PTR_EQUAL(before, c);
	CU_ASSERT(verifies(before, "first"));
	CU_ASSERT_FATAL(tu_write_file(sec, "alice:{PLAIN}second-one\n",
	    (size_t)-1, 0600) == 0);
	after = config_session();
	CU_ASSERT_PTR_NOT_NULL_FATAL(after);
	CU_ASSERT_PTR_NOT_EQUAL(after, before);
	CU_ASSERT_PTR_EQUAL(after->policy, before->policy);
	CU_ASSERT(verifies(after, "second-one"));
	CU_ASSERT(!verifies(after, "first"));
	/* The running session's snapshot is as it was. */
	CU_ASSERT(verifies(before, "first"));
	again = config_current();
	CU_ASSERT_PTR_EQUAL(again, after);
	config_unref(&again);
	CU_ASSERT_PTR_NULL(again);
	/* Unchanged: the same snapshot. */
	again = config_session();
	CU_ASSERT_PTR_EQUAL(again, after);
	config_unref(&again);
	config_unref(&before);
	config_unref(&after);
	config_install(NULL);
	CU_ASSERT_PTR_NULL(config_current());
}

int
suite_confsnap(void)
{
	CU_pSuite s = CU_add_suite("confsnap", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "a changed secrets file makes a new snapshot",
	    test_secrets_change_makes_snapshot) == NULL)
		return -1;
	return 0;
}
