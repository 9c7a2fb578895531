/*
 * tlscerts: the server certificates as one set.  See tlscerts.h.
 *
 * The block the key process gives the front: for each certificate a
 * line "<length of the PEM> <name> <name> ...\n" and that many bytes of
 * PEM (the certificate and its chain).
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "lib/str.h"
#include "tlscerts.h"

#define LINE_MAX_LEN	(16 + TLSCONF_NAMES_MAX * (TLSCONF_NAME_MAX + 1))

/*
 * Reads a whole PEM file, at most TLS_FILE_MAX bytes, into d (malloc'd,
 * NUL-terminated).  *modep (unless NULL) gets the file's mode.
 */
static int
read_file(const char *where, const char *what, const char *path,
    gnutls_datum_t *d, mode_t *modep, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd;

	d->data = NULL;
	d->size = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s%s %s: %s", where, what, path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s%s %s: %s", where, what, path,
		    strerror(errno));
		(void)close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		snprintf(err, errlen, "%s%s %s: %s", where, what, path,
		    !S_ISREG(st.st_mode) ? "not a regular file" :
		    "larger than 1 MB");
		(void)close(fd);
		return -1;
	}
	if ((d->data = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s%s %s: out of memory", where, what,
		    path);
		(void)close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, d->data + len, (size_t)st.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s%s %s: %s", where, what, path,
			    strerror(errno));
			(void)close(fd);
			str_wipe(d->data, len);
			free(d->data);
			d->data = NULL;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	(void)close(fd);
	if (modep != NULL)
		*modep = st.st_mode;
	d->data[len] = '\0';
	d->size = (unsigned int)len;
	return 0;
}

/* The DNS names among the certificate's subject alternative names. */
static int
cert_names(struct tls_certent *e, const char *where, const char *path,
    char *err, size_t errlen)
{
	gnutls_x509_crt_t crt;
	char buf[TLSCONF_NAME_MAX + 2];
	size_t len, j;
	unsigned int i;
	int r;

	if (gnutls_x509_crt_init(&crt) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((r = gnutls_x509_crt_import(crt, &e->pem,
	    GNUTLS_X509_FMT_PEM)) < 0) {
		gnutls_x509_crt_deinit(crt);
		snprintf(err, errlen, "%scertificate %s: %s", where, path,
		    gnutls_strerror(r));
		return -1;
	}
	for (i = 0; e->nnames < TLSCONF_NAMES_MAX; i++) {
		len = sizeof(buf) - 1;
		r = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len,
		    NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		/* Too long, or not a DNS name: no client can ask for it. */
		if (r != GNUTLS_SAN_DNSNAME || len >= sizeof(buf))
			continue;
		buf[len] = '\0';
		for (j = 0; j < len; j++)
			buf[j] = (char)tolower((unsigned char)buf[j]);
		if (!tlsconf_name_ok(buf, 1))
			continue;
		if ((e->names[e->nnames] = strdup(buf)) == NULL) {
			gnutls_x509_crt_deinit(crt);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		e->nnames++;
	}
	gnutls_x509_crt_deinit(crt);
	if (e->nnames == 0) {
		snprintf(err, errlen, "%scertificate %s has no DNS names "
		    "(subject alternative names); give the entry names = "
		    "( ... )", where, path);
		return -1;
	}
	return 0;
}

/* Adds a problem to warn, after those already there. */
static void
add_warning(char *warn, size_t warnlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_warning(char *warn, size_t warnlen, const char *fmt, ...)
{
	size_t n = strlen(warn);
	va_list ap;

	if (n > 0 && n + 2 < warnlen) {
		memcpy(warn + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(warn + n, warnlen - n, fmt, ap);
	va_end(ap);
}

/* An expired certificate is served all the same, but said loudly. */
static void
check_expiry(const gnutls_datum_t *pem, const char *where, const char *what,
    const char *path, char *warn, size_t warnlen)
{
	gnutls_x509_crt_t crt;
	time_t until;
	struct tm tm;
	char when[64];

	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, pem, GNUTLS_X509_FMT_PEM) == 0 &&
	    (until = gnutls_x509_crt_get_expiration_time(crt)) != (time_t)-1 &&
	    until < time(NULL) && gmtime_r(&until, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
		add_warning(warn, warnlen, "%s%s %s expired on %s", where,
		    what, path, when);
	gnutls_x509_crt_deinit(crt);
}

/* One certificate with its chain and key; where: "file:line: " or "". */
static int
read_one(struct tls_certent *e, const char *where, const char *certificate,
    const char *key, const char *chain, char *warn, size_t warnlen,
    char *err, size_t errlen)
{
	gnutls_certificate_credentials_t check = NULL;
	gnutls_datum_t cert = { NULL, 0 }, ch = { NULL, 0 };
	const char *what = where[0] != '\0' ? "" : "tls.";
	char wk[16], wc[16], wch[16];
	mode_t kmode = 0;
	int r, rc = -1;

	snprintf(wc, sizeof(wc), "%scertificate", what);
	snprintf(wk, sizeof(wk), "%skey", what);
	snprintf(wch, sizeof(wch), "%schain", what);
	if (read_file(where, wc, certificate, &cert, NULL, err,
	    errlen) == -1 ||
	    read_file(where, wk, key, &e->key, &kmode, err, errlen) == -1 ||
	    (chain != NULL && read_file(where, wch, chain, &ch, NULL, err,
	    errlen) == -1))
		goto out;
	/* Used all the same (refusing would stop mail), but said loudly. */
	if ((kmode & (S_IRWXG | S_IRWXO)) != 0)
		add_warning(warn, warnlen, "%s%s %s: group or others have access "
		    "(mode %04o); chmod 600 it", where, wk, key,
		    (unsigned int)(kmode & 07777));
	/* GnuTLS takes the chain as PEM blocks after the leaf. */
	e->pem.size = cert.size + 1 + ch.size;
	if ((e->pem.data = malloc(e->pem.size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(e->pem.data, cert.data, cert.size);
	e->pem.data[cert.size] = '\n';
	if (ch.size > 0)
		memcpy(e->pem.data + cert.size + 1, ch.data, ch.size);
	e->pem.data[e->pem.size] = '\0';
	/* This checks that the key belongs to the certificate. */
	if ((r = gnutls_certificate_allocate_credentials(&check)) < 0 ||
	    (r = gnutls_certificate_set_x509_key_mem2(check, &e->pem,
	    &e->key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
			snprintf(err, errlen, "%s%s %.300s: not the key of %s "
			    "%.300s", where, wk, key, wc, certificate);
		else
			snprintf(err, errlen, "%s%s %.300s with %s %.300s: %s",
			    where, wc, certificate, wk, key,
			    gnutls_strerror(r));
		goto out;
	}
	/* The default's expiry is told by tls_server_describe(). */
	if (where[0] != '\0')
		check_expiry(&e->pem, where, wc, certificate, warn, warnlen);
	rc = 0;
out:
	if (check != NULL)
		gnutls_certificate_free_credentials(check);
	free(cert.data);
	free(ch.data);
	return rc;
}

int
tlscerts_read(const struct tls_conf *conf, struct tls_certset *set,
    char *warn, size_t warnlen, char *err, size_t errlen)
{
	const struct tls_named *n;
	struct tls_certent *e;
	char where[PATH_MAX + 64];
	int i, j;

	memset(set, 0, sizeof(*set));
	warn[0] = '\0';
	if (conf->certificate == NULL || conf->key == NULL) {
		snprintf(err, errlen, "tls.certificate and tls.key are both "
		    "needed");
		return -1;
	}
	if (conf->nnamed > TLSCONF_CERTS_MAX) {
		snprintf(err, errlen, "more than %d tls.certificates",
		    TLSCONF_CERTS_MAX);
		return -1;
	}
	set->n = 1;
	if (read_one(&set->ent[0], "", conf->certificate, conf->key,
	    conf->chain, warn, warnlen, err, errlen) == -1)
		goto fail;
	for (i = 0; i < conf->nnamed; i++) {
		n = &conf->named[i];
		e = &set->ent[set->n++];
		snprintf(where, sizeof(where), "%s: tls.certificates: ",
		    n->where != NULL ? n->where : "?");
		if (read_one(e, where, n->certificate, n->key, n->chain,
		    warn, warnlen, err, errlen) == -1)
			goto fail;
		if (n->nnames == 0) {
			if (cert_names(e, where, n->certificate, err,
			    errlen) == -1)
				goto fail;
			continue;
		}
		for (j = 0; j < n->nnames && j < TLSCONF_NAMES_MAX; j++) {
			if ((e->names[j] = strdup(n->names[j])) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			e->nnames++;
		}
	}
	return 0;
fail:
	tlscerts_free(set);
	return -1;
}

void
tlscerts_free(struct tls_certset *set)
{
	struct tls_certent *e;
	int i, j;

	for (i = 0; i < set->n; i++) {
		e = &set->ent[i];
		free(e->pem.data);
		if (e->key.data != NULL)
			str_wipe(e->key.data, e->key.size);
		free(e->key.data);
		for (j = 0; j < e->nnames; j++)
			free(e->names[j]);
	}
	memset(set, 0, sizeof(*set));
}

int
tlscerts_encode(const struct tls_certset *set, gnutls_datum_t *out)
{
	const struct tls_certent *e;
	size_t len = 0, off = 0;
	int i, j, r;

	out->data = NULL;
	out->size = 0;
	for (i = 0; i < set->n; i++) {
		e = &set->ent[i];
		len += 16 + e->pem.size;
		for (j = 0; j < e->nnames; j++)
			len += 1 + strlen(e->names[j]);
	}
	if (len > TLS_CERTSET_MAX || (out->data = malloc(len + 1)) == NULL)
		return -1;
	for (i = 0; i < set->n; i++) {
		e = &set->ent[i];
		r = snprintf((char *)out->data + off, len + 1 - off, "%u",
		    e->pem.size);
		off += (size_t)r;
		for (j = 0; j < e->nnames; j++) {
			r = snprintf((char *)out->data + off, len + 1 - off,
			    " %s", e->names[j]);
			off += (size_t)r;
		}
		out->data[off++] = '\n';
		memcpy(out->data + off, e->pem.data, e->pem.size);
		off += e->pem.size;
	}
	out->size = (unsigned int)off;
	return 0;
}

int
tlscerts_decode(const unsigned char *data, size_t len,
    struct tls_certset *set, char *err, size_t errlen)
{
	struct tls_certent *e;
	char line[LINE_MAX_LEN + 1], *p, *name, *end;
	const unsigned char *nl;
	unsigned long n;
	size_t off = 0;

	memset(set, 0, sizeof(*set));
	while (off < len) {
		if (set->n == 1 + TLSCONF_CERTS_MAX ||
		    (nl = memchr(data + off, '\n', len - off)) == NULL ||
		    (size_t)(nl - (data + off)) > LINE_MAX_LEN)
			goto bad;
		memcpy(line, data + off, (size_t)(nl - (data + off)));
		line[nl - (data + off)] = '\0';
		off = (size_t)(nl - data) + 1;
		errno = 0;
		n = strtoul(line, &end, 10);
		if (errno != 0 || end == line || (*end != ' ' &&
		    *end != '\0') || n > len - off ||
		    n > TLS_CERTSET_MAX)
			goto bad;
		e = &set->ent[set->n++];
		if ((e->pem.data = malloc(n + 1)) == NULL)
			goto bad;
		memcpy(e->pem.data, data + off, n);
		e->pem.data[n] = '\0';
		e->pem.size = (unsigned int)n;
		off += n;
		for (p = end; (name = strsep(&p, " ")) != NULL; ) {
			if (*name == '\0')
				continue;
			if (e->nnames == TLSCONF_NAMES_MAX ||
			    !tlsconf_name_ok(name, 1) ||
			    (e->names[e->nnames] = strdup(name)) == NULL)
				goto bad;
			e->nnames++;
		}
	}
	if (set->n == 0)
		goto bad;
	return 0;
bad:
	tlscerts_free(set);
	snprintf(err, errlen, "the certificates from the key process do not "
	    "parse");
	return -1;
}

void
tlscerts_conf(const struct policy *p, struct tls_conf *conf,
    struct tls_named *named)
{
	const struct tlsconf_cert *c;
	int i;

	conf->certificate = p->tls_certificate;
	conf->key = p->tls_key;
	conf->chain = p->tls_chain[0] ? p->tls_chain : NULL;
	conf->named = named;
	conf->nnamed = 0;
	for (i = 0; i < p->tls_sni.ncerts && i < TLSCONF_CERTS_MAX; i++) {
		c = &p->tls_sni.certs[i];
		named[i].certificate = c->certificate;
		named[i].key = c->key;
		named[i].chain = c->chain[0] ? c->chain : NULL;
		named[i].names = c->names;
		named[i].nnames = c->nnames;
		named[i].where = c->where;
		conf->nnamed++;
	}
}
