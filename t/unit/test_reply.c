#include "config.h"

#include <string.h>

#include "lib/reply.h"
#include "lib/str.h"
#include "tests.h"

static void
test_status_valid(void)
{
	static const struct {
		const char	*status;
		int		 want;
	} rows[] = {
		{ "2.0.0", 1 }, { "4.7.1", 1 }, { "5.1.1", 1 },
		{ "5.999.999", 1 }, { "5.10.100", 1 },
		{ "", 0 }, { "5", 0 }, { "5.", 0 }, { "5.1", 0 }, { "5.1.", 0 },
		{ "3.0.0", 0 }, { "6.0.0", 0 }, { "5.1000.1", 0 },
		{ "5.1.1000", 0 }, { "5.1.1.1", 0 }, { "5.1.1 ", 0 },
		{ "5.a.1", 0 }, { " 5.1.1", 0 }, { "5..1", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (reply_status_valid(rows[i].status) != rows[i].want)
			fprintf(stderr, "status \"%s\": got %d, want %d\n",
			    rows[i].status, !rows[i].want, rows[i].want);
		CU_ASSERT_EQUAL(reply_status_valid(rows[i].status),
		    rows[i].want);
	}
	CU_ASSERT_FALSE(reply_status_valid(NULL));
	CU_ASSERT_TRUE(reply_status_fits("5.7.1", 554));
	CU_ASSERT_FALSE(reply_status_fits("4.7.1", 554));
	CU_ASSERT_FALSE(reply_status_fits("5.7.1", 0));
}

static void
test_set_status_never_cut(void)
{
	struct reply r;

	CU_ASSERT_EQUAL(reply_set(&r, 550, "5.1.1", "no such user"), 0);
	CU_ASSERT_EQUAL(r.code, 550);
	CU_ASSERT_STRING_EQUAL(r.status, "5.1.1");
	CU_ASSERT_STRING_EQUAL(r.text, "no such user");
	/* The longest valid status is kept whole. */
	CU_ASSERT_EQUAL(reply_set(&r, 550, "5.999.999", "x"), 0);
	CU_ASSERT_STRING_EQUAL(r.status, "5.999.999");
	/* Too long: the class default, not the first bytes of it. */
	CU_ASSERT_EQUAL(reply_set(&r, 550, "5.7.1234", "x"), -1);
	CU_ASSERT_STRING_EQUAL(r.status, "5.0.0");
	CU_ASSERT_EQUAL(reply_set(&r, 451, "5.7.1", "x"), -1);
	CU_ASSERT_STRING_EQUAL(r.status, "4.0.0");
	CU_ASSERT_EQUAL(reply_set(&r, 354, "2.0.0", "x"), -1);
	CU_ASSERT_STRING_EQUAL(r.status, "");
	CU_ASSERT_EQUAL(reply_set(&r, 250, NULL, "ok"), 0);
	CU_ASSERT_STRING_EQUAL(r.status, "");
	/* A code outside 200..599 clears the reply. */
	CU_ASSERT_EQUAL(reply_set(&r, 999, "5.0.0", "x"), -1);
	CU_ASSERT_EQUAL(r.code, 0);
	CU_ASSERT_STRING_EQUAL(r.text, "");
	/* No reply, a note only: there is no status for it. */
	CU_ASSERT_EQUAL(reply_set(&r, 0, NULL, "discard"), 0);
	CU_ASSERT_STRING_EQUAL(r.text, "discard");
	CU_ASSERT_EQUAL(reply_set(&r, 0, "5.0.0", "x"), -1);
	CU_ASSERT_STRING_EQUAL(r.status, "");
}

static void
test_text_cut_at_character(void)
{
	char big[REPLY_TEXT_MAX + 8], dst[6];
	struct reply r;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_EQUAL(reply_set(&r, 550, "5.0.0", "%s", big), -1);
	CU_ASSERT_EQUAL(strlen(r.text), REPLY_TEXT_MAX - 1);
	/* "é" (2 bytes) would straddle the bound: it goes whole. */
	memset(big, 'a', REPLY_TEXT_MAX - 2);
	memcpy(big + REPLY_TEXT_MAX - 2, "\xc3\xa9zz", 5);
	CU_ASSERT_EQUAL(reply_set(&r, 550, NULL, "%s", big), -1);
	CU_ASSERT_EQUAL(strlen(r.text), REPLY_TEXT_MAX - 2);
	CU_ASSERT_EQUAL(r.text[REPLY_TEXT_MAX - 3], 'a');
	/* A 4-byte character at the end. */
	CU_ASSERT_EQUAL(reply_text_cpy(dst, "ab\xf0\x9f\x98\x80", sizeof(dst)),
	    6);
	CU_ASSERT_STRING_EQUAL(dst, "ab");
	CU_ASSERT_EQUAL(reply_text_cpy(dst, "a\xe2\x82\xac" "b", sizeof(dst)),
	    5);
	CU_ASSERT_STRING_EQUAL(dst, "a\xe2\x82\xac" "b");
	/* Not UTF-8 at all: cut at the byte bound. */
	CU_ASSERT_EQUAL(reply_text_cpy(dst, "\x80\x80\x80\x80\x80\x80",
	    sizeof(dst)), 6);
	CU_ASSERT_EQUAL(strlen(dst), 5);
	/* Fits exactly: no cut. */
	CU_ASSERT_EQUAL(reply_set_text(&r, big, REPLY_TEXT_MAX - 1), 0);
	CU_ASSERT_EQUAL(strlen(r.text), REPLY_TEXT_MAX - 1);
}

static void
test_class(void)
{
	struct reply r;

	CU_ASSERT_EQUAL(reply_class(250), REPLY_POSITIVE);
	CU_ASSERT_EQUAL(reply_class(334), REPLY_INTERMEDIATE);
	CU_ASSERT_EQUAL(reply_class(421), REPLY_TEMPORARY);
	CU_ASSERT_EQUAL(reply_class(554), REPLY_PERMANENT);
	CU_ASSERT_EQUAL(reply_class(0), REPLY_NONE);
	CU_ASSERT_EQUAL(reply_class(600), REPLY_NONE);
	CU_ASSERT_EQUAL(reply_class(199), REPLY_NONE);
	(void)reply_set(&r, 452, "4.2.2", "full");
	CU_ASSERT_TRUE(reply_temporary(&r));
	CU_ASSERT_FALSE(reply_permanent(&r));
	reply_clear(&r);
	CU_ASSERT_FALSE(reply_temporary(&r));
	CU_ASSERT_FALSE(reply_permanent(&r));
}

static void
test_format(void)
{
	struct reply r;
	struct str s;

	str_init(&s, 64);
	(void)reply_set(&r, 550, "5.7.1", "first\nsecond");
	CU_ASSERT_EQUAL(reply_format(&r, &s), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s),
	    "550-5.7.1 first\r\n550 5.7.1 second\r\n");
	str_clear(&s);
	(void)reply_set(&r, 250, NULL, "%s", "");
	CU_ASSERT_EQUAL(reply_format(&r, &s), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "250 \r\n");
	/* Over out's bound: nothing appended. */
	str_clear(&s);
	(void)str_appends(&s, "x");
	(void)reply_set(&r, 550, "5.0.0", "%60s", "y");
	CU_ASSERT_EQUAL(reply_format(&r, &s), -1);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "x");
	reply_clear(&r);
	CU_ASSERT_EQUAL(reply_format(&r, &s), -1);
	str_free(&s);
}

int
suite_reply(void)
{
	CU_pSuite s = CU_add_suite("reply", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "enhanced status syntax", test_status_valid) == NULL ||
	    CU_add_test(s, "a status is never cut", test_set_status_never_cut) == NULL ||
	    CU_add_test(s, "text cut at a character", test_text_cut_at_character) == NULL ||
	    CU_add_test(s, "reply classes", test_class) == NULL ||
	    CU_add_test(s, "wire format", test_format) == NULL)
		return -1;
	return 0;
}
