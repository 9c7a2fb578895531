#include "config.h"

#include <stdint.h>
#include <string.h>

#include "core/milter.h"
#include "lib/str.h"
#include "tests.h"

static void
test_packet(void)
{
	struct str s;

	str_init(&s, 1024);
	CU_ASSERT_EQUAL(milter_packet(&s, 'H', "mx\0", 3), 0);
	CU_ASSERT_EQUAL(s.len, 8);
	CU_ASSERT(memcmp(s.s, "\0\0\0\4Hmx\0", 8) == 0);
	str_clear(&s);
	CU_ASSERT_EQUAL(milter_packet(&s, 'A', NULL, 0), 0);
	CU_ASSERT(s.len == 5 && memcmp(s.s, "\0\0\0\1A", 5) == 0);
	str_free(&s);
}

static void
test_replycode(void)
{
	static const char multi[] = "451-4.7.2 first\r\n451 4.7.2 second";
	struct verdict v;

	CU_ASSERT_EQUAL(milter_replycode("550 5.7.1 go away", 17, &v), 0);
	CU_ASSERT_EQUAL(v.kind, VERDICT_REJECT);
	CU_ASSERT_EQUAL(v.reply.code, 550);
	CU_ASSERT_STRING_EQUAL(v.reply.status, "5.7.1");
	CU_ASSERT_STRING_EQUAL(v.reply.text, "go away");
	CU_ASSERT_EQUAL(milter_replycode(multi, sizeof(multi), &v), 0);
	CU_ASSERT_EQUAL(v.kind, VERDICT_DEFER);
	CU_ASSERT_STRING_EQUAL(v.reply.status, "4.7.2");
	CU_ASSERT_STRING_EQUAL(v.reply.text, "first\nsecond");
	/* No enhanced code: one of the reply's class. */
	CU_ASSERT_EQUAL(milter_replycode("554 no", 6, &v), 0);
	CU_ASSERT_STRING_EQUAL(v.reply.status, "5.7.1");
	/* Not a refusal, not a number, mixed codes, control characters. */
	CU_ASSERT_EQUAL(milter_replycode("250 ok", 6, &v), -1);
	CU_ASSERT_EQUAL(milter_replycode("abc", 3, &v), -1);
	CU_ASSERT_EQUAL(milter_replycode("", 0, &v), -1);
	CU_ASSERT_EQUAL(milter_replycode("550-a\n450 b", 11, &v), -1);
	CU_ASSERT_EQUAL(milter_replycode("550 a\033b", 7, &v), -1);
	CU_ASSERT_EQUAL(milter_replycode("5500 x", 6, &v), -1);
}

int
suite_milter(void)
{
	CU_pSuite s = CU_add_suite("milter", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "packets", test_packet) == NULL ||
	    CU_add_test(s, "SMFIR_REPLYCODE texts", test_replycode) == NULL)
		return -1;
	return 0;
}
