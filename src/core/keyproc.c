/*
 * keyproc: the key and secrets process.  See keyproc.h; the front's
 * side is keyclient.c.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "auth/secrets.h"
#include "keyproc.h"
#include "keyproto.h"
#include "lib/log.h"
#include "lib/str.h"
#include "tls.h"
#include "tlscerts.h"

/* The current keys and as many before them. */
#define KP_KEYS_MAX	(2 * (1 + TLSCONF_CERTS_MAX))
#define KP_STACK	(256 * 1024)

/* The key process's keys, newest first. */
struct kp_key {
	unsigned char	 id[KP_ID_MAX];
	size_t		 idlen;
	gnutls_privkey_t pk;
};

static pthread_rwlock_t	 keys_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct kp_key	 keys[KP_KEYS_MAX];
static int		 nkeys;
static unsigned char	*cert_pem;	/* the newest certificates */
static size_t		 cert_len;
static uint32_t		 cert_gen;
static pthread_mutex_t	 paths_mu = PTHREAD_MUTEX_INITIALIZER;
static char		 secrets_file[PATH_MAX];
static unsigned long	 nsigned;

static int
same_key(const struct kp_key *a, const struct kp_key *b)
{
	return a->idlen == b->idlen && memcmp(a->id, b->id, a->idlen) == 0;
}

/* The key id the front sends with each request: SHA-256 of the key. */
static int
key_of(const gnutls_datum_t *pem, struct kp_key *k, char *err, size_t errlen)
{
	gnutls_pubkey_t pub = NULL;
	int r;

	k->pk = NULL;
	k->idlen = sizeof(k->id);
	if ((r = gnutls_privkey_init(&k->pk)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(k->pk, pem,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
	    (r = gnutls_pubkey_init(&pub)) < 0 ||
	    (r = gnutls_pubkey_import_privkey(pub, k->pk, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, k->id,
	    &k->idlen)) < 0) {
		snprintf(err, errlen, "TLS key: %s", gnutls_strerror(r));
		if (k->pk != NULL)
			gnutls_privkey_deinit(k->pk);
		k->pk = NULL;
	}
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return k->pk != NULL ? 0 : -1;
}

/*
 * Loads the certificates (and chains) and the keys p names, checks that
 * they belong together, and makes them the newest.  The keys of earlier
 * loads stay for a while, for handshakes that began before.  0 or -1
 * with err.
 */
static int
load_key(const struct policy *p, int reload, char *err, size_t errlen)
{
	struct tls_named named[TLSCONF_CERTS_MAX];
	struct tls_conf tc;
	struct tls_certset *set;
	struct kp_key fresh[1 + TLSCONF_CERTS_MAX];
	gnutls_datum_t blob = { NULL, 0 };
	char warn[1200];
	struct kp_key merged[KP_KEYS_MAX];
	int i, j, nfresh = 0, nmerged = 0, nnew, rc = -1;

	if ((set = calloc(1, sizeof(*set))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&tc, 0, sizeof(tc));
	tlscerts_conf(p, &tc, named);
	if (tlscerts_read(&tc, set, warn, sizeof(warn), err, errlen) == -1)
		goto out;
	/* At start smtpd said so before the split. */
	if (reload && warn[0] != '\0')
		log_warn("key process: reload: TLS: %s", warn);
	for (i = 0; i < set->n; i++) {
		if (key_of(&set->ent[i].key, &fresh[nfresh], err,
		    errlen) == -1)
			goto out;
		nfresh++;
	}
	if (tlscerts_encode(set, &blob) == -1) {
		snprintf(err, errlen, "the certificates are larger than %d "
		    "MB in all", TLS_CERTSET_MAX / (1024 * 1024));
		goto out;
	}
	pthread_rwlock_wrlock(&keys_lock);
	/* The new keys first, each once, then the old ones while room. */
	for (i = 0; i < nfresh; i++) {
		for (j = 0; j < nmerged && !same_key(&merged[j], &fresh[i]);
		    j++)
			;
		if (j < nmerged)
			gnutls_privkey_deinit(fresh[i].pk);
		else
			merged[nmerged++] = fresh[i];
		fresh[i].pk = NULL;
	}
	nnew = nmerged;
	for (i = 0; i < nkeys; i++) {
		for (j = 0; j < nnew && !same_key(&merged[j], &keys[i]); j++)
			;
		if (j < nnew || nmerged == KP_KEYS_MAX)
			gnutls_privkey_deinit(keys[i].pk);
		else
			merged[nmerged++] = keys[i];
	}
	memcpy(keys, merged, (size_t)nmerged * sizeof(keys[0]));
	nkeys = nmerged;
	free(cert_pem);
	cert_pem = blob.data;
	cert_len = blob.size;
	cert_gen++;
	blob.data = NULL;
	pthread_rwlock_unlock(&keys_lock);
	nfresh = 0;
	rc = 0;
out:
	for (i = 0; i < nfresh; i++)
		if (fresh[i].pk != NULL)
			gnutls_privkey_deinit(fresh[i].pk);
	free(blob.data);
	tlscerts_free(set);
	free(set);
	return rc;
}

/* The key whose id is id; call with keys_lock held.  NULL if none. */
static gnutls_privkey_t
find_key(const unsigned char *id, size_t idlen)
{
	int i;

	for (i = 0; i < nkeys; i++)
		if (keys[i].idlen == idlen && memcmp(keys[i].id, id,
		    idlen) == 0)
			return keys[i].pk;
	return NULL;
}

static void
key_op(const struct kp_req *q, struct kp_resp *a)
{
	gnutls_datum_t in, out = { NULL, 0 };
	gnutls_privkey_t pk;
	int r = GNUTLS_E_INVALID_REQUEST;

	a->status = -1;
	if (q->idlen > KP_ID_MAX || q->len > KP_DATA_MAX)
		return;
	in.data = (unsigned char *)q->data;
	in.size = q->len;
	pthread_rwlock_rdlock(&keys_lock);
	if ((pk = find_key(q->id, q->idlen)) != NULL) {
		if (q->op == KP_SIGN_DATA)
			r = gnutls_privkey_sign_data2(pk, q->algo, q->flags,
			    &in, &out);
		else if (q->op == KP_SIGN_HASH)
			r = gnutls_privkey_sign_hash2(pk, q->algo, q->flags,
			    &in, &out);
		else
			r = gnutls_privkey_decrypt_data(pk, 0, &in, &out);
	}
	pthread_rwlock_unlock(&keys_lock);
	if (pk == NULL) {
		log_err("key: a request for a key not loaded");
		return;
	}
	if (r < 0 || out.size > KP_DATA_MAX) {
		log_err("key: %s failed: %s", q->op == KP_DECRYPT ?
		    "decryption" : "signature", r < 0 ? gnutls_strerror(r) :
		    "result too long");
	} else {
		memcpy(a->data, out.data, out.size);
		a->len = out.size;
		a->status = 0;
		log_debug("key: %s request %lu (%s)", q->op == KP_DECRYPT ?
		    "decrypt" : "sign", __atomic_add_fetch(&nsigned, 1,
		    __ATOMIC_RELAXED), q->op == KP_DECRYPT ? "RSA" :
		    gnutls_sign_get_name(q->algo));
	}
	if (out.data != NULL) {
		str_wipe(out.data, out.size);
		gnutls_free(out.data);
	}
}

/* A piece of the certificates, from offset q->algo. */
static void
cert_op(const struct kp_req *q, struct kp_resp *a)
{
	size_t n;

	pthread_rwlock_rdlock(&keys_lock);
	a->total = (uint32_t)cert_len;
	a->gen = cert_gen;
	a->status = cert_pem != NULL && q->algo <= cert_len ? 0 : -1;
	if (a->status == 0) {
		n = cert_len - q->algo;
		if (n > KP_DATA_MAX)
			n = KP_DATA_MAX;
		memcpy(a->data, cert_pem + q->algo, n);
		a->len = (uint32_t)n;
	}
	pthread_rwlock_unlock(&keys_lock);
}

/* The current table, reloaded first if its file changed. */
static struct secrets *
current_secrets(void)
{
	char path[PATH_MAX], err[1024];

	pthread_mutex_lock(&paths_mu);
	str_lcpy(path, secrets_file, sizeof(path));
	pthread_mutex_unlock(&paths_mu);
	if (path[0] != '\0' && secrets_refresh(path, err, sizeof(err)) == -1)
		log_err("key process: auth: %s; keeping the old ones", err);
	return secrets_current();
}

static void
auth_op(struct kp_req *q, struct kp_resp *a)
{
	struct secrets *t;
	enum secrets_status st;

	q->user[sizeof(q->user) - 1] = '\0';
	if (q->len > KP_DATA_MAX ||
	    (q->op == KP_VERIFY && q->len > SECRETS_PASS_MAX)) {
		a->status = SECRETS_FAIL;
		return;
	}
	t = current_secrets();
	if (q->op == KP_VERIFY) {
		st = secrets_verify(t, q->user, q->data, q->len);
		if ((q->flags & KP_F_BAD) && st == SECRETS_OK)
			st = SECRETS_FAIL;
	} else if (q->op == KP_CRAM)
		st = secrets_verify_cram(t, q->user, q->data, q->len,
		    q->digest);
	else
		st = t != NULL ? SECRETS_OK : SECRETS_TEMPFAIL;
	a->status = (int32_t)st;
	a->any_clear = (uint32_t)secrets_any_clear(t);
	secrets_unref(&t);
}

static void *
serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct kp_req *q;
	struct kp_resp *a;
	ssize_t n;

	if ((q = malloc(sizeof(*q))) == NULL ||
	    (a = malloc(sizeof(*a))) == NULL) {
		log_err("key process: out of memory");
		exit(EX_OSERR);
	}
	for (;;) {
		n = recv(fd, q, sizeof(*q), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (n == -1 && errno != EINTR)) {
			/* Nobody is left to ask: the parent is gone. */
			log_info("key process: channel closed, stopping");
			exit(EX_OK);
		}
		if ((size_t)n != sizeof(*q)) {
			log_err("key process: a request of %zd bytes dropped",
			    n);
			continue;
		}
		memset(a, 0, sizeof(*a));
		a->seq = q->seq;
		switch (q->op) {
		case KP_SIGN_DATA:
		case KP_SIGN_HASH:
		case KP_DECRYPT:
			key_op(q, a);
			break;
		case KP_CERT:
			cert_op(q, a);
			break;
		case KP_VERIFY:
		case KP_CRAM:
		case KP_INFO:
			auth_op(q, a);
			break;
		default:
			a->status = -1;
			break;
		}
		str_wipe(q, sizeof(*q));
		while (send(fd, a, sizeof(*a), MSG_NOSIGNAL) == -1 &&
		    errno == EINTR)
			;
		str_wipe(a, sizeof(*a));
	}
	return NULL;
}

/* Takes the key and secrets paths of cf; loads the key.  0 or -1. */
static int
take_config(const struct conf_file *cf, int reload)
{
	const struct policy *p = cf->policy;
	const struct auth_conf *ac = &cf->auth;
	const char *what = reload ? "reload: " : "";
	char err[1024];
	int r = 0;

	pthread_mutex_lock(&paths_mu);
	str_lcpy(secrets_file, ac->secrets, sizeof(secrets_file));
	pthread_mutex_unlock(&paths_mu);
	if (p->tls_certificate[0] != '\0' && load_key(p, reload, err,
	    sizeof(err)) == -1) {
		log_err("key process: %sTLS: %s; keeping the old certificate",
		    what, err);
		r = -1;
	}
	if (ac->secrets[0] != '\0' && secrets_refresh(ac->secrets,
	    err, sizeof(err)) == -1) {
		log_err("key process: %sAUTH secrets: %s; keeping the old "
		    "ones", what, err);
		r = -1;
	}
	return r;
}

/* One byte to the parent: ready, or done reloading. */
static void
notify(int fd)
{
	if (fd != -1)
		while (write(fd, "", 1) == -1 && errno == EINTR)
			;
}

void
keyproc_main(const int *fds, int n, const char *conffile, int missing_ok,
    const struct conf_overrides *ov, int notify_fd)
{
	struct conf_file *cf;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t sigs;
	char err[1024];
	int i, sig;

	if ((cf = conf_file_load(conffile, missing_ok, ov, err,
	    sizeof(err))) == NULL) {
		log_err("key process: %s", err);
		exit(EX_CONFIG);
	}
	(void)take_config(cf, 0);
	conf_file_unref(&cf);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, KP_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid, &attr, serve,
		    (void *)(intptr_t)fds[i]) != 0) {
			log_err("key process: cannot start a thread");
			exit(EX_OSERR);
		}
	pthread_attr_destroy(&attr);
	log_info("key process: started");
	notify(notify_fd);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if ((cf = conf_file_load(conffile, missing_ok, ov, err,
		    sizeof(err))) == NULL) {
			log_err("key process: the config does not load, "
			    "keeping the running one: %s", err);
			notify(notify_fd);
			continue;
		}
		(void)take_config(cf, 1);
		conf_file_unref(&cf);
		log_info("key process: reload done");
		notify(notify_fd);
	}
	log_info("key process: stopping on signal %d", sig);
	exit(EX_OK);
}
