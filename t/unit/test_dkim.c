#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/dkim.h"
#include "lib/str.h"
#include "tests.h"

/* RFC 6376 3.4.5's example, header and body. */
static void
test_relax_rfc_example(void)
{
	static const char *a = "A: X\r\n", *b = "B : Y\t\r\n\tZ  \r\n";
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
	struct str s;

	str_init(&s, 1024);
	dkim_relax_header(a, strlen(a), &s);
	dkim_relax_header(b, strlen(b), &s);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "a:X\r\nb:Y Z\r\n");
	str_clear(&s);
	CU_ASSERT_EQUAL(dkim_relax_body(body, sizeof(body) - 1, &s), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), " C\r\nD E\r\n");
	str_clear(&s);
	/* An empty body, or one of empty lines, is nothing at all. */
	CU_ASSERT_EQUAL(dkim_relax_body("\r\n\r\n", 4, &s), 0);
	CU_ASSERT_EQUAL(s.len, 0);
	/* A last line without its CRLF gets one. */
	CU_ASSERT_EQUAL(dkim_relax_body("x  y", 4, &s), 0);
	CU_ASSERT_STRING_EQUAL(str_cstr(&s), "x y\r\n");
	str_free(&s);
}

static void
sign(const struct dkim_key *k, const char *msg, size_t step, struct str *out)
{
	static const char *const names[] = { "From", "Subject", NULL };
	struct dkim_sign *s;
	char err[256];
	size_t i, n = strlen(msg);

	s = dkim_sign_new(k, "example.com", "s1", names, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < n; i += step)
		dkim_sign_update(s, msg + i, n - i < step ? n - i : step);
	CU_ASSERT_EQUAL(dkim_sign_final(s, 1700000000, out, err,
	    sizeof(err)), 0);
	dkim_sign_free(&s);
}

/* Fed a byte at a time or all at once, the signature is the same. */
static void
test_sign_in_pieces(void)
{
	static const char msg[] = "From: a@example.com\r\nSubject: x\r\n"
	    "\r\nline  one \r\n\r\n\tline two\r\n\r\n";
	char path[] = "/tmp/dkim-unit-XXXXXX", err[256];
	struct dkim_key *k;
	struct str whole, bytes;
	int fd;

	CU_ASSERT_FATAL((fd = mkstemp(path)) != -1);
	close(fd);
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(dkim_keygen("ed25519", 0, path, err,
	    sizeof(err)), 0);
	k = dkim_key_load(path, err, sizeof(err));
	unlink(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_STRING_EQUAL(dkim_key_algorithm(k), "ed25519-sha256");
	str_init(&whole, 8192);
	str_init(&bytes, 8192);
	sign(k, msg, sizeof(msg), &whole);
	sign(k, msg, 1, &bytes);
	CU_ASSERT_STRING_EQUAL(str_cstr(&whole), str_cstr(&bytes));
	CU_ASSERT_PTR_NOT_NULL(strstr(str_cstr(&whole),
	    "h=From:From:Subject;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(str_cstr(&whole), " t=1700000000;"));
	str_free(&whole);
	str_free(&bytes);
	dkim_key_free(&k);
}

int
suite_dkim(void)
{
	CU_pSuite s = CU_add_suite("dkim", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "relaxed canonical forms (RFC 6376 3.4.5)",
	    test_relax_rfc_example) == NULL ||
	    CU_add_test(s, "signing in pieces", test_sign_in_pieces) == NULL)
		return -1;
	return 0;
}
