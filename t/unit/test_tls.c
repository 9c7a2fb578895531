/* TLS in smtpd: loading, handshakes, versions, bad clients, chains. */
#include "config.h"

#include <sys/socket.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "core/tls.h"
#include "tests.h"
#include "testutil.h"
#include "tlsfixture.h"

static void
test_load(void)
{
	static const struct {
		const char	*cert, *key, *chain, *prio, *ca;
		const char	*want;	/* in err; NULL: loads */
	} rows[] = {
		{ "mx.pem", "mx.key", NULL, NULL, NULL, NULL },
		{ "mx.pem", "mx.key", "inter.pem", TLS_DEFAULT_PRIORITY,
		    "client-ca.pem", NULL },
		{ "mx.pem", "mx.key", NULL, "SECURE256", NULL, NULL },
		{ "mx.pem", "mx.key", NULL,
		    "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL, NULL },
		{ NULL, "mx.key", NULL, NULL, NULL, "tls.certificate and" },
		{ "mx.pem", NULL, NULL, NULL, NULL, "tls.key are both" },
		{ "nonexistent.pem", "mx.key", NULL, NULL, NULL,
		    "tls.certificate " },
		{ "mx.pem", "nonexistent.key", NULL, NULL, NULL, "tls.key " },
		{ "mx.pem", "mx.key", "nonexistent.pem", NULL, NULL,
		    "tls.chain " },
		{ "mx.pem", "mx2.key", NULL, NULL, NULL,
		    "tls.certificate " },
		{ "junk.pem", "mx.key", NULL, NULL, NULL, "tls.certificate " },
		{ "mx.pem", "mx.key", NULL, "NORMAL:+VERS-TLS9.9", NULL,
		    "at \"+VERS-TLS9.9" },
		{ "mx.pem", "mx.key", NULL, "BOGUS", NULL, "tls.priority" },
		{ "mx.pem", "mx.key", NULL, NULL, "junk.pem",
		    "tls.client_ca " },
		{ "mx.pem", "mx.key", NULL, NULL, "nonexistent.pem",
		    "tls.client_ca " },
		{ ".", "mx.key", NULL, NULL, NULL, "not a regular file" },
	};
	struct tls_server *srv;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		srv = tf_server(rows[i].cert, rows[i].key, rows[i].chain,
		    rows[i].prio, 1, rows[i].ca, err, sizeof(err));
		if (rows[i].want == NULL)
			TU_CHECK(srv != NULL, "row %zu: %s", i, err);
		else
			TU_CHECK(srv == NULL && strstr(err,
			    rows[i].want) != NULL, "row %zu: got \"%s\", "
			    "want \"...%s...\"", i, err, rows[i].want);
		tls_server_unref(&srv);
		CU_ASSERT_PTR_NULL(srv);
	}
}

static void
test_describe(void)
{
	struct tls_server *srv;
	char err[512], buf[256];

	srv = tf_server("mx.pem", "mx.key", NULL, NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	CU_ASSERT_EQUAL(tls_server_describe(srv, buf, sizeof(buf)), 0);
	TU_CHECK(strncmp(buf, "subject CN=mx.test, expires 20", 30) == 0 &&
	    strstr(buf, " UTC") != NULL, "got \"%s\"", buf);
	tls_server_unref(&srv);

	/* An expired certificate still loads, but says so. */
	srv = tf_server("old.pem", "old.key", NULL, NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	CU_ASSERT_EQUAL(tls_server_describe(srv, buf, sizeof(buf)), 1);
	TU_CHECK(strncmp(buf, "subject CN=old.test, EXPIRED 20", 31) == 0,
	    "got \"%s\"", buf);
	tls_server_unref(&srv);
}

static void
test_handshake(void)
{
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512], want[TLS_DESC_MAX];

	srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);

	memset(&c, 0, sizeof(c));
	tf_serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == 0, "handshake: %s", sv.err);
	TU_CHECK(c.handshake == 0, "client: %s", gnutls_strerror(c.handshake));
	CU_ASSERT_STRING_EQUAL(c.got, "hello\n");
	CU_ASSERT_STRING_EQUAL(sv.bye, "bye\n");
	CU_ASSERT_STRING_EQUAL(c.server_cn, "mx.test");
	CU_ASSERT_EQUAL(sv.nonblock, 0);
	/* GnuTLS's NORMAL client prefers TLS 1.3. */
	CU_ASSERT_STRING_EQUAL(sv.ti.version, "TLS1.3");
	TU_CHECK(strncmp(sv.ti.cipher, "TLS_AES_", 8) == 0 ||
	    strncmp(sv.ti.cipher, "TLS_CHACHA20_", 13) == 0,
	    "cipher: got \"%s\"", sv.ti.cipher);
	CU_ASSERT(sv.ti.bits == 128 || sv.ti.bits == 256);
	snprintf(want, sizeof(want), "TLS1.3 with cipher %s (%u/%u bits)",
	    sv.ti.cipher, sv.ti.bits, sv.ti.bits);
	TU_CHECK(strcmp(sv.ti.desc, want) == 0, "desc: got \"%s\", want "
	    "\"%s\"", sv.ti.desc, want);
	CU_ASSERT(sv.ti.group[0] != '\0');
	CU_ASSERT_EQUAL(sv.ti.resumed, 0);
	CU_ASSERT_EQUAL(sv.ti.client_cert, 0);
	CU_ASSERT_EQUAL(sv.ti.client_verified, 0);
	CU_ASSERT_STRING_EQUAL(sv.ti.client_subject, "");
	tf_client_done(&c);

	/* TLS 1.2 still works, with an ECDHE suite. */
	memset(&c, 0, sizeof(c));
	c.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	tf_serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == 0, "TLS 1.2 handshake: %s", sv.err);
	CU_ASSERT_STRING_EQUAL(sv.ti.version, "TLS1.2");
	TU_CHECK(strncmp(sv.ti.cipher, "TLS_ECDHE_", 10) == 0,
	    "cipher: got \"%s\"", sv.ti.cipher);
	TU_CHECK(strncmp(sv.ti.desc, "TLS1.2 with cipher TLS_ECDHE_", 29) == 0,
	    "desc: got \"%s\"", sv.ti.desc);
	tf_client_done(&c);

	/* Stdio mode: two pipes instead of one socket. */
	memset(&c, 0, sizeof(c));
	tf_serve(srv, &c, 1, 5000, &sv);
	TU_CHECK(sv.r == 0, "handshake over pipes: %s", sv.err);
	CU_ASSERT_STRING_EQUAL(c.got, "hello\n");
	CU_ASSERT_STRING_EQUAL(sv.bye, "bye\n");
	CU_ASSERT_EQUAL(sv.nonblock, 0);
	tf_client_done(&c);
	tls_server_unref(&srv);

	CU_ASSERT_EQUAL(tls_session_info(NULL, &sv.ti), -1);
}

static void
test_versions(void)
{
	static const struct {
		const char	*server, *client;
		int		 ok;
	} rows[] = {
		/* The default refuses anything older than TLS 1.2. */
		{ NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.1", 0 },
		{ NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.0", 0 },
		{ NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2", 1 },
		{ NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.3", 1 },
		/* The configured priority string is what counts. */
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.3",
		    "NORMAL:-VERS-ALL:+VERS-TLS1.2", 0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.2",
		    "NORMAL:-VERS-ALL:+VERS-TLS1.3", 0 },
		{ "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.1",
		    "NORMAL:-VERS-ALL:+VERS-TLS1.1", 1 },
	};
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		srv = tf_server("mx.pem", "mx.key", "inter.pem", rows[i].server,
		    0, NULL, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
		memset(&c, 0, sizeof(c));
		c.priority = rows[i].client;
		tf_serve(srv, &c, 0, 5000, &sv);
		if (rows[i].ok)
			TU_CHECK(sv.r == 0, "row %zu: %s", i, sv.err);
		else
			TU_CHECK(sv.r == -1 && strncmp(sv.err,
			    "TLS handshake failed: ", 22) == 0,
			    "row %zu: got %d \"%s\"", i, sv.r, sv.err);
		tf_client_done(&c);
		tls_server_unref(&srv);
	}
}

static void
test_bad_clients(void)
{
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512];

	srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);

	/* Plain SMTP where a ClientHello belongs. */
	memset(&c, 0, sizeof(c));
	c.raw = "EHLO client.example\r\nMAIL FROM:<a@b>\r\n";
	tf_serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == -1 && strncmp(sv.err, "TLS handshake failed: ",
	    22) == 0, "garbage: got %d \"%s\"", sv.r, sv.err);
	CU_ASSERT_EQUAL(sv.nonblock, 0);

	/* Hangs up at once. */
	memset(&c, 0, sizeof(c));
	c.raw = "";
	tf_serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == -1 && strncmp(sv.err, "TLS handshake failed: ",
	    22) == 0, "hang-up: got %d \"%s\"", sv.r, sv.err);

	/* Says nothing: the deadline ends it. */
	memset(&c, 0, sizeof(c));
	c.silent = 1;
	tf_serve(srv, &c, 0, 200, &sv);
	TU_CHECK(sv.r == -1 && strcmp(sv.err, "TLS handshake timed out") == 0,
	    "silent: got %d \"%s\"", sv.r, sv.err);
	CU_ASSERT_EQUAL(sv.nonblock, 0);

	/* The same over pipes. */
	memset(&c, 0, sizeof(c));
	c.silent = 1;
	tf_serve(srv, &c, 1, 200, &sv);
	TU_CHECK(sv.r == -1 && strcmp(sv.err, "TLS handshake timed out") == 0,
	    "silent over pipes: got %d \"%s\"", sv.r, sv.err);
	tls_server_unref(&srv);
}

static void
test_chain(void)
{
	static const struct {
		const char	*cert, *chain;
		int		 ok;
	} rows[] = {
		{ "mx.pem", "inter.pem", 1 },	/* tls.chain */
		{ "mx-full.pem", NULL, 1 },	/* chain in the cert file */
		{ "mx.pem", NULL, 0 },		/* client cannot build it */
	};
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		srv = tf_server(rows[i].cert, "mx.key", rows[i].chain, NULL, 0,
		    NULL, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
		memset(&c, 0, sizeof(c));
		tf_serve(srv, &c, 0, 5000, &sv);
		if (rows[i].ok) {
			TU_CHECK(sv.r == 0 && c.handshake == 0,
			    "row %zu: server \"%s\", client %s", i, sv.err,
			    gnutls_strerror(c.handshake));
		} else {
			TU_CHECK(c.handshake ==
			    GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR,
			    "row %zu: client got %s", i,
			    gnutls_strerror(c.handshake));
			/*
			 * The server names the client's alert, or, when the
			 * client has hung up before the server wrote again,
			 * the broken pipe.
			 */
			TU_CHECK(sv.r == -1 &&
			    (strstr(sv.err, "alert") != NULL ||
			    strstr(sv.err, "Broken pipe") != NULL),
			    "row %zu: server got %d \"%s\"", i, sv.r, sv.err);
		}
		tf_client_done(&c);
		tls_server_unref(&srv);
	}
}

int
suite_tls(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("tls", tf_setup, tf_teardown)) == NULL)
		return -1;
	if (CU_add_test(s, "load", test_load) == NULL ||
	    CU_add_test(s, "describe", test_describe) == NULL ||
	    CU_add_test(s, "handshake", test_handshake) == NULL ||
	    CU_add_test(s, "protocol versions", test_versions) == NULL ||
	    CU_add_test(s, "bad clients", test_bad_clients) == NULL ||
	    CU_add_test(s, "chain", test_chain) == NULL)
		return -1;
	return 0;
}
