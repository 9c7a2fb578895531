/*
 * tls: GnuTLS server credentials, handshakes and session descriptions.
 * See tls.h.
 *
 * Sessions get our own transport functions (read/write, or send with
 * MSG_NOSIGNAL on sockets) so that the same code works on a socket and
 * on the two pipe ends of stdio mode.
 */
#include "config.h"

#include <assert.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/net.h"
#include "lib/refcnt.h"
#include "lib/str.h"
#include "tls.h"
#include "tlscerts.h"

/* What a session made here carries (gnutls_session_get_ptr()). */
struct tls_conn {
	struct tls_server *srv;		/* keeps the credentials alive */
	int		 rfd, wfd;
	int		 err;		/* errno of the last failed I/O */
};

struct sni_name {
	char		*name;		/* lower case; "*.example.net" */
	int		 cred;		/* in sni_cred */
};

struct tls_server {
	int		 refs;		/* atomic */
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_datum_t	 ticket_key;	/* data NULL: no tickets */
	int		 client_ca;	/* ask for client certificates */
	char		 subject[TLS_DN_MAX];
	time_t		 expires;
	char		 warning[1200];	/* "" when none */
	/* tls.certificates: a name, and the credentials it selects. */
	gnutls_certificate_credentials_t *sni_cred;
	int		 nsni_cred;
	struct sni_name	*names;		/* sorted by name */
	size_t		 nnames;
};

static void	server_free(struct tls_server *);
static void	own_cert_facts(struct tls_server *);
static ssize_t	tls_pull(gnutls_transport_ptr_t, void *, size_t);
static ssize_t	tls_push(gnutls_transport_ptr_t, const void *, size_t);
static int	tls_pull_timeout(gnutls_transport_ptr_t, unsigned int);
static int	set_nonblock(int, int *);
static void	handshake_error(gnutls_session_t, struct tls_conn *, int,
		    char *, size_t);
static void	dn_string(gnutls_x509_crt_t, int, char *, size_t);
static void	client_cert_info(gnutls_session_t, struct tls_info *);

static void
server_free(struct tls_server *srv)
{
	size_t i;
	int j;

	if (srv->cred != NULL)
		gnutls_certificate_free_credentials(srv->cred);
	for (j = 0; j < srv->nsni_cred; j++)
		gnutls_certificate_free_credentials(srv->sni_cred[j]);
	free(srv->sni_cred);
	for (i = 0; i < srv->nnames; i++)
		free(srv->names[i].name);
	free(srv->names);
	if (srv->prio != NULL)
		gnutls_priority_deinit(srv->prio);
	if (srv->ticket_key.data != NULL) {
		str_wipe(srv->ticket_key.data, srv->ticket_key.size);
		gnutls_free(srv->ticket_key.data);
	}
	free(srv);
}

/* The subject and expiry of the certificate we serve. */
static void
own_cert_facts(struct tls_server *srv)
{
	gnutls_datum_t der;
	gnutls_x509_crt_t crt;

	if (gnutls_certificate_get_crt_raw(srv->cred, 0, 0, &der) < 0)
		return;
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) == 0) {
		dn_string(crt, 0, srv->subject, sizeof(srv->subject));
		srv->expires = gnutls_x509_crt_get_expiration_time(crt);
	}
	gnutls_x509_crt_deinit(crt);
}

/*
 * Credentials with the certificates of set whose bits are in mask (the
 * default is bit 0), in the order of the config: of those GnuTLS takes
 * the first whose key the client's signature algorithms allow.
 */
static int
make_cred(const struct tls_conf *conf, const struct tls_certset *set,
    uint64_t mask, gnutls_certificate_credentials_t *credp, char *err,
    size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	int i, r;

	*credp = NULL;
	if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		snprintf(err, errlen, "TLS credentials: %s",
		    gnutls_strerror(r));
		return -1;
	}
	for (i = 0; i < set->n; i++) {
		if ((mask & ((uint64_t)1 << i)) == 0)
			continue;
		if (conf->add_key != NULL) {
			if (conf->add_key(cred, &set->ent[i].pem, err,
			    errlen) == -1)
				goto fail;
		} else if ((r = gnutls_certificate_set_x509_key_mem2(cred,
		    &set->ent[i].pem, &set->ent[i].key, GNUTLS_X509_FMT_PEM,
		    NULL, 0)) < 0) {
			snprintf(err, errlen, "TLS key: %s",
			    gnutls_strerror(r));
			goto fail;
		}
	}
	/* RFC 7919 groups for DHE, should a client want plain DHE. */
	(void)gnutls_certificate_set_known_dh_params(cred,
	    GNUTLS_SEC_PARAM_MEDIUM);
	if (conf->client_ca != NULL) {
		r = gnutls_certificate_set_x509_trust_file(cred,
		    conf->client_ca, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			snprintf(err, errlen, "tls.client_ca %s: %s",
			    conf->client_ca, r == 0 ? "no certificates" :
			    gnutls_strerror(r));
			goto fail;
		}
	}
	*credp = cred;
	return 0;
fail:
	gnutls_certificate_free_credentials(cred);
	return -1;
}

struct name_pair {
	const char	*name;
	int		 ent;
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct name_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : x->ent - y->ent;
}

static int
name_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sni_name *)elem)->name);
}

/*
 * The names of tls.certificates, each with credentials holding every
 * certificate that has the name (an RSA and an ECDSA one, say); names
 * with the same certificates share them.
 */
static int
build_sni(struct tls_server *srv, const struct tls_conf *conf,
    const struct tls_certset *set, char *err, size_t errlen)
{
	struct name_pair *pairs;
	uint64_t *masks = NULL, mask;
	size_t np = 0, i, k;
	int e, j, c, rc = -1;

	for (e = 1; e < set->n; e++)
		np += (size_t)set->ent[e].nnames;
	if (np == 0)
		return 0;
	if ((pairs = calloc(np, sizeof(*pairs))) == NULL ||
	    (masks = calloc(np, sizeof(*masks))) == NULL ||
	    (srv->sni_cred = calloc(np,
	    sizeof(gnutls_certificate_credentials_t))) == NULL ||
	    (srv->names = calloc(np, sizeof(*srv->names))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (np = 0, e = 1; e < set->n; e++)
		for (j = 0; j < set->ent[e].nnames; j++) {
			pairs[np].name = set->ent[e].names[j];
			pairs[np++].ent = e;
		}
	qsort(pairs, np, sizeof(*pairs), pair_cmp);
	for (i = 0; i < np; i = k) {
		mask = 0;
		for (k = i; k < np && strcmp(pairs[k].name,
		    pairs[i].name) == 0; k++)
			mask |= (uint64_t)1 << pairs[k].ent;
		for (c = 0; c < srv->nsni_cred && masks[c] != mask; c++)
			;
		if (c == srv->nsni_cred) {
			if (make_cred(conf, set, mask, &srv->sni_cred[c], err,
			    errlen) == -1)
				goto out;
			masks[c] = mask;
			srv->nsni_cred++;
		}
		if ((srv->names[srv->nnames].name = strdup(pairs[i].name)) ==
		    NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		srv->names[srv->nnames++].cred = c;
	}
	rc = 0;
out:
	free(pairs);
	free(masks);
	return rc;
}

/*
 * After the ClientHello: the certificates for the name the client asked
 * for, by the name itself, else by a wildcard for its first label; the
 * default ones for any other name or none.
 */
static int
sni_hook(gnutls_session_t s)
{
	const struct tls_conn *c = gnutls_session_get_ptr(s);
	const struct tls_server *srv = c->srv;
	const struct sni_name *n;
	char name[TLSCONF_NAME_MAX + 3], *dot;
	size_t len = sizeof(name) - 1, i;
	unsigned int type;

	if (gnutls_server_name_get(s, name + 1, &len, &type, 0) < 0 ||
	    type != GNUTLS_NAME_DNS || len == 0 || len >= sizeof(name) - 1)
		return 0;
	name[len + 1] = '\0';
	if (name[len] == '.')
		name[len] = '\0';
	for (i = 1; name[i] != '\0'; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	n = bsearch(name + 1, srv->names, srv->nnames, sizeof(*n), name_cmp);
	if (n == NULL && (dot = strchr(name + 1, '.')) != NULL &&
	    dot != name + 1) {
		/* "*" just before ".example.net". */
		dot[-1] = '*';
		n = bsearch(dot - 1, srv->names, srv->nnames, sizeof(*n),
		    name_cmp);
	}
	if (n == NULL)
		return 0;
	return gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    srv->sni_cred[n->cred]);
}

struct tls_server *
tls_server_new(const struct tls_conf *conf, char *err, size_t errlen)
{
	struct tls_server *srv;
	struct tls_certset *set = NULL;
	const char *prio, *errpos = NULL;
	int r;

	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (set = calloc(1, sizeof(*set))) == NULL) {
		free(srv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->refs = 1;
	/* Certificates and keys from elsewhere, or read here. */
	if ((conf->fetch != NULL ? conf->fetch(set, err, errlen) :
	    tlscerts_read(conf, set, srv->warning, sizeof(srv->warning), err,
	    errlen)) == -1)
		goto fail;
	if (make_cred(conf, set, 1, &srv->cred, err, errlen) == -1 ||
	    build_sni(srv, conf, set, err, errlen) == -1)
		goto fail;
	own_cert_facts(srv);
	srv->client_ca = conf->client_ca != NULL;
	prio = conf->priority != NULL ? conf->priority : TLS_DEFAULT_PRIORITY;
	if ((r = gnutls_priority_init(&srv->prio, prio, &errpos)) < 0) {
		srv->prio = NULL;
		snprintf(err, errlen, "tls.priority \"%.100s\": %s%s%.40s%s",
		    prio, gnutls_strerror(r), errpos != NULL ? " at \"" : "",
		    errpos != NULL ? errpos : "", errpos != NULL ? "\"" : "");
		goto fail;
	}
	if (conf->tickets &&
	    (r = gnutls_session_ticket_key_generate(&srv->ticket_key)) < 0) {
		srv->ticket_key.data = NULL;
		snprintf(err, errlen, "session ticket key: %s",
		    gnutls_strerror(r));
		goto fail;
	}
	tlscerts_free(set);
	free(set);
	return srv;
fail:
	tlscerts_free(set);
	free(set);
	server_free(srv);
	return NULL;
}

size_t
tls_server_names(const struct tls_server *srv)
{
	return srv->nnames;
}

struct tls_server *
tls_server_ref(struct tls_server *srv)
{
	refcnt_take(&srv->refs);
	return srv;
}

void
tls_server_unref(struct tls_server **sp)
{
	struct tls_server *srv = *sp;

	if (srv == NULL)
		return;
	*sp = NULL;
	if (refcnt_drop(&srv->refs))
		server_free(srv);
}

int
tls_server_describe(const struct tls_server *srv, char *buf, size_t len)
{
	struct tm tm;
	char when[64] = "unknown";
	int expired = srv->expires != 0 && srv->expires != (time_t)-1 &&
	    srv->expires < time(NULL);

	if (srv->expires != 0 && srv->expires != (time_t)-1 &&
	    gmtime_r(&srv->expires, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(buf, len, "subject %s, %s %s", srv->subject[0] != '\0' ?
	    srv->subject : "(unknown)", expired ? "EXPIRED" : "expires", when);
	return expired;
}

const char *
tls_server_warning(const struct tls_server *srv)
{
	return srv->warning;
}

static pthread_mutex_t	 cur_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_server *cur;

struct tls_server *
tls_server_current(void)
{
	struct tls_server *srv;

	pthread_mutex_lock(&cur_mu);
	srv = cur != NULL ? tls_server_ref(cur) : NULL;
	pthread_mutex_unlock(&cur_mu);
	return srv;
}

void
tls_server_install(struct tls_server *srv)
{
	struct tls_server *old;

	pthread_mutex_lock(&cur_mu);
	old = cur;
	cur = srv;
	pthread_mutex_unlock(&cur_mu);
	tls_server_unref(&old);
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
	struct tls_conn *c = p;
	ssize_t r;

	do {
		r = read(c->rfd, buf, n);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && errno != EAGAIN)
		c->err = errno;
	return r;
}

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
	struct tls_conn *c = p;
	ssize_t r;

	/* MSG_NOSIGNAL: a vanished client is an error, not a SIGPIPE. */
	do {
		r = send(c->wfd, buf, n, MSG_NOSIGNAL);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && errno == ENOTSOCK)
		do {
			r = write(c->wfd, buf, n);
		} while (r == -1 && errno == EINTR);
	if (r == -1 && errno != EAGAIN)
		c->err = errno;
	return r;
}

static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	const struct tls_conn *c = p;

	return net_poll_in(c->rfd, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 :
	    ms > INT_MAX ? INT_MAX : (int)ms);
}

/* Sets O_NONBLOCK, keeping the old flags in *old.  0 or -1. */
static int
set_nonblock(int fd, int *old)
{
	if ((*old = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, *old | O_NONBLOCK);
}

static void
handshake_error(gnutls_session_t s, struct tls_conn *c, int r, char *err,
    size_t errlen)
{
	const char *why = NULL;

	/* Say what the client said, or what the system said. */
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED ||
	    r == GNUTLS_E_WARNING_ALERT_RECEIVED)
		why = gnutls_alert_get_name(gnutls_alert_get(s));
	else if ((r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR) &&
	    c->err != 0)
		why = strerror(c->err);
	snprintf(err, errlen, "TLS handshake failed: %s%s%s%s",
	    gnutls_strerror(r), why != NULL ? " (" : "",
	    why != NULL ? why : "", why != NULL ? ")" : "");
}

int
tls_handshake(struct tls_server *srv, int rfd, int wfd, int timeout_ms,
    gnutls_session_t *sessp, char *err, size_t errlen)
{
	gnutls_session_t s = NULL;
	struct tls_conn *c;
	struct pollfd pfd;
	long long deadline = net_now_ms() + (timeout_ms > 0 ? timeout_ms :
	    TLS_HANDSHAKE_TIMEOUT);
	long long left;
	unsigned int flags = GNUTLS_SERVER;
	int r, rold = -1, wold = -1, ok = -1;

	*sessp = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "TLS session: out of memory");
		return -1;
	}
	c->rfd = rfd;
	c->wfd = wfd;
	if (srv->ticket_key.data == NULL)
		flags |= GNUTLS_NO_TICKETS;
	if ((r = gnutls_init(&s, flags)) < 0) {
		snprintf(err, errlen, "TLS session: %s", gnutls_strerror(r));
		free(c);
		return -1;
	}
	if ((r = gnutls_priority_set(s, srv->prio)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    srv->cred)) < 0 ||
	    (srv->ticket_key.data != NULL &&
	    (r = gnutls_session_ticket_enable_server(s,
	    &srv->ticket_key)) < 0)) {
		snprintf(err, errlen, "TLS session: %s", gnutls_strerror(r));
		gnutls_deinit(s);
		free(c);
		return -1;
	}
	if (srv->client_ca)
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
	if (srv->nnames > 0)
		gnutls_handshake_set_post_client_hello_function(s, sni_hook);
	gnutls_transport_set_ptr(s, c);
	gnutls_transport_set_pull_function(s, tls_pull);
	gnutls_transport_set_push_function(s, tls_push);
	gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
	/* The session keeps the credentials alive (tls_session_free()). */
	c->srv = tls_server_ref(srv);
	gnutls_session_set_ptr(s, c);

	if (set_nonblock(rfd, &rold) == -1 ||
	    (wfd != rfd && set_nonblock(wfd, &wold) == -1)) {
		snprintf(err, errlen, "TLS handshake: fcntl: %s",
		    strerror(errno));
		goto out;
	}
	for (;;) {
		r = gnutls_handshake(s);
		if (r == 0) {
			ok = 0;
			break;
		}
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED &&
		    gnutls_error_is_fatal(r)) {
			handshake_error(s, c, r, err, errlen);
			(void)gnutls_alert_send_appropriate(s, r);
			break;
		}
		if ((left = deadline - net_now_ms()) <= 0) {
			snprintf(err, errlen, "TLS handshake timed out");
			break;
		}
		if (r == GNUTLS_E_AGAIN) {
			pfd.fd = gnutls_record_get_direction(s) ? wfd : rfd;
			pfd.events = gnutls_record_get_direction(s) ?
			    POLLOUT : POLLIN;
			r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
			if (r == -1 && errno != EINTR) {
				snprintf(err, errlen, "TLS handshake: poll: %s",
				    strerror(errno));
				break;
			}
		}
	}
out:
	if (rold != -1)
		(void)fcntl(rfd, F_SETFL, rold);
	if (wold != -1)
		(void)fcntl(wfd, F_SETFL, wold);
	if (ok == -1) {
		tls_session_free(&s, 0);
		return -1;
	}
	*sessp = s;
	return 0;
}

void
tls_session_free(gnutls_session_t *sessp, int notify)
{
	struct tls_conn *c;

	if (*sessp == NULL)
		return;
	if (notify)
		(void)gnutls_bye(*sessp, GNUTLS_SHUT_WR);
	c = gnutls_session_get_ptr(*sessp);
	gnutls_deinit(*sessp);
	*sessp = NULL;
	if (c != NULL) {
		tls_server_unref(&c->srv);
		free(c);
	}
}

/* A certificate's subject (or issuer) as an RFC 4514 string. */
static void
dn_string(gnutls_x509_crt_t crt, int issuer, char *buf, size_t len)
{
	gnutls_datum_t dn = { NULL, 0 };
	int r;

	buf[0] = '\0';
	r = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) :
	    gnutls_x509_crt_get_dn3(crt, &dn, 0);
	if (r < 0)
		return;
	/* Certificates are the client's words: keep them printable. */
	str_printable(buf, len, (const char *)dn.data, dn.size);
	gnutls_free(dn.data);
}

static void
client_cert_info(gnutls_session_t s, struct tls_info *ti)
{
	const gnutls_datum_t *peers;
	gnutls_typed_vdata_st vd;
	gnutls_x509_crt_t crt;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char fp[32];
	unsigned int n = 0, status = 0, i;
	size_t fplen = sizeof(fp);
	int r;

	if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
	    (peers = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return;
	ti->client_cert = 1;
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0) {
		dn_string(crt, 0, ti->client_subject,
		    sizeof(ti->client_subject));
		dn_string(crt, 1, ti->client_issuer,
		    sizeof(ti->client_issuer));
		if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp,
		    &fplen) == 0)
			for (i = 0; i < fplen && i < 32; i++)
				snprintf(ti->client_sha256 + 2 * i, 3, "%02x",
				    fp[i]);
	}
	gnutls_x509_crt_deinit(crt);

	/* Against tls.client_ca, and it must be meant for TLS clients. */
	memset(&vd, 0, sizeof(vd));
	vd.type = GNUTLS_DT_KEY_PURPOSE_OID;
	vd.data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT;
	r = gnutls_certificate_verify_peers(s, &vd, 1, &status);
	if (r < 0) {
		snprintf(ti->client_error, sizeof(ti->client_error), "%s",
		    gnutls_strerror(r));
		return;
	}
	if (status == 0) {
		ti->client_verified = 1;
		return;
	}
	if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) == 0) {
		str_printable(ti->client_error, sizeof(ti->client_error),
		    (const char *)out.data, out.size);
		gnutls_free(out.data);
	} else
		snprintf(ti->client_error, sizeof(ti->client_error),
		    "not trusted (status 0x%x)", status);
}

int
tls_session_info(gnutls_session_t s, struct tls_info *ti)
{
	const char *v, *c = NULL, *g;
	gnutls_cipher_algorithm_t ca;

	memset(ti, 0, sizeof(*ti));
	if (s == NULL || (v = gnutls_protocol_get_name(
	    gnutls_protocol_get_version(s))) == NULL)
		return -1;
	str_lcpy(ti->version, v, sizeof(ti->version));
	ca = gnutls_cipher_get(s);
	ti->bits = (unsigned int)gnutls_cipher_get_key_size(ca) * 8;
#if GNUTLS_VERSION_NUMBER >= 0x030704
	c = gnutls_ciphersuite_get(s);	/* the IANA name */
#endif
	if (c == NULL)
		c = gnutls_cipher_suite_get_name(gnutls_kx_get(s), ca,
		    gnutls_mac_get(s));
	if (c == NULL)
		c = gnutls_cipher_get_name(ca);
	str_lcpy(ti->cipher, c != NULL ? c : "unknown", sizeof(ti->cipher));
	if ((g = gnutls_group_get_name(gnutls_group_get(s))) != NULL)
		str_lcpy(ti->group, g, sizeof(ti->group));
	snprintf(ti->desc, sizeof(ti->desc), "%s with cipher %s (%u/%u bits)",
	    ti->version, ti->cipher, ti->bits, ti->bits);
	ti->resumed = gnutls_session_is_resumed(s) != 0;
	client_cert_info(s, ti);
	return 0;
}
