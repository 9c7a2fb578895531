#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/mtasts.h"
#include "tests.h"

static void
test_parse_ok(void)
{
	static const char text[] = "version: STSv1\r\nmode: enforce\r\n"
	    "mx: mx1.example.com\r\nmx: *.example.net\r\n"
	    "max_age: 604800\r\nextension: ignored\r\n";
	struct sts_policy p;
	char err[128];

	CU_ASSERT_EQUAL_FATAL(sts_parse(text, sizeof(text) - 1, &p, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.mode, STS_MODE_ENFORCE);
	CU_ASSERT_EQUAL(p.max_age, 604800);
	CU_ASSERT_EQUAL(p.nmx, 2);
	CU_ASSERT_STRING_EQUAL(p.mx[0], "mx1.example.com");
	CU_ASSERT_STRING_EQUAL(p.mx[1], "*.example.net");
	/* The fields, for reports, without line ends. */
	CU_ASSERT_PTR_NOT_NULL(strstr(p.text, "mode: enforce\nmx: "));
	CU_ASSERT_PTR_NULL(strchr(p.text, '\r'));
}

static void
test_parse_rows(void)
{
	static const struct {
		const char	*text;
		int		 want;		/* 0 or -1 */
		enum sts_mode	 mode;
		unsigned long	 max_age;
	} rows[] = {
		{ "version: STSv1\nmode: testing\nmx: a.b\nmax_age: 1\n", 0,
		    STS_MODE_TESTING, 1 },
		/* mode none needs no mx. */
		{ "version: STSv1\nmode: none\nmax_age: 86400", 0,
		    STS_MODE_NONE, 86400 },
		/* max_age is capped at one year (RFC 8461 3.2). */
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 9999999999",
		    0, STS_MODE_ENFORCE, STS_MAX_AGE_MAX },
		{ "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: enforce\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b", -1, STS_MODE_NONE, 0 },
		{ "mode: enforce\nmx: a.b\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901",
		    -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\nmode: enforce\nmx:\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "version: STSv1\njunk\nmode: none\nmax_age: 1", -1, STS_MODE_NONE, 0 },
		{ "", -1, STS_MODE_NONE, 0 },
	};
	struct sts_policy p;
	char err[128];
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = '\0';
		r = sts_parse(rows[i].text, strlen(rows[i].text), &p, err,
		    sizeof(err));
		if (r != rows[i].want)
			fprintf(stderr, "row %zu: got %d, want %d (%s)\n", i,
			    r, rows[i].want, err);
		CU_ASSERT_EQUAL(r, rows[i].want);
		if (r == -1) {
			CU_ASSERT(err[0] != '\0');
			continue;
		}
		CU_ASSERT_EQUAL(p.mode, rows[i].mode);
		CU_ASSERT_EQUAL(p.max_age, rows[i].max_age);
	}
}

static void
test_parse_bounds(void)
{
	char *text;
	struct sts_policy p;
	char err[128];
	size_t i, off;

	/* More mx lines than kept: the first STS_MX_MAX stay. */
	CU_ASSERT_FATAL((text = malloc(8192)) != NULL);
	off = (size_t)snprintf(text, 8192, "version: STSv1\nmode: enforce\n"
	    "max_age: 60\n");
	for (i = 0; i < STS_MX_MAX + 5; i++)
		off += (size_t)snprintf(text + off, 8192 - off,
		    "mx: mx%zu.example.com\n", i);
	CU_ASSERT_EQUAL(sts_parse(text, off, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.nmx, STS_MX_MAX);
	CU_ASSERT_STRING_EQUAL(p.mx[0], "mx0.example.com");
	/* The report text is cut, never overrun. */
	CU_ASSERT(strlen(p.text) < sizeof(p.text));
	/* Not NUL-terminated input: only len bytes are read. */
	memcpy(text, "version: STSv1\nmode: none\nmax_age: 5XXXX", 40);
	CU_ASSERT_EQUAL(sts_parse(text, 36, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.max_age, 5);
	free(text);
}

static void
test_pattern_match(void)
{
	static const struct {
		const char	*pattern, *host;
		int		 want;
	} rows[] = {
		{ "mx.example.com", "mx.example.com", 1 },
		{ "mx.example.com", "MX.Example.COM", 1 },
		{ "mx.example.com", "mx.example.com.", 1 },
		{ "mx.example.com.", "mx.example.com", 1 },
		{ "mx.example.com", "mx2.example.com", 0 },
		{ "mx.example.com", "x.mx.example.com", 0 },
		{ "*.example.com", "mx.example.com", 1 },
		/* The wildcard is one whole label (RFC 8461 4.1). */
		{ "*.example.com", "a.b.example.com", 0 },
		{ "*.example.com", "example.com", 0 },
		{ "*.example.com", ".example.com", 0 },
		{ "*.example.com", "mxexample.com", 0 },
		{ "*example.com", "mx.example.com", 0 },
		{ "", "", 0 },
		{ "*.", "a.", 0 },
	};
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = sts_pattern_match(rows[i].pattern, rows[i].host);
		if (r != rows[i].want)
			fprintf(stderr, "%s ~ %s: got %d, want %d\n",
			    rows[i].pattern, rows[i].host, r, rows[i].want);
		CU_ASSERT_EQUAL(r, rows[i].want);
	}
}

static void
test_txt_id(void)
{
	static const struct {
		const char	*txt, *id;	/* id NULL: not a record */
	} rows[] = {
		{ "v=STSv1; id=20160831085700Z;", "20160831085700Z" },
		{ "v=STSv1;id=abc", "abc" },
		{ "v=STSv1; id=abc ; ext=1", "abc" },
		{ "v=STSv1; ext=1; id=Z9", "Z9" },
		{ "v=STSv1;", NULL },
		{ "v=STSv1; id=", NULL },
		{ "v=STSv1; id=a-b", NULL },
		{ "v=STSv1; id=a b", NULL },
		{ "v=STSv10; id=abc", NULL },
		{ "v=stsv1; id=abc", NULL },
		{ " v=STSv1; id=abc", NULL },
		{ "v=STSv1; id=123456789012345678901234567890123", NULL },
		{ "v=STSv1; id=12345678901234567890123456789012",
		    "12345678901234567890123456789012" },
	};
	char id[STS_ID_MAX + 1];
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = sts_txt_id(rows[i].txt, id, sizeof(id));
		if (r != (rows[i].id != NULL ? 0 : -1))
			fprintf(stderr, "%s: got %d\n", rows[i].txt, r);
		CU_ASSERT_EQUAL(r, rows[i].id != NULL ? 0 : -1);
		if (r == 0 && rows[i].id != NULL)
			CU_ASSERT_STRING_EQUAL(id, rows[i].id);
	}
	/* A buffer too small for the id. */
	CU_ASSERT_EQUAL(sts_txt_id("v=STSv1; id=abcdef", id, 4), -1);
}

int
suite_mtasts(void)
{
	CU_pSuite s = CU_add_suite("mtasts", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "parse a policy", test_parse_ok) == NULL ||
	    CU_add_test(s, "policy rows", test_parse_rows) == NULL ||
	    CU_add_test(s, "policy bounds", test_parse_bounds) == NULL ||
	    CU_add_test(s, "mx patterns", test_pattern_match) == NULL ||
	    CU_add_test(s, "TXT record id", test_txt_id) == NULL)
		return -1;
	return 0;
}
