#include "config.h"

#include <stdio.h>
#include <string.h>

#include "auth/senders.h"
#include "tests.h"
#include "testutil.h"

static void
test_rules(void)
{
	static const char *const map[][2] = {
		{ "alice", "alice@example.org" },
		{ "alice", "@lists.example.org" },
		{ "admin", "*" },
		{ "postmaster@example.org", "<>" },
		{ "postmaster@example.org", "postmaster@example.org" },
		{ "bob", "Bob@Example.ORG" },
		{ "alice", "a.l.i.c.e@example.net" },	/* added later */
	};
	static const struct {
		const char	*login, *sender;
		int		 want;
	} rows[] = {
		{ "alice", "alice@example.org", 1 },
		{ "alice", "ALICE@EXAMPLE.ORG", 1 },
		{ "alice", "alice@example.org.evil", 0 },
		{ "alice", "xalice@example.org", 0 },
		{ "alice", "anyone@lists.example.org", 1 },
		{ "alice", "anyone@sub.lists.example.org", 0 },
		{ "alice", "a.l.i.c.e@example.net", 1 },
		{ "alice", "bob@example.org", 0 },
		{ "alice", "", 0 },
		{ "Alice", "alice@example.org", 0 },	/* logins are exact */
		{ "admin", "ceo@example.com", 1 },
		{ "admin", "", 1 },
		{ "postmaster@example.org", "", 1 },
		{ "postmaster@example.org", "postmaster@example.org", 1 },
		{ "postmaster@example.org", "root@example.org", 0 },
		{ "bob", "bob@example.org", 1 },
		/* Not in the map: only as itself. */
		{ "carol@example.org", "carol@example.org", 1 },
		{ "carol@example.org", "Carol@Example.org", 1 },
		{ "carol@example.org", "alice@example.org", 0 },
		{ "carol@example.org", "", 0 },
		{ "carol", "carol", 0 },
		{ "carol", "carol@example.org", 0 },
	};
	struct senders *m = senders_new();
	char err[256];
	size_t i;
	int r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		TU_CHECK(senders_add(m, map[i][0], map[i][1], err,
		    sizeof(err)) == 0, "add %s %s: %s", map[i][0], map[i][1],
		    err);
	/* Not ready before senders_finish(): nothing is allowed. */
	CU_ASSERT_EQUAL(senders_allowed(m, "admin", "x@y"), 0);
	CU_ASSERT_EQUAL(senders_finish(m), 0);
	CU_ASSERT_EQUAL(senders_count(m), sizeof(map) / sizeof(map[0]));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = senders_allowed(m, rows[i].login, rows[i].sender);
		TU_CHECK(r == rows[i].want, "%s as <%s>: got %d, want %d",
		    rows[i].login, rows[i].sender, r, rows[i].want);
	}
	CU_ASSERT_EQUAL(senders_allowed(m, NULL, "a@b"), 0);
	CU_ASSERT_EQUAL(senders_allowed(m, "admin", NULL), 0);
	senders_free(&m);
	CU_ASSERT_PTR_NULL(m);
	senders_free(&m);

	/* No map: no rule. */
	CU_ASSERT_EQUAL(senders_allowed(NULL, "anyone", "ceo@example.com"),
	    1);
}

static void
test_bad(void)
{
	static const char *const bad[] = {
		"", "alice", "alice@", "a@b@c", "alice @example.org",
		"<alice@example.org>", "@", "a\tb@c",
	};
	struct senders *m = senders_new();
	char err[256], big[SENDERS_PATTERN_MAX + 2];
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		TU_CHECK(senders_add(m, "x", bad[i], err, sizeof(err)) == -1 &&
		    strstr(err, "bad sender pattern") != NULL,
		    "pattern \"%s\": got \"%s\"", bad[i], err);
	}
	CU_ASSERT_EQUAL(senders_add(m, "", "*", err, sizeof(err)), -1);
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	big[10] = '@';
	CU_ASSERT_EQUAL(senders_add(m, "x", big, err, sizeof(err)), -1);
	big[sizeof(big) - 2] = '\0';
	CU_ASSERT_EQUAL(senders_add(m, "x", big, err, sizeof(err)), 0);
	for (i = 1; i < SENDERS_ENTRIES_MAX; i++)
		if (senders_add(m, "y", "*", err, sizeof(err)) == -1)
			break;
	CU_ASSERT_EQUAL(i, SENDERS_ENTRIES_MAX);
	CU_ASSERT_EQUAL(senders_add(m, "z", "*", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than"));
	senders_free(&m);
}

int
suite_senders(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("senders", NULL, NULL)) == NULL)
		return -1;
	if (CU_add_test(s, "rules", test_rules) == NULL ||
	    CU_add_test(s, "bad patterns and limits", test_bad) == NULL)
		return -1;
	return 0;
}
