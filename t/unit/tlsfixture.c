/*
 * The TLS unit tests' fixture: throwaway certificates made with GnuTLS
 * when a suite starts, and one connection served by tls_handshake() to
 * a GnuTLS client in a thread.
 */
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
#include "tlsfixture.h"

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

char *
tf_path(const char *name)
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
	r = tu_write_file(tf_path(crtname), d.data, d.size, 0644);
	gnutls_free(d.data);
	if (r == -1 || keyname == NULL)
		return r;
	if (gnutls_x509_privkey_export2(p->key, GNUTLS_X509_FMT_PEM, &d) < 0)
		return -1;
	r = tu_write_file(tf_path(keyname), d.data, d.size, 0600);
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

	if ((fd = open(tf_path(a), O_RDONLY)) == -1)
		return -1;
	r = read(fd, buf, sizeof(buf));
	(void)close(fd);
	if (r <= 0)
		return -1;
	n = (size_t)r;
	if ((fd = open(tf_path(b), O_RDONLY)) == -1)
		return -1;
	r = read(fd, buf + n, sizeof(buf) - n);
	(void)close(fd);
	if (r <= 0)
		return -1;
	n += (size_t)r;
	return tu_write_file(tf_path(out), buf, n, 0644);
}

int
tf_setup(void)
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
	    tu_write_file(tf_path("junk.pem"), "not a certificate\n",
	    (size_t)-1, 0644) == -1)
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

int
tf_teardown(void)
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

struct tls_server *
tf_server(const char *cert, const char *key, const char *chain,
    const char *prio, int tickets, const char *ca, char *err, size_t errlen)
{
	struct tls_conf c;

	memset(&c, 0, sizeof(c));
	c.certificate = cert != NULL ? tf_path(cert) : NULL;
	c.key = key != NULL ? tf_path(key) : NULL;
	c.chain = chain != NULL ? tf_path(chain) : NULL;
	c.priority = prio;
	c.tickets = tickets;
	c.client_ca = ca != NULL ? tf_path(ca) : NULL;
	err[0] = '\0';
	return tls_server_new(&c, err, errlen);
}

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
int
tf_line(gnutls_session_t s, char *buf, size_t len)
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

void *
tf_client_main(void *arg)
{
	struct tf_client *c = arg;
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
	    gnutls_certificate_set_x509_trust_file(cred, tf_path("root.pem"),
	    GNUTLS_X509_FMT_PEM) <= 0 ||
	    (c->cert != NULL && gnutls_certificate_set_x509_key_file(cred,
	    tf_path(c->cert), tf_path(c->key), GNUTLS_X509_FMT_PEM) < 0) ||
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
	if (tf_line(s, c->got, sizeof(c->got)) == -1)
		goto out;
	if (c->hold && tf_line(s, buf, sizeof(buf)) == 0)
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
int
tf_send(gnutls_session_t s, const char *line)
{
	return gnutls_record_send(s, line, strlen(line)) ==
	    (ssize_t)strlen(line) ? 0 : -1;
}

/*
 * Runs one connection: the client in a thread, tls_handshake() here.
 * Over a socketpair, or over two pipes as in stdio mode.
 */
void
tf_serve(struct tls_server *srv, struct tf_client *c, int pipes, int timeout,
    struct tf_served *sv)
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
	CU_ASSERT_FATAL(pthread_create(&th, NULL, tf_client_main, c) == 0);
	sv->r = tls_handshake(srv, rfd, wfd, timeout, &s, sv->err,
	    sizeof(sv->err));
	sv->nonblock = (fcntl(rfd, F_GETFL) & O_NONBLOCK) != 0 ||
	    (fcntl(wfd, F_GETFL) & O_NONBLOCK) != 0;
	if (sv->r == 0) {
		CU_ASSERT_EQUAL(tls_session_info(s, &sv->ti), 0);
		CU_ASSERT_EQUAL(tf_send(s, "hello\n"), 0);
		if (c->hold)
			CU_ASSERT_EQUAL(tf_send(s, "again\n"), 0);
		(void)tf_line(s, sv->bye, sizeof(sv->bye));
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

void
tf_client_done(struct tf_client *c)
{
	gnutls_free(c->data.data);
	c->data.data = NULL;
}
