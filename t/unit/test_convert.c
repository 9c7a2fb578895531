#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/convert.h"
#include "tests.h"

static void
test_addr_field(void)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ " bob", " bob@d.test" },
		{ " bob@x.test", " bob@x.test" },
		{ " bob, carol@x.test,dave", " bob@d.test, carol@x.test,dave@d.test" },
		{ " Bob Smith <bob>", " Bob Smith <bob@d.test>" },
		{ " \"Smith, Bob\" <bob>", " \"Smith, Bob\" <bob@d.test>" },
		{ " bob (Bob Smith)", " bob@d.test (Bob Smith)" },
		{ " (comment, with comma) bob", " (comment, with comma) bob@d.test" },
		{ " <>", " <>" },
		{ " <@relay.test:bob@x.test>", " <@relay.test:bob@x.test>" },
		{ " undisclosed-recipients:;", " undisclosed-recipients:;" },
		{ " friends: bob, carol@x.test;", " friends: bob@d.test, carol@x.test;" },
		{ " \"quoted local\"", " \"quoted local\"@d.test" },
		{ " \"a@b\" <c>", " \"a@b\" <c@d.test>" },
		{ " john.smith", " john.smith@d.test" },
		{ " Not An Address", " Not An Address" },
		{ " bob,\r\n carol", " bob@d.test,\r\n carol@d.test" },
		{ " =?utf-8?q?J=C3=BCrgen?= <jurgen>", " =?utf-8?q?J=C3=BCrgen?= <jurgen@d.test>" },
		{ " <bob", " <bob" },	/* unbalanced: left alone */
		{ "", "" },
	};
	struct str out;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		str_init(&out, 4096);
		CU_ASSERT_EQUAL(conv_addr_field(rows[i].in, strlen(rows[i].in),
		    "d.test", &out), 0);
		if (strcmp(str_cstr(&out), rows[i].want) != 0) {
			fprintf(stderr, "\n\"%s\": got \"%s\", want \"%s\"\n",
			    rows[i].in, str_cstr(&out), rows[i].want);
			CU_FAIL("conv_addr_field");
		}
		str_free(&out);
	}
}

static void
test_envelope_addr(void)
{
	static const struct {
		const char *in, *want;
		int ok;
	} rows[] = {
		{ "bob", "bob@d.test", 1 },
		{ "bob@x.test", "bob@x.test", 1 },
		{ "<bob@x.test>", "bob@x.test", 1 },
		{ "<bob>", "bob@d.test", 1 },
		{ "/dev/null", "", 1 },
		{ "<>", "", 1 },
		{ "", "", 1 },
		{ "x.test!bob", "bob@x.test", 1 },
		{ "!bob", "!bob@d.test", 1 },
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		CU_ASSERT_EQUAL(conv_envelope_addr(rows[i].in, "d.test", out,
		    sizeof(out)), rows[i].ok ? 0 : -1);
		if (rows[i].ok && strcmp(out, rows[i].want) != 0) {
			fprintf(stderr, "\n\"%s\": got \"%s\", want \"%s\"\n",
			    rows[i].in, out, rows[i].want);
			CU_FAIL("conv_envelope_addr");
		}
	}
	/* Does not fit: an error, not a cut address. */
	CU_ASSERT_EQUAL(conv_envelope_addr("averyveryverylongname", "d.test",
	    out, 10), -1);
}

static void
test_from_line_date(void)
{
	struct tm tm;
	time_t t;

	CU_ASSERT_EQUAL(conv_from_line_date("From bob Wed Jan  2 15:04:05 2019",
	    33, &t), 0);
	localtime_r(&t, &tm);
	CU_ASSERT_EQUAL(tm.tm_year, 119);
	CU_ASSERT_EQUAL(tm.tm_mon, 0);
	CU_ASSERT_EQUAL(tm.tm_mday, 2);
	CU_ASSERT_EQUAL(tm.tm_hour, 15);
	/* Plan 9 puts the zone before the year; "remote from" may follow. */
	CU_ASSERT_EQUAL(conv_from_line_date(
	    "From bob Wed Jan  2 15:04:05 GMT 2019 remote from x", 51, &t), 0);
	CU_ASSERT_EQUAL(conv_from_line_date("From bob yesterday", 18, &t), -1);
	CU_ASSERT_EQUAL(conv_from_line_date("Subject: x", 10, &t), -1);
}

struct msg_row {
	const char	*name, *in, *want;
	int		 eightbit;
};

/* Messages that already have From, Date and Message-ID. */
#define HDRS "From: a@x.test\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n" \
	"Message-ID: <1@x.test>\r\n"
#define HDRS_LF "From: a@x.test\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n" \
	"Message-ID: <1@x.test>\n"

static const struct msg_row msg_rows[] = {
	{ "LF becomes CRLF",
	  HDRS_LF "Subject: s\n\nline 1\nline 2\n",
	  HDRS "Subject: s\r\n\r\nline 1\r\nline 2\r\n", 0 },
	{ "CRLF stays, lone CR becomes CRLF",
	  HDRS "\r\na\r\nb\rc\r\n",
	  HDRS "\r\na\r\nb\r\nc\r\n", 0 },
	{ "a missing last newline is added",
	  HDRS_LF "\nno newline",
	  HDRS "\r\nno newline\r\n", 0 },
	{ "Unix From line removed",
	  "From a Wed Jan  2 15:04:05 2019\n" HDRS_LF "\nbody\nFrom here\n",
	  HDRS "\r\nbody\r\nFrom here\r\n", 0 },
	{ "Bcc removed with its continuation",
	  HDRS_LF "To: b@x.test\nBcc: secret@x.test,\n  other@x.test\nCc: c@x.test\n\nbody\n",
	  HDRS "To: b@x.test\r\nCc: c@x.test\r\n\r\nbody\r\n", 0 },
	{ "Resent-Bcc removed, case-insensitively",
	  HDRS_LF "resent-bcc: s@x.test\nBCC: t@x.test\n\nbody\n",
	  HDRS "\r\nbody\r\n", 0 },
	{ "address fields qualified, others not",
	  HDRS_LF "To: bob, Carol <carol>\nCc: dave\nSubject: bob\nX-Other: bob\n\nbody bob\n",
	  HDRS "To: bob@d.test, Carol <carol@d.test>\r\nCc: dave@d.test\r\nSubject: bob\r\nX-Other: bob\r\n\r\nbody bob\r\n", 0 },
	{ "a folded address field",
	  HDRS_LF "To: bob,\n\tcarol\n\nb\n",
	  HDRS "To: bob@d.test,\r\n\tcarol@d.test\r\n\r\nb\r\n", 0 },
	{ "a non-header line starts the body",
	  HDRS_LF "Subject: s\nthis is not a header\nmore\n",
	  HDRS "Subject: s\r\n\r\nthis is not a header\r\nmore\r\n", 0 },
	{ "header only",
	  HDRS_LF "Subject: s\n",
	  HDRS "Subject: s\r\n", 0 },
	{ "8-bit body",
	  HDRS_LF "\nGr\xc3\xbc\xc3\x9f""e\n",
	  HDRS "\r\nGr\xc3\xbc\xc3\x9f""e\r\n", 1 },
	{ "dots are not stuffed here",
	  HDRS_LF "\n.\n..x\n",
	  HDRS "\r\n.\r\n..x\r\n", 0 },
};

static void
test_message(void)
{
	struct conv_opts o;
	struct conv_info ci;
	struct str out;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.sender = "a@x.test";
	o.domain = "d.test";
	o.now = 1700000000;
	o.msgid_local = "ABC";
	for (i = 0; i < sizeof(msg_rows) / sizeof(msg_rows[0]); i++) {
		str_init(&out, 65536);
		CU_ASSERT_EQUAL(conv_message(msg_rows[i].in,
		    strlen(msg_rows[i].in), &o, &out, &ci), 0);
		if (strcmp(str_cstr(&out), msg_rows[i].want) != 0) {
			fprintf(stderr, "\n%s: got\n%s\nwant\n%s\n",
			    msg_rows[i].name, str_cstr(&out), msg_rows[i].want);
			CU_FAIL(msg_rows[i].name);
		}
		CU_ASSERT_EQUAL(ci.eightbit, msg_rows[i].eightbit);
		CU_ASSERT_EQUAL(ci.added_from + ci.added_date + ci.added_msgid,
		    0);
		str_free(&out);
	}
}

static void
test_added_fields(void)
{
	struct conv_opts o;
	struct conv_info ci;
	struct str out;
	const char *s;

	memset(&o, 0, sizeof(o));
	o.sender = "a@x.test";
	o.domain = "d.test";
	o.now = 1700000000;
	o.msgid_local = "ABC";
	str_init(&out, 65536);
	CU_ASSERT_EQUAL(conv_message("Subject: s\n\nbody\n", 18, &o, &out,
	    &ci), 0);
	s = str_cstr(&out);
	CU_ASSERT(ci.added_from && ci.added_date && ci.added_msgid);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "Subject: s\r\nFrom: a@x.test\r\n"
	    "Date: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, " 2023 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\r\nMessage-ID: <ABC@d.test>\r\n"
	    "\r\nbody\r\n"));
	str_free(&out);

	/* The null sender is written as Postmaster. */
	o.sender = "";
	str_init(&out, 65536);
	CU_ASSERT_EQUAL(conv_message("\nbody\n", 6, &o, &out, &ci), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(str_cstr(&out),
	    "From: Postmaster@d.test\r\n"));
	CU_ASSERT(strncmp(str_cstr(&out), "From: ", 6) == 0);
	str_free(&out);

	/* An empty message still gets a header. */
	str_init(&out, 65536);
	CU_ASSERT_EQUAL(conv_message("", 0, &o, &out, &ci), 0);
	CU_ASSERT(ci.added_from && ci.added_date && ci.added_msgid);
	str_free(&out);

	/* The date of a Unix From line fills in a missing Date:. */
	o.sender = "a@x.test";
	str_init(&out, 65536);
	CU_ASSERT_EQUAL(conv_message("From a Wed Jan  2 15:04:05 2019\n"
	    "Subject: s\n\nb\n", 47, &o, &out, &ci), 0);
	CU_ASSERT(ci.removed_from_line);
	CU_ASSERT_PTR_NOT_NULL(strstr(str_cstr(&out), "Date: Wed, 2 Jan 2019 "
	    "15:04:05 "));
	str_free(&out);
}

static void
test_too_large(void)
{
	struct conv_opts o;
	struct conv_info ci;
	struct str out;

	memset(&o, 0, sizeof(o));
	o.sender = "a@x.test";
	o.now = 1700000000;
	str_init(&out, 20);
	CU_ASSERT_EQUAL(conv_message("Subject: a long enough subject\n\nb\n",
	    34, &o, &out, &ci), -1);
	str_free(&out);
}

int
suite_convert(void)
{
	CU_pSuite s = CU_add_suite("convert", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "address fields", test_addr_field) == NULL ||
	    CU_add_test(s, "envelope addresses", test_envelope_addr) == NULL ||
	    CU_add_test(s, "Unix From line dates", test_from_line_date) == NULL ||
	    CU_add_test(s, "messages", test_message) == NULL ||
	    CU_add_test(s, "added fields", test_added_fields) == NULL ||
	    CU_add_test(s, "size limit", test_too_large) == NULL)
		return -1;
	return 0;
}
