#include "config.h"

#include <string.h>

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

int
suite_str(void)
{
	CU_pSuite s = CU_add_suite("str", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "append respects the bound", test_append_bound) == NULL ||
	    CU_add_test(s, "appendf and consume", test_appendf_and_consume) == NULL ||
	    CU_add_test(s, "lcpy/lcat truncate", test_lcpy) == NULL ||
	    CU_add_test(s, "printable escapes", test_printable) == NULL)
		return -1;
	return 0;
}
