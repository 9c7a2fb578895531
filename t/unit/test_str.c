#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "tests.h"

static void
test_append_bound(void)
{
	struct str s;

	str_init(&s, 8);
	CU_ASSERT_EQUAL(str_appends(&s, "abcd"), 0);
	CU_ASSERT_EQUAL(str_appends(&s, "efgh"), 0);
	CU_ASSERT_EQUAL(s.len, 8);
	/* One byte over the bound fails and changes nothing. */
	CU_ASSERT_EQUAL(str_appendc(&s, 'x'), -1);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "abcdefgh");
	str_clear(&s);
	CU_ASSERT_EQUAL(s.len, 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "");
	str_free(&s);
}

static void
test_appendf_and_consume(void)
{
	struct str s;

	str_init(&s, 100);
	CU_ASSERT_EQUAL(str_appendf(&s, "%d-%s", 42, "x"), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "42-x");
	CU_ASSERT_EQUAL(str_appendf(&s, "%97s", "y"), -1);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "42-x");
	str_consume(&s, 3);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "x");
	str_consume(&s, 10);
	CU_ASSERT_EQUAL(s.len, 0);
	str_free(&s);
}

static void
test_lcpy(void)
{
	char b[4];

	CU_ASSERT_EQUAL(str_lcpy(b, "abcdef", sizeof(b)), 6);
	CU_ASSERT_STRING_EQUAL(b, "abc");
	CU_ASSERT_EQUAL(str_lcpy(b, "ab", sizeof(b)), 2);
	CU_ASSERT_EQUAL(str_lcat(b, "cd", sizeof(b)), 4);
	CU_ASSERT_STRING_EQUAL(b, "abc");
}

static void
test_printable(void)
{
	char b[32];

	str_printable(b, sizeof(b), "a\r\nb\\", 5);
	CU_ASSERT_STRING_EQUAL(b, "a\\x0d\\x0ab\\x5c");
	/* Truncation never splits an escape. */
	str_printable(b, 6, "\x01\x02", 2);
	CU_ASSERT_STRING_EQUAL(b, "\\x01");
}

static void
test_read_fd(void)
{
	struct str s;
	int p[2];

	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	CU_ASSERT_EQUAL(write(p[1], "hello\0world", 11), 11);
	close(p[1]);
	str_init(&s, 100);
	CU_ASSERT_EQUAL(str_appends(&s, ">"), 0);
	CU_ASSERT_EQUAL(str_read_fd(&s, p[0]), 0);
	CU_ASSERT_EQUAL(s.len, 12);
	CU_ASSERT_EQUAL(memcmp(s.s, ">hello\0world", 12), 0);
	close(p[0]);
	str_free(&s);

	/* Over the limit: -2, EFBIG. */
	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	CU_ASSERT_EQUAL(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	str_init(&s, 4);
	errno = 0;
	CU_ASSERT_EQUAL(str_read_fd(&s, p[0]), -2);
	CU_ASSERT_EQUAL(errno, EFBIG);
	close(p[0]);
	str_free(&s);

	/* A read error: -1 with its errno. */
	str_init(&s, 4);
	CU_ASSERT_EQUAL(str_read_fd(&s, -1), -1);
	CU_ASSERT_EQUAL(errno, EBADF);
	str_free(&s);
}

static void
test_expand(void)
{
	const struct str_var vars[] = { { 'u', "joe" }, { 'd', "example.org" },
	    { 'e', "" } };
	struct str s;

	str_init(&s, 64);
	CU_ASSERT_EQUAL(str_expand(&s, "/var/mail/%d/%u%e/100%%", vars, 3), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "/var/mail/example.org/joe/100%");
	str_clear(&s);
	CU_ASSERT_EQUAL(str_expand(&s, "no variables", vars, 3), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "no variables");
	/* Unknown keys and a lone '%' at the end are errors. */
	str_clear(&s);
	CU_ASSERT_EQUAL(str_expand(&s, "%x", vars, 3), -1);
	str_clear(&s);
	CU_ASSERT_EQUAL(str_expand(&s, "a%", vars, 3), -1);
	str_clear(&s);
	CU_ASSERT_EQUAL(str_expand(&s, "%u", vars, 0), -1);
	str_free(&s);
	/* So is a result over the bound. */
	str_init(&s, 8);
	CU_ASSERT_EQUAL(str_expand(&s, "%d", vars, 3), -1);
	str_free(&s);
}

static void
test_host_eq(void)
{
	CU_ASSERT_TRUE(str_host_eq("mx.Example.ORG", "MX.example.org"));
	CU_ASSERT_TRUE(str_host_eq("mx.example.org.", "mx.example.org"));
	CU_ASSERT_TRUE(str_host_eq("mx.example.org", "mx.example.org."));
	CU_ASSERT_FALSE(str_host_eq("mx.example.org", "mx.example.or"));
	CU_ASSERT_FALSE(str_host_eq("mx.example.org", "mx2.example.org"));
	CU_ASSERT_FALSE(str_host_eq("mx.example.org..", "mx.example.org"));
	CU_ASSERT_TRUE(str_host_eq(".", ""));
}

int
suite_str(void)
{
	CU_pSuite s = CU_add_suite("str", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "append respects the bound", test_append_bound) == NULL ||
	    CU_add_test(s, "appendf and consume", test_appendf_and_consume) == NULL ||
	    CU_add_test(s, "lcpy/lcat truncate", test_lcpy) == NULL ||
	    CU_add_test(s, "printable escapes", test_printable) == NULL ||
	    CU_add_test(s, "read a descriptor", test_read_fd) == NULL ||
	    CU_add_test(s, "template expansion", test_expand) == NULL ||
	    CU_add_test(s, "host name comparison", test_host_eq) == NULL)
		return -1;
	return 0;
}
