/* TLS in smtpd: client certificates, tickets, reload, SNI. */
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
test_client_certs(void)
{
	static const struct {
		const char	*cert, *key;
		int		 presented, verified;
		const char	*subject;
	} rows[] = {
		{ "alice.pem", "alice.key", 1, 1, "CN=alice" },
		{ "mallory.pem", "mallory.key", 1, 0, "CN=mallory" },
		{ "bob.pem", "bob.key", 1, 0, "CN=bob" }, /* not a client */
		{ NULL, NULL, 0, 0, "" },
	};
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512];
	size_t i, j;

	srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL, 0,
	    "client-ca.pem", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.cert = rows[i].cert;
		c.key = rows[i].key;
		tf_serve(srv, &c, 0, 5000, &sv);
		TU_CHECK(sv.r == 0, "row %zu: %s", i, sv.err);
		TU_CHECK(sv.ti.client_cert == rows[i].presented &&
		    sv.ti.client_verified == rows[i].verified,
		    "row %zu: got cert %d verified %d (%s), want %d %d", i,
		    sv.ti.client_cert, sv.ti.client_verified,
		    sv.ti.client_error, rows[i].presented, rows[i].verified);
		TU_CHECK(strncmp(sv.ti.client_subject, rows[i].subject,
		    strlen(rows[i].subject)) == 0, "row %zu: subject \"%s\"",
		    i, sv.ti.client_subject);
		if (rows[i].presented) {
			CU_ASSERT_EQUAL(strlen(sv.ti.client_sha256), 64);
			for (j = 0; j < 64; j++)
				CU_ASSERT(strchr("0123456789abcdef",
				    sv.ti.client_sha256[j]) != NULL);
		}
		if (rows[i].presented && !rows[i].verified)
			CU_ASSERT(sv.ti.client_error[0] != '\0');
		tf_client_done(&c);
	}
	/* alice's subject and issuer in full. */
	memset(&c, 0, sizeof(c));
	c.cert = "alice.pem";
	c.key = "alice.key";
	tf_serve(srv, &c, 0, 5000, &sv);
	CU_ASSERT_STRING_EQUAL(sv.ti.client_subject, "CN=alice,O=Example");
	CU_ASSERT_STRING_EQUAL(sv.ti.client_issuer, "CN=Test Client CA");
	CU_ASSERT_STRING_EQUAL(sv.ti.client_error, "");
	tf_client_done(&c);
	tls_server_unref(&srv);

	/* Without tls.client_ca nobody is asked for a certificate. */
	srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	memset(&c, 0, sizeof(c));
	c.cert = "alice.pem";
	c.key = "alice.key";
	tf_serve(srv, &c, 0, 5000, &sv);
	CU_ASSERT_EQUAL(sv.r, 0);
	CU_ASSERT_EQUAL(sv.ti.client_cert, 0);
	CU_ASSERT_EQUAL(sv.ti.client_verified, 0);
	tf_client_done(&c);
	tls_server_unref(&srv);
}

static void
test_tickets(void)
{
	static const char *const prios[] = {
		"NORMAL:-VERS-ALL:+VERS-TLS1.3",
		"NORMAL:-VERS-ALL:+VERS-TLS1.2",
	};
	struct tls_server *srv;
	struct tf_client c1, c2;
	struct tf_served sv;
	char err[512];
	size_t i;
	int tickets;

	for (tickets = 0; tickets <= 1; tickets++)
		for (i = 0; i < 2; i++) {
			srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL,
			    tickets, NULL, err, sizeof(err));
			CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
			memset(&c1, 0, sizeof(c1));
			c1.priority = prios[i];
			tf_serve(srv, &c1, 0, 5000, &sv);
			CU_ASSERT_EQUAL(sv.r, 0);
			CU_ASSERT_EQUAL(sv.ti.resumed, 0);

			memset(&c2, 0, sizeof(c2));
			c2.priority = prios[i];
			c2.resume = c1.data;
			tf_serve(srv, &c2, 0, 5000, &sv);
			CU_ASSERT_EQUAL(sv.r, 0);
			TU_CHECK(sv.ti.resumed == tickets &&
			    c2.resumed == tickets, "tickets %d, %s: server "
			    "resumed %d, client %d", tickets, prios[i],
			    sv.ti.resumed, c2.resumed);
			tf_client_done(&c1);
			tf_client_done(&c2);
			tls_server_unref(&srv);
		}
}

struct held {
	struct tf_client	 c;
	pthread_t	 th;
	int		 fd;
	gnutls_session_t s;
};

/*
 * SIGHUP: a new server is installed while a session made with the old
 * one is still open.  The old session goes on working; new handshakes
 * get the new certificate.
 */
/* tls.certificates read from files (as without the key process). */
static void
test_names(void)
{
	static const struct {
		const char	*sni;
		const char	*cn;
	} cases[] = {
		{ "other.test", "mx2.test" },
		{ "OTHER.Test.", "mx2.test" },
		{ "a.wild.test", "mx2.test" },
		{ "wild.test", "mx.test" },
		{ "a.b.wild.test", "mx.test" },
		{ "mx.test", "mx.test" },
		{ "unknown.test", "mx.test" },
	};
	char *names[] = { "other.test", "*.wild.test" };
	char cert[PATH_MAX], key[PATH_MAX], chain[PATH_MAX];
	char cert2[PATH_MAX], key2[PATH_MAX];
	struct tls_named named;
	struct tls_conf conf;
	struct tls_server *srv;
	struct tf_client c;
	struct tf_served sv;
	char err[512];
	size_t i;

	/* tf_path() gives the same buffer each time. */
	snprintf(cert, sizeof(cert), "%s", tf_path("mx.pem"));
	snprintf(key, sizeof(key), "%s", tf_path("mx.key"));
	snprintf(chain, sizeof(chain), "%s", tf_path("inter.pem"));
	snprintf(cert2, sizeof(cert2), "%s", tf_path("mx2.pem"));
	snprintf(key2, sizeof(key2), "%s", tf_path("mx2.key"));
	memset(&conf, 0, sizeof(conf));
	conf.certificate = cert;
	conf.key = key;
	conf.chain = chain;
	memset(&named, 0, sizeof(named));
	named.certificate = cert2;
	named.key = key2;
	named.chain = chain;
	named.names = names;
	named.nnames = 2;
	named.where = "smtpd.conf:3";
	conf.named = &named;
	conf.nnamed = 1;
	srv = tls_server_new(&conf, err, sizeof(err));
	TU_CHECK(srv != NULL, "load: %s", err);
	if (srv == NULL)
		return;
	CU_ASSERT_EQUAL(tls_server_names(srv), 2);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.sni = cases[i].sni;
		tf_serve(srv, &c, 0, 5000, &sv);
		TU_CHECK(sv.r == 0 && c.handshake == 0, "%s: %s", cases[i].sni,
		    sv.err);
		TU_CHECK(strcmp(c.server_cn, cases[i].cn) == 0,
		    "%s: got %s, want %s", cases[i].sni, c.server_cn,
		    cases[i].cn);
		tf_client_done(&c);
	}
	tls_server_unref(&srv);

	/* A key of another certificate: the entry's place in the error. */
	named.key = key;
	srv = tls_server_new(&conf, err, sizeof(err));
	CU_ASSERT_PTR_NULL(srv);
	TU_CHECK(strncmp(err, "smtpd.conf:3: tls.certificates: key ",
	    36) == 0 && strstr(err, "not the key of") != NULL, "got %s",
	    err);
	tls_server_unref(&srv);
}

static void
test_reload(void)
{
	struct tls_server *srv, *cur;
	struct held h;
	struct tf_client c;
	struct tf_served sv;
	char err[512], line[32];
	int fds[2];

	tls_server_install(NULL);
	CU_ASSERT_PTR_NULL(tls_server_current());
	srv = tf_server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	tls_server_install(srv);

	memset(&h, 0, sizeof(h));
	h.c.hold = 1;
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	h.fd = fds[0];
	h.c.rfd = h.c.wfd = fds[1];
	alarm(60);
	CU_ASSERT_FATAL(pthread_create(&h.th, NULL, tf_client_main, &h.c) ==
	    0);
	cur = tls_server_current();
	CU_ASSERT_PTR_EQUAL(cur, srv);
	CU_ASSERT_EQUAL(tls_handshake(cur, h.fd, h.fd, 5000, &h.s, err,
	    sizeof(err)), 0);
	tls_server_unref(&cur);
	CU_ASSERT_EQUAL(tf_send(h.s, "hello\n"), 0);

	/* The reload: the old server's last outside reference goes. */
	srv = tf_server("mx2.pem", "mx2.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	tls_server_install(srv);

	CU_ASSERT_EQUAL(tf_send(h.s, "again\n"), 0);
	CU_ASSERT_EQUAL(tf_line(h.s, line, sizeof(line)), 0);
	CU_ASSERT_STRING_EQUAL(line, "bye\n");
	tls_session_free(&h.s, 1);
	(void)close(h.fd);
	CU_ASSERT_EQUAL(pthread_join(h.th, NULL), 0);
	alarm(0);
	CU_ASSERT_STRING_EQUAL(h.c.got, "hello\nagain\n");
	CU_ASSERT_STRING_EQUAL(h.c.server_cn, "mx.test");
	tf_client_done(&h.c);

	cur = tls_server_current();
	memset(&c, 0, sizeof(c));
	tf_serve(cur, &c, 0, 5000, &sv);
	CU_ASSERT_EQUAL(sv.r, 0);
	CU_ASSERT_STRING_EQUAL(c.server_cn, "mx2.test");
	tf_client_done(&c);
	tls_server_unref(&cur);
	tls_server_install(NULL);
	CU_ASSERT_PTR_NULL(tls_server_current());
}

int
suite_tls_certs(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("tls certificates", tf_setup, tf_teardown)) ==
	    NULL)
		return -1;
	if (CU_add_test(s, "client certificates", test_client_certs) == NULL ||
	    CU_add_test(s, "session tickets", test_tickets) == NULL ||
	    CU_add_test(s, "reload", test_reload) == NULL ||
	    CU_add_test(s, "certificates by name", test_names) == NULL)
		return -1;
	return 0;
}
