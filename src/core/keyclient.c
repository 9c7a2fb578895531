/*
 * keyclient: the front's side of the key process -- TLS key operations
 * and password checks sent over the socket pairs.  See keyproc.h.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "auth/secrets.h"
#include "keyproc.h"
#include "keyproto.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/net.h"
#include "tls.h"
#include "tlscerts.h"

struct kp_chan {
	pthread_mutex_t	 mu;
	int		 fd;
	uint64_t	 seq;
};

static struct kp_chan	 chans[KEYPROC_CHANNELS];
static int		 nchans;
static unsigned int	 next_chan;
static int		 any_clear_cache;
static int		 available_cache;
static long long	 any_clear_at;	/* ms; 0: never asked */

/* Sends q and waits for its answer in a.  0, or -1 (no answer). */
static int
ask(struct kp_req *q, struct kp_resp *a)
{
	struct kp_chan *c = NULL;
	struct pollfd pfd;
	long long deadline;
	unsigned int first;
	ssize_t n;
	int i, r, rc = -1;

	if (nchans == 0)
		return -1;
	first = __atomic_fetch_add(&next_chan, 1, __ATOMIC_RELAXED) %
	    (unsigned int)nchans;
	for (i = 0; i < nchans && c == NULL; i++)
		if (pthread_mutex_trylock(&chans[(first + (unsigned int)i) %
		    (unsigned int)nchans].mu) == 0)
			c = &chans[(first + (unsigned int)i) %
			    (unsigned int)nchans];
	if (c == NULL) {
		c = &chans[first];
		pthread_mutex_lock(&c->mu);
	}
	q->seq = ++c->seq;
	while ((n = send(c->fd, q, sizeof(*q), MSG_NOSIGNAL)) == -1 &&
	    errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*q)) {
		log_err("key process: cannot send a request: %s",
		    n == -1 ? strerror(errno) : "short");
		goto out;
	}
	deadline = net_now_ms() + KEYPROC_TIMEOUT;
	for (;;) {
		long long left = deadline - net_now_ms();

		if (left <= 0) {
			log_err("key process: no answer in %d s",
			    KEYPROC_TIMEOUT / 1000);
			goto out;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, (int)left)) == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		n = recv(c->fd, a, sizeof(*a), 0);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			log_err("key process: channel closed");
			goto out;
		}
		/* An answer to a request whose asker gave up: dropped. */
		if ((size_t)n == sizeof(*a) && a->seq == q->seq)
			break;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&c->mu);
	str_wipe(q, sizeof(*q));
	return rc;
}

static enum secrets_status
auth_ask(struct kp_req *q)
{
	struct kp_resp *a;
	enum secrets_status st = SECRETS_TEMPFAIL;

	if ((a = malloc(sizeof(*a))) == NULL) {
		str_wipe(q, sizeof(*q));
		return SECRETS_TEMPFAIL;
	}
	if (ask(q, a) == 0) {
		if (a->status >= SECRETS_OK && a->status <= SECRETS_NO_CLEAR)
			st = (enum secrets_status)a->status;
		__atomic_store_n(&any_clear_cache, a->any_clear != 0,
		    __ATOMIC_RELAXED);
		__atomic_store_n(&available_cache, st != SECRETS_TEMPFAIL,
		    __ATOMIC_RELAXED);
		__atomic_store_n(&any_clear_at, net_now_ms(), __ATOMIC_RELAXED);
	}
	free(a);
	return st;
}

/* A request for user, or NULL; an unusable name is sent as "". */
static struct kp_req *
auth_req(enum kp_op op, const char *user)
{
	struct kp_req *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->op = op;
	if (user != NULL && str_lcpy(q->user, user, sizeof(q->user)) >=
	    sizeof(q->user))
		q->user[0] = '\0';
	return q;
}

static enum secrets_status
remote_verify(const char *user, const void *pass, size_t passlen)
{
	struct kp_req *q;
	enum secrets_status st;

	if ((q = auth_req(KP_VERIFY, user)) == NULL)
		return SECRETS_TEMPFAIL;
	/* Still one hash in the key process, so that it takes as long. */
	if (passlen > SECRETS_PASS_MAX)
		q->flags = KP_F_BAD;
	else {
		memcpy(q->data, pass, passlen);
		q->len = (uint32_t)passlen;
	}
	st = auth_ask(q);
	free(q);
	return st;
}

static enum secrets_status
remote_cram(const char *user, const void *challenge, size_t chlen,
    const unsigned char digest[16])
{
	struct kp_req *q;
	enum secrets_status st;

	if (chlen > KP_DATA_MAX)
		return SECRETS_FAIL;
	if ((q = auth_req(KP_CRAM, user)) == NULL)
		return SECRETS_TEMPFAIL;
	memcpy(q->data, challenge, chlen);
	q->len = (uint32_t)chlen;
	memcpy(q->digest, digest, sizeof(q->digest));
	st = auth_ask(q);
	free(q);
	return st;
}

/* Asked again once a second at most: EHLO wants it every time. */
static int
remote_any_clear(void)
{
	struct kp_req *q;

	if (net_now_ms() - __atomic_load_n(&any_clear_at, __ATOMIC_RELAXED) >
	    1000 && (q = auth_req(KP_INFO, NULL)) != NULL) {
		(void)auth_ask(q);
		free(q);
	}
	return __atomic_load_n(&any_clear_cache, __ATOMIC_RELAXED);
}

/*
 * Whether the key process has a table.  Asked each time while it has
 * none, so that a file that appears is used at once, as in one process.
 */
static int
remote_available(void)
{
	struct kp_req *q;

	if ((!__atomic_load_n(&available_cache, __ATOMIC_RELAXED) ||
	    net_now_ms() - __atomic_load_n(&any_clear_at, __ATOMIC_RELAXED) >
	    1000) && (q = auth_req(KP_INFO, NULL)) != NULL) {
		(void)auth_ask(q);
		free(q);
	}
	return __atomic_load_n(&available_cache, __ATOMIC_RELAXED);
}

static const struct secrets_remote remote = {
	remote_verify, remote_cram, remote_any_clear, remote_available
};

int
keyproc_client(const int *fds, int n)
{
	int i;

	if (n > KEYPROC_CHANNELS)
		n = KEYPROC_CHANNELS;
	for (i = 0; i < n; i++) {
		pthread_mutex_init(&chans[i].mu, NULL);
		chans[i].fd = fds[i];
		/* Distinct from what an earlier front asked. */
		chans[i].seq = (uint64_t)getpid() << 32;
	}
	nchans = n;
	secrets_set_remote(&remote);
	return 0;
}

/* What a key in the front knows: which key, and of what kind. */
struct ext_key {
	unsigned char	 id[KP_ID_MAX];
	size_t		 idlen;
	gnutls_pk_algorithm_t pk;
	unsigned int	 bits;
};

static int
ext_op(enum kp_op op, const struct ext_key *k, gnutls_sign_algorithm_t algo,
    unsigned int flags, const gnutls_datum_t *in, gnutls_datum_t *out)
{
	struct kp_req *q;
	struct kp_resp *a;
	int rc = GNUTLS_E_PK_SIGN_FAILED;

	out->data = NULL;
	out->size = 0;
	if (in->size > KP_DATA_MAX)
		return GNUTLS_E_PK_SIGN_FAILED;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	if ((a = malloc(sizeof(*a))) == NULL) {
		free(q);
		return GNUTLS_E_MEMORY_ERROR;
	}
	q->op = op;
	q->algo = (uint32_t)algo;
	q->flags = flags;
	memcpy(q->id, k->id, k->idlen);
	q->idlen = (uint32_t)k->idlen;
	memcpy(q->data, in->data, in->size);
	q->len = in->size;
	if (ask(q, a) == 0 && a->status == 0 &&
	    a->len <= KP_DATA_MAX && a->len > 0) {
		if ((out->data = gnutls_malloc(a->len)) == NULL)
			rc = GNUTLS_E_MEMORY_ERROR;
		else {
			memcpy(out->data, a->data, a->len);
			out->size = a->len;
			rc = 0;
		}
	} else if (op == KP_DECRYPT)
		rc = GNUTLS_E_DECRYPTION_FAILED;
	str_wipe(a, sizeof(*a));
	free(a);
	free(q);
	return rc;
}

static int
ext_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	(void)key;
	return ext_op(KP_SIGN_DATA, userdata, algo, flags, data, sig);
}

static int
ext_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	(void)key;
	return ext_op(KP_SIGN_HASH, userdata, algo, flags, hash, sig);
}

static int
ext_decrypt(gnutls_privkey_t key, void *userdata, const gnutls_datum_t *ct,
    gnutls_datum_t *pt)
{
	(void)key;
	return ext_op(KP_DECRYPT, userdata, GNUTLS_SIGN_UNKNOWN, 0, ct, pt);
}

static void
ext_deinit(gnutls_privkey_t key, void *userdata)
{
	(void)key;
	free(userdata);
}

static int
ext_info(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	const struct ext_key *k = userdata;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)k->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)k->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return gnutls_sign_supports_pk_algorithm(
		    (gnutls_sign_algorithm_t)GNUTLS_FLAGS_TO_SIGN_ALGO(flags),
		    k->pk) ? 1 : 0;
	return -1;
}

/*
 * The certificates the key process loaded with its keys, piece by piece
 * (one load: a reload in between starts over).  0 or -1 with err.
 */
static int
fetch_certs(gnutls_datum_t *out, char *err, size_t errlen)
{
	struct kp_req *q;
	struct kp_resp *a;
	uint32_t off = 0, gen = 0;
	int tries = 0, rc = -1;

	out->data = NULL;
	out->size = 0;
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (a = malloc(sizeof(*a))) == NULL) {
		free(q);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		memset(q, 0, sizeof(*q));
		q->op = KP_CERT;
		q->algo = off;
		if (ask(q, a) == -1 || a->status != 0 ||
		    a->total > TLS_CERTSET_MAX || a->len > KP_DATA_MAX ||
		    off + a->len > a->total) {
			snprintf(err, errlen, "no certificate from the key "
			    "process");
			break;
		}
		if (off == 0 || a->gen != gen) {
			if (off != 0 && ++tries > 3) {
				snprintf(err, errlen, "the certificate keeps "
				    "changing");
				break;
			}
			free(out->data);
			if ((out->data = malloc(a->total + 1)) == NULL) {
				snprintf(err, errlen, "out of memory");
				break;
			}
			out->size = a->total;
			gen = a->gen;
			if (off != 0) {
				off = 0;
				continue;
			}
		}
		memcpy(out->data + off, a->data, a->len);
		off += a->len;
		if (off == a->total) {
			out->data[off] = '\0';
			rc = 0;
			break;
		}
		if (a->len == 0) {
			snprintf(err, errlen, "a short certificate");
			break;
		}
	}
	free(q);
	free(a);
	if (rc == -1) {
		free(out->data);
		out->data = NULL;
		out->size = 0;
	}
	return rc;
}

int
keyproc_fetch_certs(struct tls_certset *set, char *err, size_t errlen)
{
	gnutls_datum_t certs;
	int r;

	if (fetch_certs(&certs, err, errlen) == -1)
		return -1;
	r = tlscerts_decode(certs.data, certs.size, set, err, errlen);
	free(certs.data);
	return r;
}

int
keyproc_add_key(gnutls_certificate_credentials_t cred,
    const gnutls_datum_t *pem, char *err, size_t errlen)
{
	gnutls_pcert_st pcerts[KP_CERTS_MAX];
	unsigned int n = KP_CERTS_MAX, i;
	gnutls_privkey_t pk = NULL;
	struct ext_key *k;
	int r, pkalgo;

	r = gnutls_pcert_list_import_x509_raw(pcerts, &n, pem,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || n == 0) {
		snprintf(err, errlen, "tls.certificate: %s", r < 0 ?
		    gnutls_strerror(r) : "no certificate");
		return -1;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = -1;
		goto fail;
	}
	k->idlen = sizeof(k->id);
	if ((r = gnutls_pubkey_get_key_id(pcerts[0].pubkey,
	    GNUTLS_KEYID_USE_SHA256, k->id, &k->idlen)) < 0 ||
	    (pkalgo = gnutls_pubkey_get_pk_algorithm(pcerts[0].pubkey,
	    &k->bits)) < 0 ||
	    (r = gnutls_privkey_init(&pk)) < 0) {
		snprintf(err, errlen, "tls.certificate: %s",
		    gnutls_strerror(r < 0 ? r : GNUTLS_E_INVALID_REQUEST));
		free(k);
		r = -1;
		goto fail;
	}
	k->pk = (gnutls_pk_algorithm_t)pkalgo;
	if ((r = gnutls_privkey_import_ext4(pk, k, ext_sign_data,
	    ext_sign_hash, ext_decrypt, ext_deinit, ext_info,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0) {
		snprintf(err, errlen, "TLS key: %s", gnutls_strerror(r));
		free(k);
		gnutls_privkey_deinit(pk);
		r = -1;
		goto fail;
	}
	/* The credentials take over pk and the certificates. */
	if ((r = gnutls_certificate_set_key(cred, NULL, 0, pcerts, (int)n,
	    pk)) < 0) {
		snprintf(err, errlen, "TLS key: %s", gnutls_strerror(r));
		gnutls_privkey_deinit(pk);
		r = -1;
		goto fail;
	}
	return 0;
fail:
	for (i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcerts[i]);
	return r;
}
