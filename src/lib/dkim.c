/*
 * DKIM signing: relaxed/relaxed canonicalisation and the DKIM-Signature
 * header field.  See dkim.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "dkim.h"
#include "fsutil.h"

#define KEY_FILE_MAX	65536
#define FIELDS_MAX	1000	/* header fields looked at */
#define SIGNED_MAX	64	/* fields signed */
#define FOLD_AT		72	/* where h= and b= are folded */

struct dkim_key {
	gnutls_privkey_t	 key;
	int			 ed25519;
};

/* Relaxed body canonicalisation (RFC 6376 3.4.4), fed in pieces. */
struct relax {
	unsigned long	 blank;		/* empty lines held back */
	int		 wsp;		/* whitespace seen, not yet written */
	int		 content;	/* the line so far has text */
	char		 buf[4096];
	size_t		 n;
	void		(*flush)(void *, const char *, size_t);
	void		*arg;
};

struct dkim_sign {
	const struct dkim_key	*key;
	char			 domain[256];
	char			 selector[64];
	const char *const	*names;
	struct str		 hdr;		/* the header, as stored */
	int			 in_body;
	int			 too_big;	/* header over header_max */
	size_t			 line;		/* bytes in the header line */
	gnutls_hash_hd_t	 bh;		/* body hash */
	int			 failed;
	struct relax		 rb;
};

static void
relax_put(struct relax *r, const char *p, size_t n)
{
	if (r->n + n > sizeof(r->buf)) {
		r->flush(r->arg, r->buf, r->n);
		r->n = 0;
	}
	memcpy(r->buf + r->n, p, n);
	r->n += n;
}

/*
 * Lines are CRLF-terminated (the spool holds no bare CR or LF); a CR is
 * taken as part of its line end.  Whitespace runs become one space,
 * trailing whitespace goes, empty lines at the end go.
 */
static void
relax_feed(struct relax *r, const char *p, size_t n)
{
	size_t i;
	char c;

	for (i = 0; i < n; i++) {
		c = p[i];
		if (c == '\r')
			continue;
		if (c == '\n') {
			if (r->content)
				relax_put(r, "\r\n", 2);
			else
				r->blank++;
			r->content = r->wsp = 0;
		} else if (c == ' ' || c == '\t')
			r->wsp = 1;
		else {
			for (; r->blank > 0; r->blank--)
				relax_put(r, "\r\n", 2);
			/* A leading run too: only trailing ones go. */
			if (r->wsp)
				relax_put(r, " ", 1);
			r->wsp = 0;
			r->content = 1;
			relax_put(r, &c, 1);
		}
	}
}

static void
relax_end(struct relax *r)
{
	if (r->content)
		relax_put(r, "\r\n", 2);
	r->content = 0;
	r->flush(r->arg, r->buf, r->n);
	r->n = 0;
}

static void
to_str(void *arg, const char *p, size_t n)
{
	struct str *s = arg;

	if (str_append(s, p, n) == -1)
		s->max = 0;	/* marks the overflow for dkim_relax_body */
}

int
dkim_relax_body(const char *body, size_t len, struct str *out)
{
	struct relax r;

	memset(&r, 0, sizeof(r));
	r.flush = to_str;
	r.arg = out;
	relax_feed(&r, body, len);
	relax_end(&r);
	return out->max == 0 ? -1 : 0;
}

void
dkim_relax_header(const char *f, size_t len, struct str *out)
{
	size_t colon, end, i;
	int wsp = 0, started = 0;

	for (colon = 0; colon < len && f[colon] != ':'; colon++)
		;
	for (end = colon; end > 0 && (f[end - 1] == ' ' ||
	    f[end - 1] == '\t'); end--)
		;
	for (i = 0; i < end; i++)
		(void)str_appendc(out, tolower((unsigned char)f[i]));
	(void)str_appendc(out, ':');
	for (i = colon + 1; i < len; i++) {
		if (f[i] == '\r' || f[i] == '\n')
			continue;
		if (f[i] == ' ' || f[i] == '\t') {
			wsp = 1;
			continue;
		}
		if (wsp && started)
			(void)str_appendc(out, ' ');
		wsp = 0;
		started = 1;
		(void)str_appendc(out, f[i]);
	}
	(void)str_append(out, "\r\n", 2);
}

struct dkim_key *
dkim_key_load(const char *path, char *err, size_t errlen)
{
	struct dkim_key *k;
	gnutls_datum_t d = { NULL, 0 };
	int alg, rc;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((rc = gnutls_load_file(path, &d)) < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    gnutls_strerror(rc));
		goto fail;
	}
	if (d.size > KEY_FILE_MAX) {
		snprintf(err, errlen, "%s: too large for a key", path);
		goto fail;
	}
	if ((rc = gnutls_privkey_init(&k->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(k->key, &d,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "%s: not a PEM private key: %s", path,
		    gnutls_strerror(rc));
		goto fail;
	}
	alg = gnutls_privkey_get_pk_algorithm(k->key, NULL);
	if (alg == GNUTLS_PK_EDDSA_ED25519)
		k->ed25519 = 1;
	else if (alg != GNUTLS_PK_RSA) {
		snprintf(err, errlen, "%s: DKIM keys are RSA or Ed25519", path);
		goto fail;
	}
	gnutls_free(d.data);
	return k;
fail:
	gnutls_free(d.data);
	dkim_key_free(&k);
	return NULL;
}

void
dkim_key_free(struct dkim_key **kp)
{
	struct dkim_key *k = *kp;

	if (k == NULL)
		return;
	*kp = NULL;
	if (k->key != NULL)
		gnutls_privkey_deinit(k->key);
	free(k);
}

const char *
dkim_key_algorithm(const struct dkim_key *k)
{
	return k->ed25519 ? "ed25519-sha256" : "rsa-sha256";
}

/* Base64 of d, on one line. */
static int
append_b64(struct str *out, const gnutls_datum_t *d)
{
	gnutls_datum_t b = { NULL, 0 };
	unsigned int i;
	int rc = 0;

	if (gnutls_base64_encode2(d, &b) < 0)
		return -1;
	for (i = 0; i < b.size && rc == 0; i++)
		if (b.data[i] != '\n' && b.data[i] != '\r')
			rc = str_appendc(out, b.data[i]);
	gnutls_free(b.data);
	return rc;
}

int
dkim_key_record(const struct dkim_key *k, struct str *out)
{
	gnutls_pubkey_t pub;
	gnutls_datum_t d = { NULL, 0 };
	gnutls_ecc_curve_t curve;
	int rc;

	if (gnutls_pubkey_init(&pub) < 0)
		return -1;
	if (gnutls_pubkey_import_privkey(pub, k->key, 0, 0) < 0)
		rc = -1;
	else if (k->ed25519)
		/* RFC 8463 3: the bare 32-byte key, not an SPKI. */
		rc = gnutls_pubkey_export_ecc_raw2(pub, &curve, &d, NULL, 0);
	else
		rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &d);
	if (rc >= 0)
		rc = str_appendf(out, "v=DKIM1; k=%s; p=", k->ed25519 ?
		    "ed25519" : "rsa") == 0 && append_b64(out, &d) == 0 ? 0 :
		    -1;
	gnutls_free(d.data);
	gnutls_pubkey_deinit(pub);
	return rc < 0 ? -1 : 0;
}

int
dkim_keygen(const char *type, unsigned int bits, const char *path, char *err,
    size_t errlen)
{
	gnutls_privkey_t key = NULL;
	gnutls_x509_privkey_t x = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	int ed = strcmp(type, "ed25519") == 0, rc, fd = -1, r = -1;

	if (!ed && strcmp(type, "rsa") != 0) {
		snprintf(err, errlen, "key type must be rsa or ed25519");
		return -1;
	}
	if (!ed && (bits < 1024 || bits > 8192)) {
		snprintf(err, errlen, "RSA keys are 1024 to 8192 bits");
		return -1;
	}
	if ((rc = gnutls_privkey_init(&key)) < 0 ||
	    (rc = gnutls_privkey_generate2(key, ed ? GNUTLS_PK_EDDSA_ED25519 :
	    GNUTLS_PK_RSA, ed ? GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519) :
	    bits, 0, NULL, 0)) < 0 ||
	    (rc = gnutls_privkey_export_x509(key, &x)) < 0 ||
	    (rc = gnutls_x509_privkey_export2_pkcs8(x, GNUTLS_X509_FMT_PEM,
	    NULL, GNUTLS_PKCS_PLAIN, &pem)) < 0) {
		snprintf(err, errlen, "cannot make a key: %s",
		    gnutls_strerror(rc));
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || fs_write_all(fd, pem.data, pem.size) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			(void)unlink(path);
		goto out;
	}
	r = 0;
out:
	if (fd != -1 && close(fd) == -1 && r == 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		(void)unlink(path);
		r = -1;
	}
	gnutls_free(pem.data);
	if (x != NULL)
		gnutls_x509_privkey_deinit(x);
	if (key != NULL)
		gnutls_privkey_deinit(key);
	return r;
}

static void
body_hash(void *arg, const char *p, size_t n)
{
	struct dkim_sign *s = arg;

	if (n > 0 && gnutls_hash(s->bh, p, n) < 0)
		s->failed = 1;
}

struct dkim_sign *
dkim_sign_new(const struct dkim_key *k, const char *domain,
    const char *selector, const char *const *names, size_t header_max)
{
	struct dkim_sign *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (gnutls_hash_init(&s->bh, GNUTLS_DIG_SHA256) < 0) {
		free(s);
		return NULL;
	}
	s->key = k;
	str_lcpy(s->domain, domain, sizeof(s->domain));
	str_lcpy(s->selector, selector, sizeof(s->selector));
	s->names = names;
	str_init(&s->hdr, header_max);
	s->rb.flush = body_hash;
	s->rb.arg = s;
	return s;
}

void
dkim_sign_update(struct dkim_sign *s, const char *p, size_t n)
{
	size_t i;

	/* The header up to its empty line; then the body streams. */
	for (i = 0; i < n && !s->in_body; i++) {
		if (p[i] == '\n' && s->line == 0)
			s->in_body = 1;
		else if (!s->too_big && str_append(&s->hdr, p + i, 1) == -1)
			s->too_big = 1;
		if (p[i] == '\n')
			s->line = 0;
		else if (p[i] != '\r')
			s->line++;
	}
	if (i < n)
		relax_feed(&s->rb, p + i, n - i);
}

struct field {
	const char	*p;
	size_t		 len;		/* with its CRLF */
	size_t		 namelen;
};

/* Splits the header into fields.  Their count. */
static size_t
split_fields(const char *h, size_t len, struct field *f, size_t max)
{
	size_t i = 0, n = 0, start, nl;

	while (i < len && n < max) {
		start = i;
		do {
			while (i < len && h[i] != '\n')
				i++;
			if (i < len)
				i++;
		} while (i < len && (h[i] == ' ' || h[i] == '\t'));
		f[n].p = h + start;
		f[n].len = i - start;
		for (nl = 0; nl < f[n].len && f[n].p[nl] != ':' &&
		    f[n].p[nl] != ' ' && f[n].p[nl] != '\t' &&
		    f[n].p[nl] != '\r'; nl++)
			;
		f[n].namelen = nl;
		n++;
	}
	return n;
}

/* Appends a tag value to the header text, folding before a word. */
static void
fold_add(struct str *out, size_t *col, const char *w, size_t n)
{
	if (*col + n > FOLD_AT) {
		(void)str_append(out, "\r\n\t", 3);
		*col = 1;
	}
	(void)str_append(out, w, n);
	*col += n;
}

int
dkim_sign_final(struct dkim_sign *s, time_t now, struct str *out,
    char *err, size_t errlen)
{
	struct field *f = NULL;
	struct str sig, data;
	unsigned char bh[32], hash[32];
	gnutls_datum_t d, b = { NULL, 0 };
	size_t nf, i, j, col, nsigned = 0;
	int used[FIELDS_MAX], rc = -1, k;

	str_init(&sig, 8192);
	str_init(&data, s->hdr.max + 8192);
	relax_end(&s->rb);
	gnutls_hash_deinit(s->bh, bh);
	s->bh = NULL;
	if (s->failed || s->too_big) {
		snprintf(err, errlen, s->too_big ? "header too large to sign" :
		    "hash failed");
		goto out;
	}
	if ((f = calloc(FIELDS_MAX, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	nf = split_fields(s->hdr.s ? s->hdr.s : "", s->hdr.len, f, FIELDS_MAX);
	memset(used, 0, sizeof(used));
	(void)str_appendf(&sig, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;"
	    " d=%s;\r\n\ts=%s; t=%lld; h=", dkim_key_algorithm(s->key),
	    s->domain, s->selector, (long long)now);
	col = 9 + strlen(s->selector) + strlen("; t=; h=") + 20;
	/* Each name as often as it appears, bottom up (RFC 6376 5.4.2). */
	for (k = 0; s->names[k] != NULL && nsigned < SIGNED_MAX; k++) {
		size_t nl = strlen(s->names[k]);
		int oversign = strcasecmp(s->names[k], "From") == 0;

		for (j = nf; j > 0; j--) {
			struct field *x = &f[j - 1];

			if (used[j - 1] || x->namelen != nl ||
			    strncasecmp(x->p, s->names[k], nl) != 0)
				continue;
			used[j - 1] = 1;
			if (nsigned++ > 0)
				fold_add(&sig, &col, ":", 1);
			fold_add(&sig, &col, s->names[k], nl);
			dkim_relax_header(x->p, x->len, &data);
		}
		/* One more From than there is: none can be added later. */
		if (oversign) {
			if (nsigned++ > 0)
				fold_add(&sig, &col, ":", 1);
			fold_add(&sig, &col, s->names[k], nl);
		}
	}
	(void)str_appends(&sig, ";\r\n\tbh=");
	d.data = bh;
	d.size = sizeof(bh);
	if (append_b64(&sig, &d) == -1 ||
	    str_appends(&sig, ";\r\n\tb=") == -1) {
		snprintf(err, errlen, "signature too long");
		goto out;
	}
	/* The signature's own field, b= empty, last and without its CRLF. */
	dkim_relax_header(sig.s, sig.len, &data);
	if (data.len < 2 || data.s == NULL) {
		snprintf(err, errlen, "header too large to sign");
		goto out;
	}
	data.len -= 2;
	d.data = (unsigned char *)data.s;
	d.size = (unsigned int)data.len;
	if (s->key->ed25519) {
		/* RFC 8463 3: Ed25519 over the SHA-256 of the data. */
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data.s, data.len,
		    hash) < 0)
			goto crypto;
		d.data = hash;
		d.size = sizeof(hash);
		k = gnutls_privkey_sign_data2(s->key->key,
		    GNUTLS_SIGN_EDDSA_ED25519, 0, &d, &b);
	} else
		k = gnutls_privkey_sign_data(s->key->key, GNUTLS_DIG_SHA256, 0,
		    &d, &b);
	if (k < 0)
		goto crypto;
	str_clear(&data);
	if (append_b64(&data, &b) == -1)
		goto crypto;
	col = 3;
	for (i = 0; i < data.len; i += j) {
		j = data.len - i < FOLD_AT - 8 ? data.len - i : FOLD_AT - 8;
		fold_add(&sig, &col, data.s + i, j);
		col = FOLD_AT;	/* the next piece on a line of its own */
	}
	if (str_append(&sig, "\r\n", 2) == -1 ||
	    str_append(out, sig.s, sig.len) == -1) {
		snprintf(err, errlen, "signature too long");
		goto out;
	}
	rc = 0;
	goto out;
crypto:
	snprintf(err, errlen, "signing failed: %s", gnutls_strerror(k));
out:
	gnutls_free(b.data);
	free(f);
	str_free(&sig);
	str_free(&data);
	return rc;
}

void
dkim_sign_free(struct dkim_sign **sp)
{
	struct dkim_sign *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->bh != NULL)
		gnutls_hash_deinit(s->bh, NULL);
	str_free(&s->hdr);
	free(s);
}
