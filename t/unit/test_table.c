#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/table.h"
#include "tests.h"
#include "testutil.h"

static void
test_inline(void)
{
	char err[256], val[64];
	struct table *t = table_inline_new("users");

	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(table_inline_add(t, "Alice", "one", err, sizeof(err)) == 0);
	CU_ASSERT(table_inline_add(t, "bob@example.com", NULL, err,
	    sizeof(err)) == 0);
	CU_ASSERT(table_inline_finish(t, err, sizeof(err)) == 0);
	CU_ASSERT(table_lookup(t, "ALICE", val, sizeof(val), err,
	    sizeof(err)) == TABLE_FOUND);
	CU_ASSERT_STRING_EQUAL(val, "one");
	CU_ASSERT(table_lookup(t, "Bob@Example.COM", NULL, 0, err,
	    sizeof(err)) == TABLE_FOUND);
	CU_ASSERT(table_lookup(t, "carol", NULL, 0, err, sizeof(err)) ==
	    TABLE_NOTFOUND);
	CU_ASSERT(table_size(t) == 2);
	table_free(&t);
	CU_ASSERT(t == NULL);

	/* A key given twice is an error. */
	t = table_inline_new("users");
	CU_ASSERT(table_inline_add(t, "a", "", err, sizeof(err)) == 0);
	CU_ASSERT(table_inline_add(t, "A", "", err, sizeof(err)) == 0);
	CU_ASSERT(table_inline_finish(t, err, sizeof(err)) == -1);
	TU_CHECK(strstr(err, "listed twice") != NULL, "err: %s", err);
	table_free(&t);
}

static void
test_file_and_cdb(void)
{
	char dir[256], path[300], cdb[300], ref[320], err[512], val[64];
	struct table *t;
	size_t n;

	CU_ASSERT_FATAL(tu_mkdtemp(dir, sizeof(dir)) == 0);
	tu_path(path, sizeof(path), dir, "map");
	CU_ASSERT_FATAL(tu_write_file(path, "# comment\n\n  Key1   v a l  \n"
	    "key2\n", (size_t)-1, 0644) == 0);
	snprintf(ref, sizeof(ref), "file:%s", path);
	t = table_open(ref, err, sizeof(err));
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(table_lookup(t, "key1", val, sizeof(val), err,
	    sizeof(err)) == TABLE_FOUND);
	CU_ASSERT_STRING_EQUAL(val, "v a l");
	CU_ASSERT(table_lookup(t, "KEY2", val, sizeof(val), err,
	    sizeof(err)) == TABLE_FOUND);
	CU_ASSERT_STRING_EQUAL(val, "");
	CU_ASSERT(table_lookup(t, "key3", val, sizeof(val), err,
	    sizeof(err)) == TABLE_NOTFOUND);
	table_free(&t);

	/* The same file as CDB. */
	tu_path(cdb, sizeof(cdb), dir, "map.cdb");
	CU_ASSERT_FATAL(table_make_cdb(path, cdb, &n, err, sizeof(err)) == 0);
	CU_ASSERT(n == 2);
	snprintf(ref, sizeof(ref), "cdb:%s", cdb);
	t = table_open(ref, err, sizeof(err));
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(table_lookup(t, "Key1", val, sizeof(val), err,
	    sizeof(err)) == TABLE_FOUND);
	CU_ASSERT_STRING_EQUAL(val, "v a l");
	CU_ASSERT(table_lookup(t, "key9", val, sizeof(val), err,
	    sizeof(err)) == TABLE_NOTFOUND);
	table_free(&t);

	/* Errors name the file and line; nothing half-made is left. */
	CU_ASSERT_FATAL(tu_write_file(path, "a 1\nb 2\nA 3\n", (size_t)-1,
	    0644) == 0);
	unlink(cdb);
	CU_ASSERT(table_make_cdb(path, cdb, &n, err, sizeof(err)) == -1);
	TU_CHECK(strstr(err, "map:3: \"a\" is listed twice") != NULL,
	    "err: %s", err);
	CU_ASSERT(access(cdb, F_OK) == -1);
	snprintf(ref, sizeof(ref), "file:%s", path);
	CU_ASSERT(table_open(ref, err, sizeof(err)) == NULL);
	TU_CHECK(strstr(err, "map:3: \"a\" is listed twice (also line 1)") !=
	    NULL, "err: %s", err);
	tu_rmtree(dir);
}

static void
test_refs(void)
{
	char err[256];

	CU_ASSERT(table_is_ref("file:/x"));
	CU_ASSERT(table_is_ref("socketmap:unix:/x:y"));
	CU_ASSERT(!table_is_ref("ldap:/x"));
	CU_ASSERT(table_open("ldap:x", err, sizeof(err)) == NULL);
	CU_ASSERT(table_open("file:relative", err, sizeof(err)) == NULL);
	CU_ASSERT(table_open("socketmap:unix:/x", err, sizeof(err)) == NULL);
	CU_ASSERT(table_open("socketmap:inet:127.0.0.1:name", err,
	    sizeof(err)) == NULL);
	CU_ASSERT(table_open("socketmap:tcp:127.0.0.1:1:name", err,
	    sizeof(err)) == NULL);
}

static void
test_socketmap_down(void)
{
	char err[256];
	struct table *t;

	/* Nobody listens: a temporary failure with the reason, never NOTFOUND. */
	t = table_open("socketmap:unix:/nonexistent/sock:users", err,
	    sizeof(err));
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(table_lookup(t, "alice", NULL, 0, err, sizeof(err)) ==
	    TABLE_TEMP);
	TU_CHECK(strstr(err, "cannot connect") != NULL, "err: %s", err);
	table_free(&t);
}

static void
test_dovecot_refs_and_down(void)
{
	char err[256];
	struct table *t;

	CU_ASSERT(table_is_ref("dovecot:/run/dovecot/auth-userdb"));
	CU_ASSERT(table_open("dovecot:run/auth-userdb", err, sizeof(err)) ==
	    NULL);
	TU_CHECK(strstr(err, "absolute") != NULL, "err: %s", err);
	/* Dovecot not there: a temporary failure, never NOTFOUND. */
	t = table_open("dovecot:/nonexistent/auth-userdb", err, sizeof(err));
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(table_lookup(t, "bob@example.com", NULL, 0, err,
	    sizeof(err)) == TABLE_TEMP);
	TU_CHECK(strstr(err, "dovecot userdb /nonexistent/auth-userdb") !=
	    NULL, "err: %s", err);
	/* A name Dovecot cannot be asked for is nobody. */
	CU_ASSERT(table_lookup(t, "", NULL, 0, err, sizeof(err)) ==
	    TABLE_NOTFOUND);
	table_free(&t);
}

int
suite_table(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("table", NULL, NULL)) == NULL)
		return -1;
	if (CU_add_test(s, "inline", test_inline) == NULL ||
	    CU_add_test(s, "file and cdb", test_file_and_cdb) == NULL ||
	    CU_add_test(s, "references", test_refs) == NULL ||
	    CU_add_test(s, "socketmap down", test_socketmap_down) == NULL ||
	    CU_add_test(s, "dovecot refs and down",
	    test_dovecot_refs_and_down) == NULL)
		return -1;
	return 0;
}
