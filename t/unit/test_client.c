#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "client/client.h"
#include "client/clientext.h"
#include "client/pin.h"
#include "tests.h"

static void
test_classify(void)
{
	static const struct {
		int code;
		const char *status;
		enum client_phase ph;
		int want;
	} rows[] = {
		{ 250, "2.0.0", CLIENT_PH_DOT, EX_OK },
		{ 354, "", CLIENT_PH_DATA, EX_OK },
		{ 421, "4.3.2", CLIENT_PH_GREETING, EX_TEMPFAIL },
		{ 450, "", CLIENT_PH_RCPT, EX_TEMPFAIL },
		{ 451, "4.7.1", CLIENT_PH_RCPT, EX_TEMPFAIL },
		{ 452, "4.5.3", CLIENT_PH_RCPT, EX_TEMPFAIL },
		{ 454, "4.7.0", CLIENT_PH_AUTH, EX_TEMPFAIL },
		{ 550, "5.1.1", CLIENT_PH_RCPT, EX_NOUSER },
		{ 550, "", CLIENT_PH_RCPT, EX_NOUSER },
		{ 553, "5.1.3", CLIENT_PH_RCPT, EX_NOUSER },
		{ 550, "5.1.2", CLIENT_PH_RCPT, EX_NOHOST },
		{ 556, "5.1.10", CLIENT_PH_RCPT, EX_NOHOST },
		{ 553, "5.1.8", CLIENT_PH_MAIL, EX_DATAERR },
		{ 550, "5.1.1", CLIENT_PH_MAIL, EX_DATAERR },
		{ 552, "5.3.4", CLIENT_PH_MAIL, EX_DATAERR },
		{ 552, "", CLIENT_PH_DOT, EX_DATAERR },
		{ 554, "5.6.0", CLIENT_PH_DOT, EX_DATAERR },
		{ 554, "", CLIENT_PH_DATA, EX_DATAERR },
		{ 554, "5.7.1", CLIENT_PH_RCPT, EX_UNAVAILABLE },
		{ 554, "", CLIENT_PH_GREETING, EX_UNAVAILABLE },
		{ 550, "", CLIENT_PH_EHLO, EX_UNAVAILABLE },
		{ 535, "5.7.8", CLIENT_PH_AUTH, EX_NOPERM },
		{ 504, "", CLIENT_PH_AUTH, EX_NOPERM },
		{ 500, "5.5.1", CLIENT_PH_MAIL, EX_PROTOCOL },
		{ 502, "", CLIENT_PH_STARTTLS, EX_PROTOCOL },
		{ 503, "", CLIENT_PH_DATA, EX_PROTOCOL },
		{ 0, "", CLIENT_PH_DATA, EX_PROTOCOL },
		/* 3xx out of turn */
		{ 354, "", CLIENT_PH_MAIL, EX_PROTOCOL },
		{ 354, "", CLIENT_PH_RCPT, EX_PROTOCOL },
		{ 354, "", CLIENT_PH_DOT, EX_PROTOCOL },
		{ 334, "", CLIENT_PH_GREETING, EX_PROTOCOL },
		{ 334, "", CLIENT_PH_DATA, EX_OK },
		/* RFC 4954 anywhere */
		{ 530, "5.7.0", CLIENT_PH_MAIL, EX_NOPERM },
		{ 530, "", CLIENT_PH_RCPT, EX_NOPERM },
		{ 538, "5.7.11", CLIENT_PH_MAIL, EX_NOPERM },
		{ 534, "5.7.9", CLIENT_PH_AUTH, EX_NOPERM },
		{ 554, "5.7.8", CLIENT_PH_RCPT, EX_NOPERM },
		/* the sender refused, whatever the status says */
		{ 550, "5.1.2", CLIENT_PH_MAIL, EX_DATAERR },
		{ 550, "5.2.1", CLIENT_PH_MAIL, EX_DATAERR },
		{ 550, "5.7.1", CLIENT_PH_MAIL, EX_UNAVAILABLE },
		{ 550, "5.2.1", CLIENT_PH_RCPT, EX_NOUSER },
		{ 550, "5.1.1", CLIENT_PH_DOT, EX_NOUSER },
		{ 600, "", CLIENT_PH_DATA, EX_PROTOCOL },
	};
	size_t i;
	int got;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		got = client_classify(rows[i].code, rows[i].status,
		    rows[i].ph);
		if (got != rows[i].want) {
			fprintf(stderr, "\n%d %s (phase %d): got %d, want %d\n",
			    rows[i].code, rows[i].status, rows[i].ph, got,
			    rows[i].want);
			CU_FAIL("client_classify");
		}
	}
	CU_ASSERT(client_severity(EX_OK) < client_severity(EX_TEMPFAIL));
	CU_ASSERT(client_severity(EX_TEMPFAIL) < client_severity(EX_NOUSER));
	CU_ASSERT_EQUAL(client_severity(EX_NOUSER),
	    client_severity(EX_DATAERR));
}

/*
 * A result as the library gives it -- cause, temporary, the reply and its
 * phase -- and the exit status smtp(1), sendmail's smarthost and smtp -p
 * give for it; its severity, enhanced status and code.
 */
static void
test_exit_status(void)
{
	static const struct {
		enum client_cause cause;
		int temporary;
		int code;
		const char *status;
		enum client_phase ph;
		int want, sev;
		const char *wstatus;
		int wcode;
	} rows[] = {
		/* the server's reply decides */
		{ CLIENT_CAUSE_NONE, 0, 250, "2.0.0", CLIENT_PH_DOT, EX_OK, 0,
		    "2.0.0", 250 },
		{ CLIENT_CAUSE_NONE, 0, 250, "", CLIENT_PH_LMTP, EX_OK, 0,
		    "", 250 },
		{ CLIENT_CAUSE_NONE, 1, 451, "4.7.1", CLIENT_PH_RCPT,
		    EX_TEMPFAIL, 1, "4.7.1", 451 },
		{ CLIENT_CAUSE_NONE, 0, 550, "5.1.1", CLIENT_PH_RCPT,
		    EX_NOUSER, 2, "5.1.1", 550 },
		{ CLIENT_CAUSE_NONE, 0, 550, "5.1.1", CLIENT_PH_MAIL,
		    EX_DATAERR, 2, "5.1.1", 550 },
		{ CLIENT_CAUSE_NONE, 0, 552, "", CLIENT_PH_LMTP, EX_DATAERR,
		    2, "", 552 },
		{ CLIENT_CAUSE_NONE, 0, 535, "5.7.8", CLIENT_PH_AUTH,
		    EX_NOPERM, 2, "5.7.8", 535 },
		{ CLIENT_CAUSE_NONE, 0, 554, "", CLIENT_PH_GREETING,
		    EX_UNAVAILABLE, 2, "", 554 },
		{ CLIENT_CAUSE_NONE, 0, 354, "", CLIENT_PH_DATA, EX_OK, 0,
		    "", 354 },
		{ CLIENT_CAUSE_NONE, 0, 354, "", CLIENT_PH_RCPT, EX_PROTOCOL,
		    2, "", 354 },
		/* RSET refused: the connection is not to be trusted */
		{ CLIENT_CAUSE_NONE, 1, 550, "5.5.1", CLIENT_PH_MAIL,
		    EX_TEMPFAIL, 1, "5.5.1", 550 },
		/* STARTTLS refused when TLS is required */
		{ CLIENT_CAUSE_TLS_REFUSED, 0, 502, "5.5.1",
		    CLIENT_PH_STARTTLS, EX_UNAVAILABLE, 2, "5.5.1", 502 },
		{ CLIENT_CAUSE_TLS_REFUSED, 0, 250, "", CLIENT_PH_STARTTLS,
		    EX_UNAVAILABLE, 2, "", 250 },
		{ CLIENT_CAUSE_NONE, 1, 454, "4.7.0", CLIENT_PH_STARTTLS,
		    EX_TEMPFAIL, 1, "4.7.0", 454 },
		/* a 2xx to DATA is no invitation to send */
		{ CLIENT_CAUSE_PROTOCOL, 0, 250, "", CLIENT_PH_DATA,
		    EX_PROTOCOL, 2, "", 250 },
		/* the client's own findings */
		{ CLIENT_CAUSE_NETWORK, 1, 0, "", CLIENT_PH_CONNECT,
		    EX_TEMPFAIL, 1, "", 0 },
		{ CLIENT_CAUSE_LOST, 1, 0, "", CLIENT_PH_MAIL, EX_TEMPFAIL, 1,
		    "4.4.2", 0 },
		{ CLIENT_CAUSE_BUSTED, 1, 0, "", CLIENT_PH_CONNECT,
		    EX_TEMPFAIL, 1, "4.4.1", 0 },
		{ CLIENT_CAUSE_DNS, 1, 0, "", CLIENT_PH_CONNECT, EX_TEMPFAIL,
		    1, "4.4.3", 0 },
		{ CLIENT_CAUSE_NO_HOST, 0, 0, "", CLIENT_PH_CONNECT,
		    EX_NOHOST, 2, "5.1.2", 0 },
		{ CLIENT_CAUSE_NULL_MX, 0, 0, "", CLIENT_PH_CONNECT,
		    EX_NOHOST, 2, "5.1.10", 556 },
		{ CLIENT_CAUSE_MX_LOOP, 0, 0, "", CLIENT_PH_CONNECT,
		    EX_UNAVAILABLE, 2, "5.4.6", 0 },
		{ CLIENT_CAUSE_PROTOCOL, 0, 0, "", CLIENT_PH_GREETING,
		    EX_PROTOCOL, 2, "", 0 },
		{ CLIENT_CAUSE_TLS_NOT_OFFERED, 0, 0, "", CLIENT_PH_STARTTLS,
		    EX_UNAVAILABLE, 2, "5.7.10", 0 },
		{ CLIENT_CAUSE_TLS_VERIFY, 0, 0, "", CLIENT_PH_STARTTLS,
		    EX_UNAVAILABLE, 2, "5.7.0", 0 },
		{ CLIENT_CAUSE_TLS_POLICY, 1, 0, "", CLIENT_PH_STARTTLS,
		    EX_TEMPFAIL, 1, "4.7.5", 0 },
		{ CLIENT_CAUSE_AUTH, 0, 0, "", CLIENT_PH_AUTH, EX_NOPERM, 2,
		    "5.7.0", 0 },
		{ CLIENT_CAUSE_TOO_BIG, 0, 0, "", CLIENT_PH_MAIL, EX_DATAERR,
		    2, "5.3.4", 552 },
		{ CLIENT_CAUSE_SMTPUTF8, 0, 0, "", CLIENT_PH_MAIL, EX_DATAERR,
		    2, "5.6.7", 0 },
		{ CLIENT_CAUSE_REQUIRETLS, 0, 0, "", CLIENT_PH_MAIL,
		    EX_UNAVAILABLE, 2, "5.7.30", 0 },
		{ CLIENT_CAUSE_LIMITS, 1, 0, "", CLIENT_PH_MAIL, EX_TEMPFAIL,
		    1, "4.5.3", 0 },
		{ CLIENT_CAUSE_MESSAGE, 0, 0, "", CLIENT_PH_DATA, EX_IOERR, 2,
		    "", 0 },
		{ CLIENT_CAUSE_USAGE, 0, 0, "", CLIENT_PH_CONNECT, EX_USAGE,
		    2, "", 0 },
		{ CLIENT_CAUSE_CONFIG, 0, 0, "", CLIENT_PH_STARTTLS,
		    EX_CONFIG, 2, "", 0 },
		{ CLIENT_CAUSE_SOFTWARE, 0, 0, "", CLIENT_PH_STARTTLS,
		    EX_SOFTWARE, 2, "", 0 },
		{ CLIENT_CAUSE_NOMEM, 0, 0, "", CLIENT_PH_CONNECT, EX_OSERR,
		    2, "", 0 },
	};
	struct client_result res;
	struct client_rcpt rc;
	size_t i;
	int got;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&res, 0, sizeof(res));
		res.cause = rows[i].cause;
		res.temporary = rows[i].temporary;
		res.phase = rows[i].ph;
		if (rows[i].code != 0)
			CU_ASSERT_EQUAL(reply_set(&res.reply, rows[i].code,
			    rows[i].status, "text"), 0);
		got = client_exit_status(&res);
		if (got != rows[i].want ||
		    client_result_severity(&res) != rows[i].sev ||
		    strcmp(client_result_status(&res), rows[i].wstatus) != 0 ||
		    client_result_code(&res) != rows[i].wcode) {
			fprintf(stderr, "\nrow %zu: got %d (severity %d, %s "
			    "%d), want %d\n", i, got,
			    client_result_severity(&res),
			    client_result_status(&res),
			    client_result_code(&res), rows[i].want);
			CU_FAIL("client_exit_status");
		}
		/* A recipient's outcome maps the same way. */
		memset(&rc, 0, sizeof(rc));
		rc.reply = res.reply;
		rc.cause = res.cause;
		rc.temporary = res.temporary;
		rc.phase = res.phase;
		CU_ASSERT_EQUAL(client_rcpt_exit_status(&rc), got);
		CU_ASSERT_EQUAL(client_rcpt_severity(&rc), rows[i].sev);
		CU_ASSERT_STRING_EQUAL(client_rcpt_status(&rc),
		    rows[i].wstatus);
		CU_ASSERT_EQUAL(client_rcpt_code(&rc), rows[i].wcode);
		/* Retrying cannot help: the client's 5.X.Y. */
		CU_ASSERT_EQUAL(client_cause_final(rows[i].cause),
		    rows[i].code == 0 && rows[i].wstatus[0] == '5');
	}
}

/* Runs the stuffer over pieces (split at '|') and returns the output. */
static void
stuff_pieces(const char *pieces, struct str *out)
{
	struct client_stuffer st;
	const char *p = pieces, *bar;

	client_stuff_init(&st);
	for (;;) {
		bar = strchr(p, '|');
		CU_ASSERT_EQUAL(client_stuff(&st, p, bar ? (size_t)(bar - p) :
		    strlen(p), out), 0);
		if (bar == NULL)
			break;
		p = bar + 1;
	}
	CU_ASSERT_EQUAL(client_stuff_end(&st, out), 0);
}

static void
test_stuff(void)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ "", ".\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a\n", "a\r\n.\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ ".\r\n", "..\r\n.\r\n" },
		{ "a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n" },
		{ "a\n.b\n", "a\r\n..b\r\n.\r\n" },
		{ "x.y\r\n", "x.y\r\n.\r\n" },
		{ "a\rb\r\n", "a\r\nb\r\n.\r\n" },
		{ "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n" },
		{ "\r\n\r\n", "\r\n\r\n.\r\n" },
		/* split across pieces */
		{ "a\r|\n.b", "a\r\n..b\r\n.\r\n" },
		{ "a\r\n|.b", "a\r\n..b\r\n.\r\n" },
		{ "a|b\n|.|\r\n", "ab\r\n..\r\n.\r\n" },
		{ "a\r|b", "a\r\nb\r\n.\r\n" },
		{ "a\r|", "a\r\n.\r\n" },
		{ "|||", ".\r\n" },
	};
	struct str out;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		str_init(&out, 4096);
		stuff_pieces(rows[i].in, &out);
		if (strcmp(str_cstr(&out), rows[i].want) != 0) {
			fprintf(stderr, "\nrow %zu: got \"%s\"\n", i,
			    str_cstr(&out));
			CU_FAIL("client_stuff");
		}
		str_free(&out);
	}
	/* A full buffer is reported. */
	{
		struct client_stuffer st;

		str_init(&out, 4);
		client_stuff_init(&st);
		CU_ASSERT_EQUAL(client_stuff(&st, "abcdef\n", 7, &out), -1);
		str_free(&out);
	}
}

static void
test_pick_mech(void)
{
	static const struct {
		const char *offered;
		int tls, clear, xoauth2;
		enum client_auth_mech forced;
		int want;
	} rows[] = {
		{ "PLAIN LOGIN CRAM-MD5", 1, 0, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_PLAIN },
		{ "LOGIN CRAM-MD5", 1, 0, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_CRAM_MD5 },
		{ "login", 1, 0, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_LOGIN },
		{ "PLAIN LOGIN CRAM-MD5", 0, 0, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_CRAM_MD5 },
		{ "PLAIN LOGIN", 0, 0, 0, CLIENT_AUTH_AUTO, -1 },
		{ "PLAIN LOGIN", 0, 1, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_PLAIN },
		{ "LOGIN", 0, 1, 0, CLIENT_AUTH_AUTO, CLIENT_AUTH_LOGIN },
		{ "PLAIN XOAUTH2", 1, 0, 1, CLIENT_AUTH_AUTO, CLIENT_AUTH_XOAUTH2 },
		{ "PLAIN LOGIN", 1, 0, 1, CLIENT_AUTH_AUTO, -1 },
		{ "XOAUTH2", 0, 0, 1, CLIENT_AUTH_AUTO, -1 },
		{ "PLAIN LOGIN CRAM-MD5", 1, 0, 0, CLIENT_AUTH_LOGIN, CLIENT_AUTH_LOGIN },
		{ "PLAIN LOGIN", 1, 0, 0, CLIENT_AUTH_CRAM_MD5, -1 },
		{ "PLAIN", 0, 0, 0, CLIENT_AUTH_PLAIN, -1 },
		{ "CRAM-MD5", 0, 0, 0, CLIENT_AUTH_CRAM_MD5, CLIENT_AUTH_CRAM_MD5 },
		{ "", 1, 1, 0, CLIENT_AUTH_AUTO, -1 },
		{ "PLAINX GSSAPI", 1, 1, 0, CLIENT_AUTH_AUTO, -1 },
	};
	size_t i;
	int got;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		got = client_pick_mech(rows[i].offered, rows[i].tls,
		    rows[i].clear, rows[i].xoauth2, rows[i].forced);
		if (got != rows[i].want) {
			fprintf(stderr, "\n\"%s\" tls=%d: got %d, want %d\n",
			    rows[i].offered, rows[i].tls, got, rows[i].want);
			CU_FAIL("client_pick_mech");
		}
	}
}

static void
test_connect_errors(void)
{
	struct client_opts o;
	struct client_result res;

	memset(&o, 0, sizeof(o));
	o.helo = "client.test";
	/* A bad dial string fails before any network traffic. */
	CU_ASSERT_PTR_NULL(client_connect("udp!x.test", &o, &res));
	CU_ASSERT_EQUAL(res.cause, CLIENT_CAUSE_USAGE);
	CU_ASSERT_EQUAL(client_exit_status(&res), EX_USAGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(res.text, "unsupported network"));
	o.auth_user = "alice";
	CU_ASSERT_PTR_NULL(client_connect("127.0.0.1:1", &o, &res));
	CU_ASSERT_EQUAL(res.cause, CLIENT_CAUSE_CONFIG);
	CU_ASSERT_EQUAL(client_exit_status(&res), EX_CONFIG);
}

/* 40 of the 44 digits of a key pin, for the rows below. */
#define B64	"bwGyC+EQhBYeL7yDRZp0NBKHZ1qtSQ2ZCVPgg0nl"

static void
test_pin_valid(void)
{
	static const struct {
		const char	*pin;
		int		 want;
	} rows[] = {
		{ "sha256:" "00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899aabbccddeeff", 1 },
		{ "SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
		    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF", 1 },
		{ "00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899AABBCCDDEEFF", 1 },
		{ "pin-sha256:" B64 "hK4=", 1 },
		{ "sha256//" B64 "hK4=", 1 },
		{ "pin-sha256:" B64 "hK4=, "
		    "sha256:00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899AABBCCDDEEFF", 1 },
		{ "", 0 },
		{ ",", 0 },
		{ "sha256:0011", 0 },
		{ "sha256:" "00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899AABBCCDDEEFF00", 0 },
		{ "sha256:" "00112233445566778899AABBCCDDEEFF"
		    "00112233445566778899AABBCCDDEEFG", 0 },
		/* 43 digits whose last carries bits beyond 32 bytes */
		{ "pin-sha256:" B64 "hK5=", 0 },
		{ "pin-sha256:" B64 "hK4", 0 },
		{ "pin-sha256:" B64 "hK4==", 0 },
		{ "pin-sha256:bwGyC+EQhBYeL7yDRZp0NBKHZ1qtSQ2ZCVPgg0n*hK4=", 0 },
		{ "pin-sha256:" B64 "hK4=,", 0 },
		{ "md5:00112233445566778899AABBCCDDEEFF", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (pin_valid(rows[i].pin) != rows[i].want) {
			fprintf(stderr, "\npin_valid(\"%s\"): want %d\n",
			    rows[i].pin, rows[i].want);
			CU_FAIL("pin_valid");
		}
}

static void
test_limits_parse(void)
{
	static const struct {
		const char	*in;
		unsigned int	 rcptmax, mailmax;
	} cases[] = {
		{ "RCPTMAX=3", 3, 0 },
		{ "MAILMAX=5 RCPTMAX=10", 10, 5 },
		{ "rcptmax=7  RCPTDOMAINMAX=2 MAILMAX=1", 7, 1 },
		{ "RCPTMAX=0 MAILMAX=x", 0, 0 },
		{ "RCPTMAX=99999999999", 0, 0 },
		{ "RCPTMAX= RCPTMAX3", 0, 0 },
		{ "", 0, 0 },
	};
	struct clientext_limits l;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		clientext_limits_parse(cases[i].in, strlen(cases[i].in), &l);
		if (l.rcptmax != cases[i].rcptmax ||
		    l.mailmax != cases[i].mailmax)
			fprintf(stderr, "\"%s\": got %u/%u, want %u/%u\n",
			    cases[i].in, l.rcptmax, l.mailmax,
			    cases[i].rcptmax, cases[i].mailmax);
		CU_ASSERT_EQUAL(l.rcptmax, cases[i].rcptmax);
		CU_ASSERT_EQUAL(l.mailmax, cases[i].mailmax);
	}
}

static void
test_requiretls_ok(void)
{
	char why[128];

	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "verified", 0, 1, why,
	    sizeof(why)), 1);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "DANE", 0, 1, why,
	    sizeof(why)), 1);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "MTA-STS", 0, 1, why,
	    sizeof(why)), 1);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(0, "none", 0, 1, why,
	    sizeof(why)), 0);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "unverified", 0, 1, why,
	    sizeof(why)), 0);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "unverified (MTA-STS "
	    "testing)", 0, 1, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "verified", 1, 1, why,
	    sizeof(why)), 0);
	CU_ASSERT_EQUAL(clientext_requiretls_ok(1, "verified", 0, 0, why,
	    sizeof(why)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "REQUIRETLS"));
}

int
suite_client(void)
{
	CU_pSuite s = CU_add_suite("client", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "reply classification", test_classify) == NULL ||
	    CU_add_test(s, "exit status of a result", test_exit_status) ==
	    NULL ||
	    CU_add_test(s, "dot-stuffing", test_stuff) == NULL ||
	    CU_add_test(s, "AUTH mechanism choice", test_pick_mech) == NULL ||
	    CU_add_test(s, "connect errors", test_connect_errors) == NULL ||
	    CU_add_test(s, "pin syntax", test_pin_valid) == NULL ||
	    CU_add_test(s, "LIMITS parameters", test_limits_parse) == NULL ||
	    CU_add_test(s, "REQUIRETLS terms", test_requiretls_ok) == NULL)
		return -1;
	return 0;
}
