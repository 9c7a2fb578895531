#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "auth/sasl.h"
#include "auth/secrets.h"
#include "tests.h"
#include "testutil.h"

#define HASH_SHA512	"$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0a" \
	"Dehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1"

static char		 dir[PATH_MAX];
static struct secrets	*table;		/* alice, bob (crypt), tim */
static struct secrets	*crypt_only;

static struct secrets *
load(const char *name, const char *text)
{
	char path[PATH_MAX], err[512];
	struct secrets *t;

	tu_path(path, sizeof(path), dir, name);
	if (tu_write_file(path, text, (size_t)-1, 0600) == -1)
		return NULL;
	if ((t = secrets_load(path, err, sizeof(err))) == NULL)
		fprintf(stderr, "%s\n", err);
	return t;
}

static int
setup(void)
{
	if (tu_mkdtemp(dir, sizeof(dir)) == -1)
		return -1;
	table = load("secrets", "alice:{PLAIN}wonderland\n"
	    "bob:{CRYPT}" HASH_SHA512 "\n"
	    "tim:{PLAIN}tanstaaftanstaaf\n"
	    "me@example.org:{PLAIN}x y z\n");
	crypt_only = load("crypt", "bob:{CRYPT}" HASH_SHA512 "\n");
	return table != NULL && crypt_only != NULL ? 0 : -1;
}

static int
teardown(void)
{
	secrets_unref(&table);
	secrets_unref(&crypt_only);
	tu_rmtree(dir);
	return 0;
}

static struct sasl_conf
conf_with(unsigned int flags, unsigned int mechs, struct secrets *t)
{
	struct sasl_conf c;

	c.flags = flags;
	c.mechs = mechs;
	c.secrets = t;
	c.hostname = "mx.example.org";
	return c;
}

/* base64 of n bytes into a static buffer (one at a time). */
static const char *
b64(const void *p, size_t n)
{
	static char out[SASL_LINE_MAX + 1];
	gnutls_datum_t in, enc;

	if (n == 0)
		return "";
	in.data = (unsigned char *)(uintptr_t)p;
	in.size = (unsigned int)n;
	if (gnutls_base64_encode2(&in, &enc) != 0 || enc.size >= sizeof(out))
		abort();
	memcpy(out, enc.data, enc.size);
	out[enc.size] = '\0';
	gnutls_free(enc.data);
	return out;
}

/* Decodes a 334 challenge into buf; its length, or -1. */
static int
unb64(const char *s, char *buf, size_t len)
{
	gnutls_datum_t in, out;
	int n;

	if (*s == '\0') {
		buf[0] = '\0';
		return 0;
	}
	in.data = (unsigned char *)(uintptr_t)s;
	in.size = (unsigned int)strlen(s);
	if (gnutls_base64_decode2(&in, &out) != 0)
		return -1;
	if (out.size >= len) {
		gnutls_free(out.data);
		return -1;
	}
	memcpy(buf, out.data, out.size);
	buf[out.size] = '\0';
	n = (int)out.size;
	gnutls_free(out.data);
	return n;
}

static const char *
resname(enum sasl_result r)
{
	static const char *const names[] = {
		"CONTINUE", "OK", "FAIL", "TEMPFAIL", "CANCELLED",
		"BAD_BASE64", "MALFORMED", "SYNTAX", "UNKNOWN_MECH",
		"TOO_WEAK", "ENCRYPT_REQUIRED", "TOO_LONG", "NO_SECRET",
		"ALREADY",
		"IN_TRANSACTION", "AUTH_REQUIRED", "SENDER_DENIED", "BLOCKED"
	};

	return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* Checks a final reply: result, code, enhanced code. */
static void
want_final(unsigned int line, const char *what, enum sasl_result got,
    const struct reply *rep, enum sasl_result want, int code,
    const char *ecode)
{
	tu_check(got == want, line, __FILE__, "%s: got %s, want %s", what,
	    resname(got), resname(want));
	tu_check(rep->code == code && strcmp(rep->status, ecode) == 0, line,
	    __FILE__,
	    "%s: got %d %s %s, want %d %s", what, rep->code,
	    rep->status, rep->text, code, ecode);
}
#define WANT_FINAL(...)	want_final(__LINE__, __VA_ARGS__)

static void
test_split(void)
{
	static const struct {
		const char	*arg;
		int		 ret;
		const char	*mech, *ir;
	} rows[] = {
		{ "PLAIN", 0, "PLAIN", NULL },
		{ "plain AGFsaWNlAHg=", 0, "plain", "AGFsaWNlAHg=" },
		{ "LOGIN =", 0, "LOGIN", "=" },
		{ "CRAM-MD5", 0, "CRAM-MD5", NULL },
		{ "X_Y-1", 0, "X_Y-1", NULL },
		{ "ABCDEFGHIJKLMNOPQRST", 0, "ABCDEFGHIJKLMNOPQRST", NULL },
		{ "ABCDEFGHIJKLMNOPQRSTU", -1, "", NULL },
		{ "", -1, "", NULL },
		{ " PLAIN", -1, "", NULL },
		{ "PLAIN ", -1, "", NULL },
		{ "PLAIN  eA==", -1, "", NULL },
		{ "PLAIN eA== eA==", -1, "", NULL },
		{ "PL@IN", -1, "", NULL },
		{ "PLAIN\teA==", -1, "", NULL },
	};
	char mech[SASL_MECH_MAX + 1];
	const char *ir;
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = sasl_split(rows[i].arg, mech, sizeof(mech), &ir);
		TU_CHECK(r == rows[i].ret, "split(\"%s\"): got %d, want %d",
		    rows[i].arg, r, rows[i].ret);
		if (r != 0 || rows[i].ret != 0)
			continue;
		TU_CHECK(strcmp(mech, rows[i].mech) == 0,
		    "split(\"%s\"): mech \"%s\", want \"%s\"", rows[i].arg,
		    mech, rows[i].mech);
		TU_CHECK((ir == NULL && rows[i].ir == NULL) ||
		    (ir != NULL && rows[i].ir != NULL &&
		    strcmp(ir, rows[i].ir) == 0),
		    "split(\"%s\"): ir \"%s\", want \"%s\"", rows[i].arg,
		    ir ? ir : "(null)", rows[i].ir ? rows[i].ir : "(null)");
	}
	/* The mechanism buffer bounds the name too. */
	CU_ASSERT_EQUAL(sasl_split("PLAIN", mech, 5, &ir), -1);
	CU_ASSERT_EQUAL(sasl_split("PLAIN", mech, 6, &ir), 0);
}

/* PLAIN messages sent as initial responses (RFC 4616 section 2). */
static void
test_plain_ir(void)
{
	static const struct {
		const char	*msg;	/* '|' stands for NUL */
		enum sasl_result want;
		int		 code;
		const char	*ecode;
		const char	*user;
	} rows[] = {
		{ "|alice|wonderland", SASL_OK, 235, "2.7.0", "alice" },
		{ "alice|alice|wonderland", SASL_OK, 235, "2.7.0", "alice" },
		{ "|bob|secret", SASL_OK, 235, "2.7.0", "bob" },
		{ "|me@example.org|x y z", SASL_OK, 235, "2.7.0",
		    "me@example.org" },
		{ "|alice|wonderlanD", SASL_FAIL, 535, "5.7.8", "alice" },
		{ "|bob|Secret", SASL_FAIL, 535, "5.7.8", "bob" },
		{ "|nobody|wonderland", SASL_FAIL, 535, "5.7.8", "nobody" },
		{ "|Alice|wonderland", SASL_FAIL, 535, "5.7.8", "Alice" },
		/* Acting for someone else is refused, right password or not. */
		{ "bob|alice|wonderland", SASL_FAIL, 535, "5.7.8", "alice" },
		{ "alicex|alice|wonderland", SASL_FAIL, 535, "5.7.8",
		    "alice" },
		{ "alice|wonderland", SASL_MALFORMED, 501, "5.5.2", "" },
		{ "|alice|wonder|land", SASL_MALFORMED, 501, "5.5.2", "" },
		{ "||wonderland", SASL_MALFORMED, 501, "5.5.2", "" },
		{ "|alice|", SASL_MALFORMED, 501, "5.5.2", "" },
		{ "", SASL_MALFORMED, 501, "5.5.2", "" },
	};
	struct sasl_conf c = conf_with(SASL_F_TLS, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char msg[128], what[160];
	size_t i, j, n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		n = strlen(rows[i].msg);
		for (j = 0; j < n; j++)
			msg[j] = rows[i].msg[j] == '|' ? '\0' : rows[i].msg[j];
		r = sasl_start(&sa, "PLAIN", n == 0 ? "=" : b64(msg, n), &c,
		    &rep);
		snprintf(what, sizeof(what), "PLAIN \"%s\"", rows[i].msg);
		WANT_FINAL(what, r, &rep, rows[i].want, rows[i].code,
		    rows[i].ecode);
		TU_CHECK(strcmp(sasl_user(sa), rows[i].user) == 0,
		    "%s: user \"%s\", want \"%s\"", what, sasl_user(sa),
		    rows[i].user);
		CU_ASSERT_STRING_EQUAL(sasl_mech(sa), "PLAIN");
		if (rows[i].want != SASL_OK)
			CU_ASSERT(sasl_why(sa)[0] != '\0');
		/* Nothing more after a final result. */
		r = sasl_step(sa, "*", 1, &rep);
		CU_ASSERT_EQUAL(r, SASL_TEMPFAIL);
		sasl_free(&sa);
		CU_ASSERT_PTR_NULL(sa);
	}
}

static void
test_bad_base64(void)
{
	static const char *const bad[] = {
		"AGFsaWNlAHdvbmRlcmxhbmQ",	/* padding missing */
		"AGFsaWNl AHdvbmRlcmxhbmQ=",
		"AGFsaWNlAHdvbmRlcmxhbmQ=\t",
		/* GnuTLS alone would skip the white space in these: */
		"AGFsaWNlAHdvbmRlcmxhbmQ=    ",
		"AGFs aWNlAHdvbmRl cmxhbmQ=  ",
		"AGFsaWNlAHdvbmRl\r\ncmxhbmQ=",
		"AGFsaWNl AHdvbmRl cmxhbmQh  ",	/* no padding to trip on */
		"AGFsaWNlAHdvbm$lcmxhbmQ=",
		"AGFsaWNlAHdvbmRlcmxhbm==",	/* valid chars, wrong length */
		"AGFs=WNlAHdvbmRlcmxhbmQ=",	/* '=' inside */
		"====",
		"*",				/* not a cancel in AUTH */
	};
	struct sasl_conf c = conf_with(SASL_F_TLS, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char what[80];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(what, sizeof(what), "AUTH PLAIN %s", bad[i]);
		r = sasl_start(&sa, "PLAIN", bad[i], &c, &rep);
		WANT_FINAL(what, r, &rep, SASL_BAD_BASE64, 501, "5.5.2");
		sasl_free(&sa);

		/* The same as a response to the 334. */
		r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
		CU_ASSERT_EQUAL(r, SASL_CONTINUE);
		if (strcmp(bad[i], "*") != 0) {
			r = sasl_step(sa, bad[i], strlen(bad[i]), &rep);
			snprintf(what, sizeof(what), "response %s", bad[i]);
			WANT_FINAL(what, r, &rep, SASL_BAD_BASE64, 501,
			    "5.5.2");
		}
		sasl_free(&sa);
	}
	/* In a response "=" is no empty message, just bad base64. */
	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, "=", 1, &rep);
	WANT_FINAL("response =", r, &rep, SASL_BAD_BASE64, 501, "5.5.2");
	sasl_free(&sa);
}

static void
test_plain_challenge(void)
{
	static const char msg[] = "\0alice\0wonderland";
	struct sasl_conf c = conf_with(SASL_F_TLS, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char line[128];

	r = sasl_start(&sa, "plain", NULL, &c, &rep);
	CU_ASSERT_EQUAL(r, SASL_CONTINUE);
	CU_ASSERT_EQUAL(rep.code, 334);
	CU_ASSERT_STRING_EQUAL(rep.status, "");
	CU_ASSERT_STRING_EQUAL(rep.text, "");
	/* The line may still carry its CRLF. */
	snprintf(line, sizeof(line), "%s\r\n", b64(msg, sizeof(msg) - 1));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("PLAIN after 334", r, &rep, SASL_OK, 235, "2.7.0");
	CU_ASSERT_STRING_EQUAL(sasl_user(sa), "alice");
	sasl_free(&sa);

	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, "*\r\n", 3, &rep);
	WANT_FINAL("PLAIN cancelled", r, &rep, SASL_CANCELLED, 501, "5.0.0");
	sasl_free(&sa);

	/* An empty line is an empty message. */
	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, "", 0, &rep);
	WANT_FINAL("PLAIN empty", r, &rep, SASL_MALFORMED, 501, "5.5.2");
	sasl_free(&sa);

	/* sasl keeps its own reference to the table. */
	{
		struct secrets *t = secrets_ref(table);

		c.secrets = t;
		r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
		secrets_unref(&t);
		r = sasl_step(sa, b64(msg, sizeof(msg) - 1),
		    strlen(b64(msg, sizeof(msg) - 1)), &rep);
		WANT_FINAL("PLAIN, table dropped", r, &rep, SASL_OK, 235,
		    "2.7.0");
		sasl_free(&sa);
	}
}

static void
test_login(void)
{
	struct sasl_conf c = conf_with(SASL_F_TLS, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char buf[64], line[64];

	r = sasl_start(&sa, "LOGIN", NULL, &c, &rep);
	CU_ASSERT_EQUAL(r, SASL_CONTINUE);
	CU_ASSERT_EQUAL(rep.code, 334);
	CU_ASSERT_STRING_EQUAL(rep.text, "VXNlcm5hbWU6");
	CU_ASSERT_EQUAL(unb64(rep.text, buf, sizeof(buf)), 9);
	CU_ASSERT_STRING_EQUAL(buf, "Username:");
	snprintf(line, sizeof(line), "%s", b64("bob", 3));
	r = sasl_step(sa, line, strlen(line), &rep);
	CU_ASSERT_EQUAL(r, SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(rep.text, "UGFzc3dvcmQ6");
	CU_ASSERT_STRING_EQUAL(sasl_user(sa), "bob");
	snprintf(line, sizeof(line), "%s", b64("secret", 6));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("LOGIN bob", r, &rep, SASL_OK, 235, "2.7.0");
	CU_ASSERT_STRING_EQUAL(sasl_mech(sa), "LOGIN");
	sasl_free(&sa);

	/* The user name as initial response skips the first prompt. */
	r = sasl_start(&sa, "login", b64("alice", 5), &c, &rep);
	CU_ASSERT_EQUAL(r, SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(rep.text, "UGFzc3dvcmQ6");
	snprintf(line, sizeof(line), "%s", b64("wrong", 5));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("LOGIN wrong", r, &rep, SASL_FAIL, 535, "5.7.8");
	CU_ASSERT_STRING_EQUAL(sasl_user(sa), "alice");
	sasl_free(&sa);

	r = sasl_start(&sa, "LOGIN", b64("alice", 5), &c, &rep);
	r = sasl_step(sa, "*", 1, &rep);
	WANT_FINAL("LOGIN cancel", r, &rep, SASL_CANCELLED, 501, "5.0.0");
	sasl_free(&sa);

	r = sasl_start(&sa, "LOGIN", NULL, &c, &rep);
	r = sasl_step(sa, "*", 1, &rep);
	WANT_FINAL("LOGIN cancel 1", r, &rep, SASL_CANCELLED, 501, "5.0.0");
	sasl_free(&sa);

	r = sasl_start(&sa, "LOGIN", "=", &c, &rep);
	WANT_FINAL("LOGIN empty user", r, &rep, SASL_MALFORMED, 501, "5.5.2");
	sasl_free(&sa);

	r = sasl_start(&sa, "LOGIN", b64("al\0ce", 5), &c, &rep);
	WANT_FINAL("LOGIN NUL user", r, &rep, SASL_MALFORMED, 501, "5.5.2");
	sasl_free(&sa);

	r = sasl_start(&sa, "LOGIN", b64("alice", 5), &c, &rep);
	r = sasl_step(sa, "", 0, &rep);
	WANT_FINAL("LOGIN empty password", r, &rep, SASL_FAIL, 535, "5.7.8");
	sasl_free(&sa);

	/* A NUL cut into the password must not shorten it. */
	r = sasl_start(&sa, "LOGIN", b64("alice", 5), &c, &rep);
	snprintf(line, sizeof(line), "%s", b64("wonderland\0x", 12));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("LOGIN NUL password", r, &rep, SASL_FAIL, 535, "5.7.8");
	sasl_free(&sa);
}

/* Answers a CRAM-MD5 challenge as a client would. */
static void
cram_answer(const char *chal64, const char *user, const char *secret,
    int upper, char *line, size_t len)
{
	char chal[512], ans[600];
	unsigned char mac[16];
	int n, i, off;

	n = unb64(chal64, chal, sizeof(chal));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_FATAL(gnutls_hmac_fast(GNUTLS_MAC_MD5, secret,
	    strlen(secret), chal, (size_t)n, mac) == 0);
	off = snprintf(ans, sizeof(ans), "%s ", user);
	for (i = 0; i < 16; i++)
		off += snprintf(ans + off, sizeof(ans) - (size_t)off,
		    upper ? "%02X" : "%02x", mac[i]);
	snprintf(line, len, "%s", b64(ans, (size_t)off));
}

static void
test_cram(void)
{
	struct sasl_conf c = conf_with(0, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char chal[512], first[REPLY_TEXT_MAX], line[1024];
	const char *p;
	int n;

	/* Offered in clear: the password does not travel. */
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	CU_ASSERT_EQUAL_FATAL(r, SASL_CONTINUE);
	CU_ASSERT_EQUAL(rep.code, 334);
	n = unb64(rep.text, chal, sizeof(chal));
	CU_ASSERT(n > 0);
	/* <digits.digits@hostname> */
	CU_ASSERT(chal[0] == '<' && chal[n - 1] == '>');
	p = chal + 1;
	CU_ASSERT(*p >= '0' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	CU_ASSERT(*p == '.');
	p++;
	CU_ASSERT(*p >= '0' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	CU_ASSERT(strcmp(p, "@mx.example.org>") == 0);
	snprintf(first, sizeof(first), "%s", rep.text);
	cram_answer(rep.text, "tim", "tanstaaftanstaaf", 0, line,
	    sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 tim", r, &rep, SASL_OK, 235, "2.7.0");
	CU_ASSERT_STRING_EQUAL(sasl_user(sa), "tim");
	CU_ASSERT_STRING_EQUAL(sasl_mech(sa), "CRAM-MD5");
	sasl_free(&sa);

	/* A fresh challenge each time. */
	r = sasl_start(&sa, "cram-md5", NULL, &c, &rep);
	CU_ASSERT(strcmp(first, rep.text) != 0);
	cram_answer(rep.text, "tim", "tanstaaftanstaaf", 1, line,
	    sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 upper-case hex", r, &rep, SASL_OK, 235, "2.7.0");
	sasl_free(&sa);

	/* An answer to an old challenge does not work. */
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	cram_answer(first, "tim", "tanstaaftanstaaf", 0, line, sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 replay", r, &rep, SASL_FAIL, 535, "5.7.8");
	sasl_free(&sa);

	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	cram_answer(rep.text, "tim", "wrong", 0, line, sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 wrong", r, &rep, SASL_FAIL, 535, "5.7.8");
	sasl_free(&sa);

	/*
	 * bob has only a hash: CRAM-MD5 cannot work for him, which is not
	 * a wrong password (the session does not count it) but is answered
	 * like one, and said so for the log.
	 */
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	cram_answer(rep.text, "bob", "secret", 0, line, sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 bob", r, &rep, SASL_NO_SECRET, 535, "5.7.8");
	CU_ASSERT_STRING_EQUAL(sasl_why(sa), "CRAM-MD5 needs a {PLAIN} secret");
	sasl_free(&sa);

	/* A user name with a space: the digest follows the last one. */
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	cram_answer(rep.text, "t im", "tanstaaftanstaaf", 0, line,
	    sizeof(line));
	r = sasl_step(sa, line, strlen(line), &rep);
	WANT_FINAL("CRAM-MD5 spaced user", r, &rep, SASL_FAIL, 535, "5.7.8");
	CU_ASSERT_STRING_EQUAL(sasl_user(sa), "t im");
	sasl_free(&sa);

	{
		static const char *const bad[] = {
			"tim",
			"tim ",
			" b913a602c7eda7a495b4e6e7334d3890",
			"tim b913a602c7eda7a495b4e6e7334d389",
			"tim b913a602c7eda7a495b4e6e7334d38900",
			"tim b913a602c7eda7a495b4e6e7334d389g",
			"tim\tb913a602c7eda7a495b4e6e7334d3890",
		};
		size_t i;
		char what[80];

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
			snprintf(line, sizeof(line), "%s",
			    b64(bad[i], strlen(bad[i])));
			r = sasl_step(sa, line, strlen(line), &rep);
			snprintf(what, sizeof(what), "CRAM-MD5 \"%s\"", bad[i]);
			WANT_FINAL(what, r, &rep, SASL_MALFORMED, 501,
			    "5.5.2");
			sasl_free(&sa);
		}
	}

	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	r = sasl_step(sa, "*", 1, &rep);
	WANT_FINAL("CRAM-MD5 cancel", r, &rep, SASL_CANCELLED, 501, "5.0.0");
	sasl_free(&sa);

	/* RFC 4954 section 4: no initial response where the server starts. */
	r = sasl_start(&sa, "CRAM-MD5", "dGlt", &c, &rep);
	WANT_FINAL("CRAM-MD5 with IR", r, &rep, SASL_SYNTAX, 501, "5.5.4");
	sasl_free(&sa);
	r = sasl_start(&sa, "CRAM-MD5", "=", &c, &rep);
	WANT_FINAL("CRAM-MD5 with =", r, &rep, SASL_SYNTAX, 501, "5.5.4");
	sasl_free(&sa);

	/* No host name: still a well-formed challenge. */
	c.hostname = NULL;
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	n = unb64(rep.text, chal, sizeof(chal));
	CU_ASSERT(n > 0 && strstr(chal, "@localhost>") != NULL);
	sasl_free(&sa);
}

static void
test_gates(void)
{
	static const char plain_ir[] = "AGFsaWNlAHdvbmRlcmxhbmQ=";
	struct sasl_conf c;
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;

	/* Without TLS, PLAIN and LOGIN only with -p. */
	c = conf_with(0, SASL_M_ALL, table);
	r = sasl_start(&sa, "PLAIN", plain_ir, &c, &rep);
	WANT_FINAL("PLAIN in clear", r, &rep, SASL_ENCRYPT_REQUIRED, 538,
	    "5.7.11");
	sasl_free(&sa);
	r = sasl_start(&sa, "LOGIN", NULL, &c, &rep);
	WANT_FINAL("LOGIN in clear", r, &rep, SASL_ENCRYPT_REQUIRED, 538,
	    "5.7.11");
	sasl_free(&sa);
	c = conf_with(SASL_F_CLEARTEXT, SASL_M_ALL, table);
	r = sasl_start(&sa, "PLAIN", plain_ir, &c, &rep);
	WANT_FINAL("PLAIN in clear with -p", r, &rep, SASL_OK, 235, "2.7.0");
	sasl_free(&sa);

	/* A known mechanism the config turned off is "too weak". */
	c = conf_with(SASL_F_TLS, SASL_M_PLAIN, table);
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	WANT_FINAL("CRAM-MD5 off", r, &rep, SASL_TOO_WEAK, 534, "5.7.9");
	CU_ASSERT_STRING_EQUAL(sasl_mech(sa), "CRAM-MD5");
	sasl_free(&sa);
	r = sasl_start(&sa, "DIGEST-MD5", NULL, &c, &rep);
	WANT_FINAL("DIGEST-MD5", r, &rep, SASL_UNKNOWN_MECH, 504, "5.5.4");
	CU_ASSERT_STRING_EQUAL(sasl_mech(sa), "");
	sasl_free(&sa);

	/* No secrets table: a temporary failure, before any exchange. */
	c = conf_with(SASL_F_TLS, SASL_M_ALL, NULL);
	r = sasl_start(&sa, "PLAIN", plain_ir, &c, &rep);
	WANT_FINAL("no table", r, &rep, SASL_TEMPFAIL, 454, "4.7.0");
	sasl_free(&sa);
	r = sasl_start(&sa, "CRAM-MD5", NULL, &c, &rep);
	WANT_FINAL("no table, CRAM", r, &rep, SASL_TEMPFAIL, 454, "4.7.0");
	sasl_free(&sa);
	sasl_free(&sa);		/* twice is harmless */
	CU_ASSERT_STRING_EQUAL(sasl_user(NULL), "");
	CU_ASSERT_EQUAL(sasl_step(NULL, "x", 1, &rep), SASL_TEMPFAIL);
}

static void
test_long_lines(void)
{
	struct sasl_conf c = conf_with(SASL_F_TLS, SASL_M_ALL, table);
	struct reply rep;
	struct sasl *sa;
	enum sasl_result r;
	char *msg;
	size_t n = (SASL_LINE_MAX / 4) * 3;	/* the most one line carries */

	msg = calloc(1, n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	memcpy(msg, "\0alice\0", 7);
	memset(msg + 7, 'p', n - 7);
	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, b64(msg, n), strlen(b64(msg, n)), &rep);
	WANT_FINAL("password too long", r, &rep, SASL_MALFORMED, 501,
	    "5.5.2");
	sasl_free(&sa);
	/* The longest password we check still gets an answer. */
	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, b64(msg, 7 + SECRETS_PASS_MAX),
	    strlen(b64(msg, 7 + SECRETS_PASS_MAX)), &rep);
	WANT_FINAL("long password", r, &rep, SASL_FAIL, 535, "5.7.8");
	sasl_free(&sa);
	free(msg);

	/* Past the RFC 4954 line limit: refused before decoding. */
	msg = malloc(SASL_LINE_MAX + 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	memset(msg, 'A', SASL_LINE_MAX + 4);
	msg[SASL_LINE_MAX + 4] = '\0';
	r = sasl_start(&sa, "PLAIN", NULL, &c, &rep);
	r = sasl_step(sa, msg, SASL_LINE_MAX + 4, &rep);
	WANT_FINAL("response too long", r, &rep, SASL_TOO_LONG, 500, "5.5.6");
	sasl_free(&sa);
	r = sasl_start(&sa, "PLAIN", msg, &c, &rep);
	WANT_FINAL("IR too long", r, &rep, SASL_TOO_LONG, 500, "5.5.6");
	sasl_free(&sa);
	free(msg);
}

static void
test_replies(void)
{
	static const struct {
		enum sasl_result r;
		int		 code;
		const char	*ecode;
	} rows[] = {
		{ SASL_ALREADY, 503, "5.5.1" },
		{ SASL_IN_TRANSACTION, 503, "5.5.1" },
		{ SASL_AUTH_REQUIRED, 530, "5.7.0" },
		{ SASL_SENDER_DENIED, 553, "5.7.1" },
		{ SASL_BLOCKED, 421, "4.7.0" },
		{ SASL_TOO_LONG, 500, "5.5.6" },
		{ SASL_FAIL, 535, "5.7.8" },
		{ SASL_OK, 235, "2.7.0" },
		{ SASL_NRESULTS, 454, "4.7.0" },
		{ (enum sasl_result)-1, 454, "4.7.0" },
	};
	struct reply rep;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		sasl_reply_for(rows[i].r, &rep);
		TU_CHECK(rep.code == rows[i].code &&
		    strcmp(rep.status, rows[i].ecode) == 0 &&
		    rep.text[0] != '\0', "reply_for(%d): got %d %s %s, "
		    "want %d %s", (int)rows[i].r, rep.code, rep.status,
		    rep.text, rows[i].code, rows[i].ecode);
	}
}

static void
test_mechlist(void)
{
	static const struct {
		unsigned int	 flags, mechs;
		int		 crypt_table;
		size_t		 len;
		const char	*want;
	} rows[] = {
		{ SASL_F_TLS, SASL_M_ALL, 0, 64, "PLAIN LOGIN CRAM-MD5" },
		{ 0, SASL_M_ALL, 0, 64, "CRAM-MD5" },
		{ SASL_F_CLEARTEXT, SASL_M_ALL, 0, 64,
		    "PLAIN LOGIN CRAM-MD5" },
		{ SASL_F_TLS, SASL_M_ALL, 1, 64, "PLAIN LOGIN" },
		{ 0, SASL_M_ALL, 1, 64, "" },
		{ SASL_F_TLS, 0, 0, 64, "" },
		{ SASL_F_TLS, SASL_M_LOGIN | SASL_M_CRAM_MD5, 0, 64,
		    "LOGIN CRAM-MD5" },
		{ SASL_F_TLS, SASL_M_ALL, 0, 6, "PLAIN" },
		{ SASL_F_TLS, SASL_M_ALL, 0, 5, "" },
	};
	struct sasl_conf c;
	char buf[64];
	size_t i, n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		c = conf_with(rows[i].flags, rows[i].mechs,
		    rows[i].crypt_table ? crypt_only : table);
		n = sasl_mechlist(&c, buf, rows[i].len);
		TU_CHECK(strcmp(buf, rows[i].want) == 0 &&
		    n == strlen(rows[i].want), "row %zu: got \"%s\" (%zu), "
		    "want \"%s\"", i, buf, n, rows[i].want);
	}
	/* Unreadable secrets: advertise what is enabled, AUTH says 454. */
	c = conf_with(SASL_F_TLS, SASL_M_ALL, NULL);
	(void)sasl_mechlist(&c, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "PLAIN LOGIN CRAM-MD5");
	CU_ASSERT_EQUAL(sasl_mech_bit("cram-md5"), SASL_M_CRAM_MD5);
	CU_ASSERT_EQUAL(sasl_mech_bit("Plain"), SASL_M_PLAIN);
	CU_ASSERT_EQUAL(sasl_mech_bit("GSSAPI"), 0);
}

int
suite_sasl(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("sasl", setup, teardown)) == NULL)
		return -1;
	if (CU_add_test(s, "split", test_split) == NULL ||
	    CU_add_test(s, "PLAIN initial response", test_plain_ir) == NULL ||
	    CU_add_test(s, "bad base64", test_bad_base64) == NULL ||
	    CU_add_test(s, "PLAIN after 334", test_plain_challenge) == NULL ||
	    CU_add_test(s, "LOGIN", test_login) == NULL ||
	    CU_add_test(s, "CRAM-MD5", test_cram) == NULL ||
	    CU_add_test(s, "TLS and config gates", test_gates) == NULL ||
	    CU_add_test(s, "long lines", test_long_lines) == NULL ||
	    CU_add_test(s, "replies", test_replies) == NULL ||
	    CU_add_test(s, "EHLO mechanism list", test_mechlist) == NULL)
		return -1;
	return 0;
}
