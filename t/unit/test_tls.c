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
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "core/tls.h"
#include "tests.h"
#include "testutil.h"

/*
 * Throwaway certificates, made with GnuTLS when the suite starts:
 *
 *	root CA -> intermediate CA -> mx.test, mx2.test (SAN mx.test too)
 *	client CA -> alice (clientAuth), bob (serverAuth only)
 *	fake CA (the client CA's name, another key) -> mallory
 *	old (expired, self-signed)
 */
static char	dir[PATH_MAX];

struct pki {
	gnutls_x509_privkey_t	 key;
	gnutls_x509_crt_t	 crt;
};

static struct pki root, inter, mx, mx2, client_ca, alice, bob, fake_ca, mallory,
    old;

static char *
path(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned int next;

	return (char *)tu_path(buf[next++ % 8], PATH_MAX, dir, name);
}

static int
mkcert(struct pki *p, const char *dn, const struct pki *issuer, int ca,
    const char *purpose, const char *dns, time_t from, time_t until)
{
	unsigned char serial[8], kid[64], akid[64];
	size_t kidlen = sizeof(kid), akidlen = sizeof(akid);
	const char *errpos;

	if (gnutls_x509_privkey_init(&p->key) < 0 ||
	    gnutls_x509_privkey_generate(p->key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&p->crt) < 0 ||
	    gnutls_x509_crt_set_version(p->crt, 3) < 0 ||
	    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		return -1;
	serial[0] &= 0x7f;
	if (gnutls_x509_crt_set_serial(p->crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(p->crt, from) < 0 ||
	    gnutls_x509_crt_set_expiration_time(p->crt, until) < 0 ||
	    gnutls_x509_crt_set_dn(p->crt, dn, &errpos) < 0 ||
	    gnutls_x509_crt_set_key(p->crt, p->key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(p->crt, ca ? 1 : 0,
	    -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(p->crt, ca ?
	    GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN :
	    GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_get_key_id(p->crt, 0, kid, &kidlen) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(p->crt, kid, kidlen) < 0)
		return -1;
	if (purpose != NULL &&
	    gnutls_x509_crt_set_key_purpose_oid(p->crt, purpose, 0) < 0)
		return -1;
	if (dns != NULL && gnutls_x509_crt_set_subject_alt_name(p->crt,
	    GNUTLS_SAN_DNSNAME, dns, (unsigned int)strlen(dns),
	    GNUTLS_FSAN_APPEND) < 0)
		return -1;
	if (issuer != NULL &&
	    (gnutls_x509_crt_get_subject_key_id(issuer->crt, akid, &akidlen,
	    NULL) < 0 ||
	    gnutls_x509_crt_set_authority_key_id(p->crt, akid, akidlen) < 0))
		return -1;
	return gnutls_x509_crt_sign2(p->crt, issuer ? issuer->crt : p->crt,
	    issuer ? issuer->key : p->key, GNUTLS_DIG_SHA256, 0) < 0 ? -1 : 0;
}

/* Writes the certificate (and the key, when keyname is given) as PEM. */
static int
save(const struct pki *p, const char *crtname, const char *keyname)
{
	gnutls_datum_t d;
	int r;

	if (gnutls_x509_crt_export2(p->crt, GNUTLS_X509_FMT_PEM, &d) < 0)
		return -1;
	r = tu_write_file(path(crtname), d.data, d.size, 0644);
	gnutls_free(d.data);
	if (r == -1 || keyname == NULL)
		return r;
	if (gnutls_x509_privkey_export2(p->key, GNUTLS_X509_FMT_PEM, &d) < 0)
		return -1;
	r = tu_write_file(path(keyname), d.data, d.size, 0600);
	gnutls_free(d.data);
	return r;
}

/* Concatenates two files into a third. */
static int
cat2(const char *a, const char *b, const char *out)
{
	char buf[16384];
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path(a), O_RDONLY)) == -1)
		return -1;
	r = read(fd, buf, sizeof(buf));
	(void)close(fd);
	if (r <= 0)
		return -1;
	n = (size_t)r;
	if ((fd = open(path(b), O_RDONLY)) == -1)
		return -1;
	r = read(fd, buf + n, sizeof(buf) - n);
	(void)close(fd);
	if (r <= 0)
		return -1;
	n += (size_t)r;
	return tu_write_file(path(out), buf, n, 0644);
}

static int
setup(void)
{
	time_t now = time(NULL);
	time_t from = now - 3600, until = now + 86400;

	/* A client that hangs up must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (tu_mkdtemp(dir, sizeof(dir)) == -1)
		return -1;
	if (mkcert(&root, "CN=Test Root CA", NULL, 1, NULL, NULL, from,
	    until) == -1 ||
	    mkcert(&inter, "CN=Test Intermediate CA", &root, 1, NULL, NULL,
	    from, until) == -1 ||
	    mkcert(&mx, "CN=mx.test", &inter, 0, GNUTLS_KP_TLS_WWW_SERVER,
	    "mx.test", from, until) == -1 ||
	    mkcert(&mx2, "CN=mx2.test", &inter, 0, GNUTLS_KP_TLS_WWW_SERVER,
	    "mx.test", from, until) == -1 ||
	    mkcert(&client_ca, "CN=Test Client CA", NULL, 1, NULL, NULL, from,
	    until) == -1 ||
	    mkcert(&alice, "CN=alice,O=Example", &client_ca, 0,
	    GNUTLS_KP_TLS_WWW_CLIENT, NULL, from, until) == -1 ||
	    mkcert(&bob, "CN=bob", &client_ca, 0, GNUTLS_KP_TLS_WWW_SERVER,
	    NULL, from, until) == -1 ||
	    mkcert(&fake_ca, "CN=Test Client CA", NULL, 1, NULL, NULL, from,
	    until) == -1 ||
	    mkcert(&mallory, "CN=mallory", &fake_ca, 0,
	    GNUTLS_KP_TLS_WWW_CLIENT, NULL, from, until) == -1 ||
	    mkcert(&old, "CN=old.test", NULL, 0, GNUTLS_KP_TLS_WWW_SERVER,
	    "old.test", now - 2 * 86400, now - 86400) == -1)
		return -1;
	if (save(&root, "root.pem", NULL) == -1 ||
	    save(&inter, "inter.pem", NULL) == -1 ||
	    save(&mx, "mx.pem", "mx.key") == -1 ||
	    save(&mx2, "mx2.pem", "mx2.key") == -1 ||
	    save(&client_ca, "client-ca.pem", NULL) == -1 ||
	    save(&alice, "alice.pem", "alice.key") == -1 ||
	    save(&bob, "bob.pem", "bob.key") == -1 ||
	    save(&mallory, "mallory.pem", "mallory.key") == -1 ||
	    save(&old, "old.pem", "old.key") == -1 ||
	    cat2("mx.pem", "inter.pem", "mx-full.pem") == -1 ||
	    tu_write_file(path("junk.pem"), "not a certificate\n", (size_t)-1,
	    0644) == -1)
		return -1;
	return 0;
}

static void
pki_free(struct pki *p)
{
	if (p->crt != NULL)
		gnutls_x509_crt_deinit(p->crt);
	if (p->key != NULL)
		gnutls_x509_privkey_deinit(p->key);
	p->crt = NULL;
	p->key = NULL;
}

static int
teardown(void)
{
	pki_free(&root);
	pki_free(&inter);
	pki_free(&mx);
	pki_free(&mx2);
	pki_free(&client_ca);
	pki_free(&alice);
	pki_free(&bob);
	pki_free(&fake_ca);
	pki_free(&mallory);
	pki_free(&old);
	tls_server_install(NULL);
	tu_rmtree(dir);
	return 0;
}

static struct tls_server *
server(const char *cert, const char *key, const char *chain,
    const char *prio, int tickets, const char *ca, char *err, size_t errlen)
{
	struct tls_conf c;

	memset(&c, 0, sizeof(c));
	c.certificate = cert != NULL ? path(cert) : NULL;
	c.key = key != NULL ? path(key) : NULL;
	c.chain = chain != NULL ? path(chain) : NULL;
	c.priority = prio;
	c.tickets = tickets;
	c.client_ca = ca != NULL ? path(ca) : NULL;
	err[0] = '\0';
	return tls_server_new(&c, err, errlen);
}

/* The client side, run in a thread with an independent GnuTLS session. */
struct client {
	int		 rfd, wfd;	/* closed by the client when done */
	const char	*priority;	/* NULL: NORMAL */
	const char	*cert, *key;	/* client certificate, or NULL */
	const char	*raw;		/* sent instead of a handshake */
	int		 silent;	/* sends nothing, waits for EOF */
	int		 hold;		/* reads a second line before "bye" */
	gnutls_datum_t	 resume;	/* session data to resume */
	const char	*sni;		/* the name asked for; NULL: mx.test */
	/* Results. */
	int		 handshake;	/* 0 or the GnuTLS error */
	int		 resumed;
	char		 server_cn[64];
	char		 got[64];	/* the lines the server sent */
	gnutls_datum_t	 data;		/* session data for the next one */
};

static ssize_t
c_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	return read((int)(intptr_t)p, buf, n);
}

static ssize_t
c_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
	return write((int)(intptr_t)p, buf, n);
}

/* Reads one line over TLS into buf; 0 or -1. */
static int
tls_line(gnutls_session_t s, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < len) {
		r = gnutls_record_recv(s, buf + n, 1);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

static void
peer_cn(gnutls_session_t s, char *buf, size_t len)
{
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt;
	unsigned int n = 0;
	size_t l = len;

	buf[0] = '\0';
	if ((peers = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0)
		(void)gnutls_x509_crt_get_dn_by_oid(crt,
		    GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &l);
	gnutls_x509_crt_deinit(crt);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	char buf[64];
	int r;

	if (c->raw != NULL || c->silent) {
		if (c->raw != NULL && *c->raw != '\0')
			(void)write(c->wfd, c->raw, strlen(c->raw));
		/* An empty raw string: hang up at once. */
		while (!(c->raw != NULL && *c->raw == '\0') &&
		    read(c->rfd, buf, sizeof(buf)) > 0)
			;
		goto out;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_trust_file(cred, path("root.pem"),
	    GNUTLS_X509_FMT_PEM) <= 0 ||
	    (c->cert != NULL && gnutls_certificate_set_x509_key_file(cred,
	    path(c->cert), path(c->key), GNUTLS_X509_FMT_PEM) < 0) ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(s, c->priority ? c->priority :
	    "NORMAL", NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, c->sni != NULL ?
	    c->sni : "mx.test", strlen(c->sni != NULL ? c->sni : "mx.test")) <
	    0) {
		c->handshake = GNUTLS_E_INTERNAL_ERROR;
		goto out;
	}
	gnutls_session_set_verify_cert(s, "mx.test", 0);
	if (c->resume.data != NULL)
		(void)gnutls_session_set_data(s, c->resume.data,
		    c->resume.size);
	gnutls_transport_set_ptr2(s, (gnutls_transport_ptr_t)(intptr_t)c->rfd,
	    (gnutls_transport_ptr_t)(intptr_t)c->wfd);
	gnutls_transport_set_pull_function(s, c_pull);
	gnutls_transport_set_push_function(s, c_push);
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	c->handshake = r;
	if (r < 0) {
		/* As real clients do: tell the server why. */
		(void)gnutls_alert_send_appropriate(s, r);
		goto out;
	}
	c->resumed = gnutls_session_is_resumed(s) != 0;
	peer_cn(s, c->server_cn, sizeof(c->server_cn));
	/* Reading also takes in TLS 1.3 session tickets. */
	if (tls_line(s, c->got, sizeof(c->got)) == -1)
		goto out;
	if (c->hold && tls_line(s, buf, sizeof(buf)) == 0)
		snprintf(c->got + strlen(c->got),
		    sizeof(c->got) - strlen(c->got), "%s", buf);
	(void)gnutls_session_get_data2(s, &c->data);
	(void)gnutls_record_send(s, "bye\n", 4);
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	(void)close(c->rfd);
	if (c->wfd != c->rfd)
		(void)close(c->wfd);
	return NULL;
}

/* Plain server I/O after the handshake, as a session would do it. */
static int
srv_send(gnutls_session_t s, const char *line)
{
	return gnutls_record_send(s, line, strlen(line)) ==
	    (ssize_t)strlen(line) ? 0 : -1;
}

struct served {
	int		 r;		/* tls_handshake()'s result */
	char		 err[256];
	struct tls_info	 ti;
	int		 nonblock;	/* an fd was left non-blocking */
	char		 bye[16];	/* what the client said after */
};

/*
 * Runs one connection: the client in a thread, tls_handshake() here.
 * Over a socketpair, or over two pipes as in stdio mode.
 */
static void
serve(struct tls_server *srv, struct client *c, int pipes, int timeout,
    struct served *sv)
{
	gnutls_session_t s;
	pthread_t th;
	int fds[2], c2s[2], s2c[2], rfd, wfd;

	memset(sv, 0, sizeof(*sv));
	if (pipes) {
		CU_ASSERT_FATAL(pipe(c2s) == 0 && pipe(s2c) == 0);
		rfd = c2s[0];
		wfd = s2c[1];
		c->rfd = s2c[0];
		c->wfd = c2s[1];
	} else {
		CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
		rfd = wfd = fds[0];
		c->rfd = c->wfd = fds[1];
	}
	/* A hang is a failure, not a stuck test run. */
	alarm(60);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, client_main, c) == 0);
	sv->r = tls_handshake(srv, rfd, wfd, timeout, &s, sv->err,
	    sizeof(sv->err));
	sv->nonblock = (fcntl(rfd, F_GETFL) & O_NONBLOCK) != 0 ||
	    (fcntl(wfd, F_GETFL) & O_NONBLOCK) != 0;
	if (sv->r == 0) {
		CU_ASSERT_EQUAL(tls_session_info(s, &sv->ti), 0);
		CU_ASSERT_EQUAL(srv_send(s, "hello\n"), 0);
		if (c->hold)
			CU_ASSERT_EQUAL(srv_send(s, "again\n"), 0);
		(void)tls_line(s, sv->bye, sizeof(sv->bye));
		tls_session_free(&s, 1);
		CU_ASSERT_PTR_NULL(s);
	} else
		CU_ASSERT_PTR_NULL(s);
	(void)close(rfd);
	if (wfd != rfd)
		(void)close(wfd);
	CU_ASSERT_EQUAL(pthread_join(th, NULL), 0);
	alarm(0);
}

static void
client_done(struct client *c)
{
	gnutls_free(c->data.data);
	c->data.data = NULL;
}

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
		srv = server(rows[i].cert, rows[i].key, rows[i].chain,
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

	srv = server("mx.pem", "mx.key", NULL, NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	CU_ASSERT_EQUAL(tls_server_describe(srv, buf, sizeof(buf)), 0);
	TU_CHECK(strncmp(buf, "subject CN=mx.test, expires 20", 30) == 0 &&
	    strstr(buf, " UTC") != NULL, "got \"%s\"", buf);
	tls_server_unref(&srv);

	/* An expired certificate still loads, but says so. */
	srv = server("old.pem", "old.key", NULL, NULL, 0, NULL, err,
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
	struct client c;
	struct served sv;
	char err[512], want[TLS_DESC_MAX];

	srv = server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);

	memset(&c, 0, sizeof(c));
	serve(srv, &c, 0, 5000, &sv);
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
	client_done(&c);

	/* TLS 1.2 still works, with an ECDHE suite. */
	memset(&c, 0, sizeof(c));
	c.priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == 0, "TLS 1.2 handshake: %s", sv.err);
	CU_ASSERT_STRING_EQUAL(sv.ti.version, "TLS1.2");
	TU_CHECK(strncmp(sv.ti.cipher, "TLS_ECDHE_", 10) == 0,
	    "cipher: got \"%s\"", sv.ti.cipher);
	TU_CHECK(strncmp(sv.ti.desc, "TLS1.2 with cipher TLS_ECDHE_", 29) == 0,
	    "desc: got \"%s\"", sv.ti.desc);
	client_done(&c);

	/* Stdio mode: two pipes instead of one socket. */
	memset(&c, 0, sizeof(c));
	serve(srv, &c, 1, 5000, &sv);
	TU_CHECK(sv.r == 0, "handshake over pipes: %s", sv.err);
	CU_ASSERT_STRING_EQUAL(c.got, "hello\n");
	CU_ASSERT_STRING_EQUAL(sv.bye, "bye\n");
	CU_ASSERT_EQUAL(sv.nonblock, 0);
	client_done(&c);
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
	struct client c;
	struct served sv;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		srv = server("mx.pem", "mx.key", "inter.pem", rows[i].server,
		    0, NULL, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
		memset(&c, 0, sizeof(c));
		c.priority = rows[i].client;
		serve(srv, &c, 0, 5000, &sv);
		if (rows[i].ok)
			TU_CHECK(sv.r == 0, "row %zu: %s", i, sv.err);
		else
			TU_CHECK(sv.r == -1 && strncmp(sv.err,
			    "TLS handshake failed: ", 22) == 0,
			    "row %zu: got %d \"%s\"", i, sv.r, sv.err);
		client_done(&c);
		tls_server_unref(&srv);
	}
}

static void
test_bad_clients(void)
{
	struct tls_server *srv;
	struct client c;
	struct served sv;
	char err[512];

	srv = server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);

	/* Plain SMTP where a ClientHello belongs. */
	memset(&c, 0, sizeof(c));
	c.raw = "EHLO client.example\r\nMAIL FROM:<a@b>\r\n";
	serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == -1 && strncmp(sv.err, "TLS handshake failed: ",
	    22) == 0, "garbage: got %d \"%s\"", sv.r, sv.err);
	CU_ASSERT_EQUAL(sv.nonblock, 0);

	/* Hangs up at once. */
	memset(&c, 0, sizeof(c));
	c.raw = "";
	serve(srv, &c, 0, 5000, &sv);
	TU_CHECK(sv.r == -1 && strncmp(sv.err, "TLS handshake failed: ",
	    22) == 0, "hang-up: got %d \"%s\"", sv.r, sv.err);

	/* Says nothing: the deadline ends it. */
	memset(&c, 0, sizeof(c));
	c.silent = 1;
	serve(srv, &c, 0, 200, &sv);
	TU_CHECK(sv.r == -1 && strcmp(sv.err, "TLS handshake timed out") == 0,
	    "silent: got %d \"%s\"", sv.r, sv.err);
	CU_ASSERT_EQUAL(sv.nonblock, 0);

	/* The same over pipes. */
	memset(&c, 0, sizeof(c));
	c.silent = 1;
	serve(srv, &c, 1, 200, &sv);
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
	struct client c;
	struct served sv;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		srv = server(rows[i].cert, "mx.key", rows[i].chain, NULL, 0,
		    NULL, err, sizeof(err));
		CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
		memset(&c, 0, sizeof(c));
		serve(srv, &c, 0, 5000, &sv);
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
			TU_CHECK(sv.r == -1 && (strstr(sv.err, "alert") != NULL ||
			    strstr(sv.err, "Broken pipe") != NULL),
			    "row %zu: server got %d \"%s\"", i, sv.r, sv.err);
		}
		client_done(&c);
		tls_server_unref(&srv);
	}
}

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
	struct client c;
	struct served sv;
	char err[512];
	size_t i, j;

	srv = server("mx.pem", "mx.key", "inter.pem", NULL, 0,
	    "client-ca.pem", err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.cert = rows[i].cert;
		c.key = rows[i].key;
		serve(srv, &c, 0, 5000, &sv);
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
		client_done(&c);
	}
	/* alice's subject and issuer in full. */
	memset(&c, 0, sizeof(c));
	c.cert = "alice.pem";
	c.key = "alice.key";
	serve(srv, &c, 0, 5000, &sv);
	CU_ASSERT_STRING_EQUAL(sv.ti.client_subject, "CN=alice,O=Example");
	CU_ASSERT_STRING_EQUAL(sv.ti.client_issuer, "CN=Test Client CA");
	CU_ASSERT_STRING_EQUAL(sv.ti.client_error, "");
	client_done(&c);
	tls_server_unref(&srv);

	/* Without tls.client_ca nobody is asked for a certificate. */
	srv = server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	memset(&c, 0, sizeof(c));
	c.cert = "alice.pem";
	c.key = "alice.key";
	serve(srv, &c, 0, 5000, &sv);
	CU_ASSERT_EQUAL(sv.r, 0);
	CU_ASSERT_EQUAL(sv.ti.client_cert, 0);
	CU_ASSERT_EQUAL(sv.ti.client_verified, 0);
	client_done(&c);
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
	struct client c1, c2;
	struct served sv;
	char err[512];
	size_t i;
	int tickets;

	for (tickets = 0; tickets <= 1; tickets++)
		for (i = 0; i < 2; i++) {
			srv = server("mx.pem", "mx.key", "inter.pem", NULL,
			    tickets, NULL, err, sizeof(err));
			CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
			memset(&c1, 0, sizeof(c1));
			c1.priority = prios[i];
			serve(srv, &c1, 0, 5000, &sv);
			CU_ASSERT_EQUAL(sv.r, 0);
			CU_ASSERT_EQUAL(sv.ti.resumed, 0);

			memset(&c2, 0, sizeof(c2));
			c2.priority = prios[i];
			c2.resume = c1.data;
			serve(srv, &c2, 0, 5000, &sv);
			CU_ASSERT_EQUAL(sv.r, 0);
			TU_CHECK(sv.ti.resumed == tickets &&
			    c2.resumed == tickets, "tickets %d, %s: server "
			    "resumed %d, client %d", tickets, prios[i],
			    sv.ti.resumed, c2.resumed);
			client_done(&c1);
			client_done(&c2);
			tls_server_unref(&srv);
		}
}

struct held {
	struct client	 c;
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
	struct client c;
	struct served sv;
	char err[512];
	size_t i;

	/* path() gives the same buffer each time. */
	snprintf(cert, sizeof(cert), "%s", path("mx.pem"));
	snprintf(key, sizeof(key), "%s", path("mx.key"));
	snprintf(chain, sizeof(chain), "%s", path("inter.pem"));
	snprintf(cert2, sizeof(cert2), "%s", path("mx2.pem"));
	snprintf(key2, sizeof(key2), "%s", path("mx2.key"));
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
		serve(srv, &c, 0, 5000, &sv);
		TU_CHECK(sv.r == 0 && c.handshake == 0, "%s: %s", cases[i].sni,
		    sv.err);
		TU_CHECK(strcmp(c.server_cn, cases[i].cn) == 0,
		    "%s: got %s, want %s", cases[i].sni, c.server_cn,
		    cases[i].cn);
		client_done(&c);
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
	struct client c;
	struct served sv;
	char err[512], line[32];
	int fds[2];

	tls_server_install(NULL);
	CU_ASSERT_PTR_NULL(tls_server_current());
	srv = server("mx.pem", "mx.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	tls_server_install(srv);

	memset(&h, 0, sizeof(h));
	h.c.hold = 1;
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	h.fd = fds[0];
	h.c.rfd = h.c.wfd = fds[1];
	alarm(60);
	CU_ASSERT_FATAL(pthread_create(&h.th, NULL, client_main, &h.c) == 0);
	cur = tls_server_current();
	CU_ASSERT_PTR_EQUAL(cur, srv);
	CU_ASSERT_EQUAL(tls_handshake(cur, h.fd, h.fd, 5000, &h.s, err,
	    sizeof(err)), 0);
	tls_server_unref(&cur);
	CU_ASSERT_EQUAL(srv_send(h.s, "hello\n"), 0);

	/* The reload: the old server's last outside reference goes. */
	srv = server("mx2.pem", "mx2.key", "inter.pem", NULL, 0, NULL, err,
	    sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	tls_server_install(srv);

	CU_ASSERT_EQUAL(srv_send(h.s, "again\n"), 0);
	CU_ASSERT_EQUAL(tls_line(h.s, line, sizeof(line)), 0);
	CU_ASSERT_STRING_EQUAL(line, "bye\n");
	tls_session_free(&h.s, 1);
	(void)close(h.fd);
	CU_ASSERT_EQUAL(pthread_join(h.th, NULL), 0);
	alarm(0);
	CU_ASSERT_STRING_EQUAL(h.c.got, "hello\nagain\n");
	CU_ASSERT_STRING_EQUAL(h.c.server_cn, "mx.test");
	client_done(&h.c);

	cur = tls_server_current();
	memset(&c, 0, sizeof(c));
	serve(cur, &c, 0, 5000, &sv);
	CU_ASSERT_EQUAL(sv.r, 0);
	CU_ASSERT_STRING_EQUAL(c.server_cn, "mx2.test");
	client_done(&c);
	tls_server_unref(&cur);
	tls_server_install(NULL);
	CU_ASSERT_PTR_NULL(tls_server_current());
}

int
suite_tls(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("tls", setup, teardown)) == NULL)
		return -1;
	if (CU_add_test(s, "load", test_load) == NULL ||
	    CU_add_test(s, "describe", test_describe) == NULL ||
	    CU_add_test(s, "handshake", test_handshake) == NULL ||
	    CU_add_test(s, "protocol versions", test_versions) == NULL ||
	    CU_add_test(s, "bad clients", test_bad_clients) == NULL ||
	    CU_add_test(s, "chain", test_chain) == NULL ||
	    CU_add_test(s, "client certificates", test_client_certs) == NULL ||
	    CU_add_test(s, "session tickets", test_tickets) == NULL ||
	    CU_add_test(s, "reload", test_reload) == NULL ||
	    CU_add_test(s, "certificates by name", test_names) == NULL)
		return -1;
	return 0;
}
