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

#define KP_KEYS_MAX	4	/* the current key and the ones before it */
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
static unsigned char	*cert_pem;	/* the newest key's chain */
static size_t		 cert_len;
static uint32_t		 cert_gen;
static pthread_mutex_t	 paths_mu = PTHREAD_MUTEX_INITIALIZER;
static char		 secrets_file[PATH_MAX];
static unsigned long	 nsigned;

/* Reads a whole PEM file, at most TLS_FILE_MAX bytes.  0 or -1. */
static int
read_pem(const char *what, const char *path, gnutls_datum_t *d, char *err,
    size_t errlen)
{
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd;

	d->data = NULL;
	d->size = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s %s: %s", what, path,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX ||
	    (d->data = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s %s: not a regular file of at "
		    "most 1 MB", what, path);
		(void)close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, d->data + len, (size_t)st.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	(void)close(fd);
	d->size = (unsigned int)len;
	return 0;
}

/*
 * Loads the certificate (and chain) and the key p names, checks that they
 * belong together, and makes them the newest.  0 or -1 with err.
 */
static int
load_key(const struct policy *p, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t check = NULL;
	gnutls_datum_t cert = { NULL, 0 }, chain = { NULL, 0 };
	gnutls_datum_t d = { NULL, 0 }, both = { NULL, 0 };
	gnutls_privkey_t pk = NULL;
	gnutls_pubkey_t pub = NULL;
	unsigned char id[KP_ID_MAX];
	size_t idlen = sizeof(id);
	int r, i, rc = -1;

	if (read_pem("tls.certificate", p->tls_certificate, &cert, err,
	    errlen) == -1 ||
	    (p->tls_chain[0] != '\0' && read_pem("tls.chain", p->tls_chain,
	    &chain, err, errlen) == -1) ||
	    read_pem("tls.key", p->tls_key, &d, err, errlen) == -1)
		goto out;
	/* The chain as PEM blocks after the leaf, as tls.c does. */
	both.size = cert.size + 1 + chain.size;
	if ((both.data = malloc(both.size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(both.data, cert.data, cert.size);
	both.data[cert.size] = '\n';
	if (chain.size > 0)
		memcpy(both.data + cert.size + 1, chain.data, chain.size);
	both.data[both.size] = '\0';
	/* This checks that the key belongs to the certificate. */
	if ((r = gnutls_certificate_allocate_credentials(&check)) < 0 ||
	    (r = gnutls_certificate_set_x509_key_mem2(check, &both, &d,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "tls.certificate %.300s with tls.key "
		    "%.300s: %s", p->tls_certificate, p->tls_key,
		    gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_privkey_init(&pk)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(pk, &d, GNUTLS_X509_FMT_PEM,
	    NULL, 0)) < 0 ||
	    (r = gnutls_pubkey_init(&pub)) < 0 ||
	    (r = gnutls_pubkey_import_privkey(pub, pk, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id,
	    &idlen)) < 0) {
		snprintf(err, errlen, "tls.key %.300s: %s", p->tls_key,
		    gnutls_strerror(r));
		goto out;
	}
	pthread_rwlock_wrlock(&keys_lock);
	for (i = 0; i < nkeys; i++)
		if (keys[i].idlen == idlen && memcmp(keys[i].id, id,
		    idlen) == 0)
			break;
	if (i == nkeys) {
		if (nkeys == KP_KEYS_MAX)
			gnutls_privkey_deinit(keys[--nkeys].pk);
		memmove(&keys[1], &keys[0], (size_t)nkeys * sizeof(keys[0]));
		memcpy(keys[0].id, id, idlen);
		keys[0].idlen = idlen;
		keys[0].pk = pk;
		pk = NULL;
		nkeys++;
	}
	free(cert_pem);
	cert_pem = both.data;
	cert_len = both.size;
	cert_gen++;
	both.data = NULL;
	pthread_rwlock_unlock(&keys_lock);
	rc = 0;
out:
	if (check != NULL)
		gnutls_certificate_free_credentials(check);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (pk != NULL)
		gnutls_privkey_deinit(pk);
	if (d.data != NULL)
		str_wipe(d.data, d.size);
	free(d.data);
	free(cert.data);
	free(chain.data);
	free(both.data);
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

/* Takes the key and secrets paths of p; loads the key.  0 or -1. */
static int
take_config(const struct policy *p, int reload)
{
	const char *what = reload ? "reload: " : "";
	char err[1024];
	int r = 0;

	pthread_mutex_lock(&paths_mu);
	str_lcpy(secrets_file, p->auth_secrets, sizeof(secrets_file));
	pthread_mutex_unlock(&paths_mu);
	if (p->tls_certificate[0] != '\0' && load_key(p, err,
	    sizeof(err)) == -1) {
		log_err("key process: %sTLS: %s; keeping the old certificate",
		    what, err);
		r = -1;
	}
	if (p->auth_secrets[0] != '\0' && secrets_refresh(p->auth_secrets,
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
    const struct policy_overrides *ov, int notify_fd)
{
	struct policy *p;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t sigs;
	char err[1024];
	int i, sig;

	if ((p = policy_load(conffile, missing_ok, ov, err,
	    sizeof(err))) == NULL) {
		log_err("key process: %s", err);
		exit(EX_CONFIG);
	}
	(void)take_config(p, 0);
	policy_unref(&p);
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
		if ((p = policy_load(conffile, missing_ok, ov, err,
		    sizeof(err))) == NULL) {
			log_err("key process: the config does not load, "
			    "keeping the running one: %s", err);
			notify(notify_fd);
			continue;
		}
		(void)take_config(p, 1);
		policy_unref(&p);
		log_info("key process: reload done");
		notify(notify_fd);
	}
	log_info("key process: stopping on signal %d", sig);
	exit(EX_OK);
}
