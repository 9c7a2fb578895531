#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "pin.h"

#define PIN_DIGEST	32	/* SHA-256 */
#define PIN_B64		44	/* base64 of 32 bytes, one '=' */

enum pin_kind {
	PIN_CERT,	/* sha256:HEX, the whole certificate */
	PIN_SPKI,	/* pin-sha256:B64, the public key */
};

static int	pin_parse(const char *, size_t, enum pin_kind *,
		    unsigned char *);
static int	pin_hex(const char *, size_t, unsigned char *);
static int	pin_b64(const char *, size_t, unsigned char *);
static int	pin_next(const char **, const char **, size_t *);

static const char b64digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 64 hex digits, colons between them allowed.  0 or -1. */
static int
pin_hex(const char *s, size_t n, unsigned char *out)
{
	size_t i, nd = 0;
	int v;

	for (i = 0; i < n; i++) {
		if (s[i] == ':')
			continue;
		if (!isxdigit((unsigned char)s[i]) || nd == 2 * PIN_DIGEST)
			return -1;
		v = isdigit((unsigned char)s[i]) ? s[i] - '0' :
		    tolower((unsigned char)s[i]) - 'a' + 10;
		if (nd % 2 == 0)
			out[nd / 2] = (unsigned char)(v << 4);
		else
			out[nd / 2] |= (unsigned char)v;
		nd++;
	}
	return nd == 2 * PIN_DIGEST ? 0 : -1;
}

/* Exactly the 44 base64 digits of 32 bytes.  0 or -1. */
static int
pin_b64(const char *s, size_t n, unsigned char *out)
{
	unsigned long acc = 0;
	size_t i, o = 0;
	const char *d;
	int bits = 0;

	if (n != PIN_B64 || s[PIN_B64 - 1] != '=')
		return -1;
	for (i = 0; i < PIN_B64 - 1; i++) {
		if (s[i] == '\0' || (d = strchr(b64digits, s[i])) == NULL)
			return -1;
		acc = (acc << 6) | (unsigned long)(d - b64digits);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == PIN_DIGEST)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	/* 43 digits carry 258 bits: the last 2 must be zero. */
	return o == PIN_DIGEST && acc == 0 ? 0 : -1;
}

/* One pin, s[0..n).  0 with its kind and digest, or -1. */
static int
pin_parse(const char *s, size_t n, enum pin_kind *kind, unsigned char *out)
{
	if (n > 7 && strncasecmp(s, "sha256:", 7) == 0) {
		*kind = PIN_CERT;
		return pin_hex(s + 7, n - 7, out);
	}
	*kind = PIN_SPKI;
	if (n > 11 && strncasecmp(s, "pin-sha256:", 11) == 0)
		return pin_b64(s + 11, n - 11, out);
	if (n > 8 && strncasecmp(s, "sha256//", 8) == 0)
		return pin_b64(s + 8, n - 8, out);
	/* Bare hex, as smtp has always taken it. */
	*kind = PIN_CERT;
	return pin_hex(s, n, out);
}

/* The next comma-separated item of *pp, blanks around it dropped.
 * 1 with it in [*start, *start + *len), 0 at the end. */
static int
pin_next(const char **pp, const char **start, size_t *len)
{
	const char *p = *pp, *e;

	if (*p == '\0')
		return 0;
	e = p + strcspn(p, ",");
	*pp = *e == ',' ? e + 1 : e;
	while (p < e && isspace((unsigned char)*p))
		p++;
	while (e > p && isspace((unsigned char)e[-1]))
		e--;
	*start = p;
	*len = (size_t)(e - p);
	return 1;
}

int
pin_valid(const char *s)
{
	unsigned char d[PIN_DIGEST];
	enum pin_kind kind;
	const char *p, *c;
	size_t n;
	int count = 0, commas = 0;

	if (strlen(s) >= PIN_LIST_MAX)
		return 0;
	for (c = s; (c = strchr(c, ',')) != NULL; c++)
		commas++;
	while (pin_next(&s, &p, &n)) {
		if (pin_parse(p, n, &kind, d) == -1)
			return 0;
		count++;
	}
	return count > 0 && count == commas + 1;
}

/* SHA-256 of the certificate's SubjectPublicKeyInfo.  0 or -1. */
static int
pin_spki_digest(const unsigned char *der, size_t derlen, unsigned char *out)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t in, spki = { NULL, 0 };
	int r = -1;

	in.data = (unsigned char *)(uintptr_t)der;
	in.size = (unsigned int)derlen;
	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_pubkey_init(&pub) >= 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) >= 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) >= 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size,
	    out) >= 0)
		r = 0;
	gnutls_free(spki.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return r;
}

static void
pin_fmt_spki(const unsigned char *d, char *out, size_t outlen)
{
	char b[PIN_B64 + 1];
	unsigned long acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < PIN_DIGEST; i++) {
		acc = (acc << 8) | d[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			b[o++] = b64digits[(acc >> bits) & 63];
		}
		acc &= (1UL << bits) - 1;
	}
	/* The last 4 bits. */
	b[o++] = b64digits[(acc << (6 - bits)) & 63];
	b[o++] = '=';
	b[o] = '\0';
	snprintf(out, outlen, "pin-sha256:%s", b);
}

static void
pin_fmt_cert(const unsigned char *d, char *out, size_t outlen)
{
	size_t i, o;
	int n;

	n = snprintf(out, outlen, "sha256:");
	o = n > 0 ? (size_t)n : 0;
	for (i = 0; i < PIN_DIGEST && o < outlen; i++) {
		n = snprintf(out + o, outlen - o, "%02X%s", d[i],
		    i + 1 < PIN_DIGEST ? ":" : "");
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

int
pin_spki(const unsigned char *der, size_t derlen, char *out, size_t outlen)
{
	unsigned char d[PIN_DIGEST];

	if (pin_spki_digest(der, derlen, d) == -1)
		return -1;
	pin_fmt_spki(d, out, outlen);
	return 0;
}

int
pin_check(const char *pins, const unsigned char *der, size_t derlen,
    char *have, size_t havelen)
{
	unsigned char want[PIN_DIGEST], cert[PIN_DIGEST], spki[PIN_DIGEST];
	char buf[PIN_HAVE_MAX];
	enum pin_kind kind;
	const char *p, *s = pins;
	size_t n, o;
	int match = 0, need_cert = 0, need_spki = 0;

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, derlen, cert) < 0 ||
	    pin_spki_digest(der, derlen, spki) == -1)
		return -1;
	while (pin_next(&s, &p, &n)) {
		if (pin_parse(p, n, &kind, want) == -1)
			continue;	/* checked when configured */
		if (kind == PIN_CERT)
			need_cert = 1;
		else
			need_spki = 1;
		if (memcmp(want, kind == PIN_CERT ? cert : spki,
		    PIN_DIGEST) == 0)
			match = 1;
	}
	if (havelen > 0) {
		have[0] = '\0';
		if (need_cert) {
			pin_fmt_cert(cert, buf, sizeof(buf));
			snprintf(have, havelen, "fingerprint %s", buf);
		}
		if (need_spki) {
			pin_fmt_spki(spki, buf, sizeof(buf));
			o = strlen(have);
			snprintf(have + o, havelen - o, "%spublic key %s",
			    o > 0 ? " and " : "", buf);
		}
	}
	return match;
}
