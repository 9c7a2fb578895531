/*
 * tlspolicy: outbound TLS policy per destination and per MX host: DANE
 * (RFC 7672), MTA-STS (RFC 8461), or a fixed level; the outcomes for TLS
 * reports (RFC 8460).
 *
 * DANE applies to an MX host when the MX answer and the host's TLSA
 * answer are both DNSSEC-validated.  Usable records are DANE-TA(2) and
 * DANE-EE(3), every selector (0 full certificate, 1 SubjectPublicKeyInfo)
 * and matching type (0 exact, 1 SHA-256, 2 SHA-512).  DANE-EE matches the
 * server's own certificate, with no name or date check (RFC 7672 3.1.1);
 * DANE-TA matches a certificate the server sent above its own, which must
 * then issue the server's chain, whose name must be the MX host's or the
 * mail domain's (RFC 7672 3.1.2 and 3.2.2).  Validated TLSA records that
 * are all unusable still make TLS mandatory (RFC 7672 2.2).  A failed
 * TLSA lookup or a mismatch is a temporary failure for that host: mail is
 * never sent in the clear instead.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "lib/dns.h"
#include "lib/str.h"
#include "client.h"
#include "mtasts.h"
#include "tlspolicy.h"

#define TLSA_TEXT_MAX	2048

enum host_kind {
	HOST_PLAIN,		/* the fixed level, or no policy found */
	HOST_DANE,		/* usable TLSA records */
	HOST_DANE_ENCRYPT,	/* validated TLSA records, none usable */
	HOST_STS,		/* an MTA-STS policy */
};

struct tlsplan {
	enum client_tls_policy	 pol;
	enum client_tls		 base_tls;
	int			 base_verify, base_fallback;
	const char		*cafile, *sts_cache;
	unsigned		 sts_timeout;
	void			(*event)(void *, const struct client_tls_event *);
	void			*event_arg;
	char			 domain[DNS_NAME_MAX + 1];
	int			 by_mx, secure;
	int			 have_sts;
	struct sts_policy	 sts;
	/* The host being tried: */
	enum host_kind		 kind;
	int			 verify;
	struct dns_tlsa		*tlsa;
	size_t			 ntlsa;
	char			 tlsa_text[TLSA_TEXT_MAX];
	const char		*authed;
};

static void	plan_event(struct tlsplan *, const char *, const char *,
		    const char *, const char *);
static int	dane_match(const struct dns_tlsa *, const gnutls_datum_t *);
static int	dane_ta_chain(const gnutls_datum_t *, unsigned, const char *,
		    const char *);
static int	dane_verify(const struct tlsplan *, const gnutls_datum_t *,
		    unsigned, const char *);
static void	tlsa_format(struct tlsplan *);
static void	plan_result(struct client_result *, const char *,
		    const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static const char *const policy_names[] = {
	[CLIENT_TLSPOL_DEFAULT] = "default",
	[CLIENT_TLSPOL_NONE] = "none",
	[CLIENT_TLSPOL_MAY] = "may",
	[CLIENT_TLSPOL_ENCRYPT] = "encrypt",
	[CLIENT_TLSPOL_VERIFY] = "verify",
	[CLIENT_TLSPOL_DANE] = "dane",
	[CLIENT_TLSPOL_MTA_STS] = "mta-sts",
	[CLIENT_TLSPOL_AUTO] = "auto",
};

const char *
client_tls_policy_name(enum client_tls_policy p)
{
	if ((size_t)p >= sizeof(policy_names) / sizeof(policy_names[0]))
		return NULL;
	return policy_names[p];
}

int
client_tls_policy_parse(const char *s, enum client_tls_policy *p)
{
	size_t i;

	for (i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (strcmp(s, policy_names[i]) == 0) {
			*p = (enum client_tls_policy)i;
			return 0;
		}
	return -1;
}

/* A temporary or permanent failure of the policy, for the caller. */
static void
plan_result(struct client_result *res, const char *host, const char *fmt,
    ...)
{
	va_list ap;

	memset(res, 0, sizeof(*res));
	res->phase = CLIENT_PH_STARTTLS;
	res->cause = CLIENT_CAUSE_TLS_POLICY;
	res->temporary = 1;
	str_lcpy(res->host, host, sizeof(res->host));
	va_start(ap, fmt);
	(void)vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

struct tlsplan *
tlsplan_new(const struct client_opts *o)
{
	struct tlsplan *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->tlsa = calloc(DNS_TLSA_MAX, sizeof(*p->tlsa))) == NULL) {
		free(p);
		return NULL;
	}
	p->pol = o->tls_policy;
	p->base_tls = o->tls;
	p->base_verify = o->tls_verify;
	p->base_fallback = o->tls_fallback;
	p->cafile = o->tls_cafile;
	p->sts_cache = o->sts_cache;
	p->sts_timeout = o->sts_timeout;
	p->event = o->tls_event;
	p->event_arg = o->tls_event_arg;
	return p;
}

void
tlsplan_free(struct tlsplan *p)
{
	if (p == NULL)
		return;
	free(p->tlsa);
	free(p);
}

static void
plan_event(struct tlsplan *p, const char *host, const char *addr,
    const char *failure, const char *detail)
{
	struct client_tls_event ev;

	if (p->event == NULL || p->pol == CLIENT_TLSPOL_DEFAULT)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.domain = p->domain;
	switch (p->kind) {
	case HOST_DANE:
	case HOST_DANE_ENCRYPT:
		ev.policy_type = "tlsa";
		ev.policy = p->tlsa_text;
		break;
	case HOST_STS:
		ev.policy_type = "sts";
		ev.policy = p->sts.text;
		break;
	default:
		ev.policy_type = "no-policy-found";
		ev.policy = "";
		break;
	}
	ev.mx_host = host != NULL ? host : "";
	ev.addr = addr != NULL ? addr : "";
	ev.failure = failure;
	ev.detail = detail != NULL ? detail : "";
	p->event(p->event_arg, &ev);
}

void
tlsplan_domain(struct tlsplan *p, const char *dest, int by_mx,
    int mx_secure, void (*debug)(void *, const char *), void *arg)
{
	const char *failure;
	char note[512], line[600];

	str_lcpy(p->domain, dest, sizeof(p->domain));
	p->by_mx = by_mx;
	p->secure = mx_secure;
	p->have_sts = 0;
	p->kind = HOST_PLAIN;
	if (!by_mx || (p->pol != CLIENT_TLSPOL_AUTO &&
	    p->pol != CLIENT_TLSPOL_MTA_STS))
		return;
	p->have_sts = sts_lookup(dest, p->sts_cache, p->cafile,
	    p->sts_timeout, &p->sts, &failure, note, sizeof(note)) == 1;
	if (failure != NULL)
		plan_event(p, "", "", failure, note);
	if (debug != NULL) {
		if (p->have_sts)
			snprintf(line, sizeof(line), "MTA-STS policy of %s: "
			    "mode %s, id %s%s%s", dest, p->sts.mode ==
			    STS_MODE_ENFORCE ? "enforce" : p->sts.mode ==
			    STS_MODE_TESTING ? "testing" : "none", p->sts.id,
			    note[0] != '\0' ? "; " : "", note);
		else
			snprintf(line, sizeof(line), "no MTA-STS policy for "
			    "%s%s%s", dest, note[0] != '\0' ? ": " : "", note);
		debug(arg, line);
	}
}

static void
tlsa_format(struct tlsplan *p)
{
	size_t i, j, off = 0;
	int n;

	p->tlsa_text[0] = '\0';
	for (i = 0; i < p->ntlsa; i++) {
		const struct dns_tlsa *t = &p->tlsa[i];

		n = snprintf(p->tlsa_text + off, sizeof(p->tlsa_text) - off,
		    "%s%u %u %u ", i > 0 ? "\n" : "", t->usage, t->selector,
		    t->mtype);
		if (n < 0 || (size_t)n >= sizeof(p->tlsa_text) - off)
			return;
		off += (size_t)n;
		for (j = 0; j < t->len && off + 3 < sizeof(p->tlsa_text);
		    j++) {
			snprintf(p->tlsa_text + off, 3, "%02X", t->data[j]);
			off += 2;
		}
	}
}

int
tlsplan_host(struct tlsplan *p, struct client_opts *o, const char *host,
    uint16_t port, struct client_result *res)
{
	enum dns_status st;
	size_t i, usable = 0;
	int secure;

	p->kind = HOST_PLAIN;
	p->ntlsa = 0;
	p->authed = NULL;
	o->tls_verify = 0;
	o->tls_fallback = 0;
	switch (p->pol) {
	case CLIENT_TLSPOL_DEFAULT:
		o->tls = p->base_tls;
		o->tls_verify = p->base_verify;
		o->tls_fallback = p->base_fallback;
		break;
	case CLIENT_TLSPOL_NONE:
		o->tls = CLIENT_TLS_NONE;
		break;
	case CLIENT_TLSPOL_MAY:
		o->tls = CLIENT_TLS_OPPORTUNISTIC;
		o->tls_fallback = 1;
		break;
	case CLIENT_TLSPOL_ENCRYPT:
		o->tls = CLIENT_TLS_REQUIRE;
		break;
	case CLIENT_TLSPOL_VERIFY:
		o->tls = CLIENT_TLS_REQUIRE;
		o->tls_verify = 1;
		break;
	case CLIENT_TLSPOL_DANE:
	case CLIENT_TLSPOL_MTA_STS:
	case CLIENT_TLSPOL_AUTO:
		o->tls = CLIENT_TLS_OPPORTUNISTIC;
		o->tls_fallback = 1;
		if (p->pol == CLIENT_TLSPOL_MTA_STS || !p->secure)
			goto sts;
		st = dns_tlsa(host, port, p->tlsa, DNS_TLSA_MAX, &p->ntlsa,
		    &secure);
		if (st == DNS_TEMPFAIL) {
			/* RFC 7672 2.2: this host cannot be used now. */
			p->kind = HOST_DANE;
			plan_result(res, host,
			    "DANE: the TLSA lookup of _%u._tcp.%s failed",
			    (unsigned)port, host);
			plan_event(p, host, "", "dnssec-invalid", res->text);
			return -1;
		}
		if (st != DNS_OK || !secure) {
			p->ntlsa = 0;
			goto sts;
		}
		for (i = 0; i < p->ntlsa; i++)
			if ((p->tlsa[i].usage == 2 || p->tlsa[i].usage == 3) &&
			    p->tlsa[i].selector <= 1 && p->tlsa[i].mtype <= 2)
				usable++;
		tlsa_format(p);
		p->kind = usable > 0 ? HOST_DANE : HOST_DANE_ENCRYPT;
		o->tls = CLIENT_TLS_REQUIRE;
		o->tls_fallback = 0;
		break;
sts:
		if (!p->have_sts || p->sts.mode == STS_MODE_NONE)
			break;
		p->kind = HOST_STS;
		if (!sts_mx_match(&p->sts, host)) {
			plan_result(res, host,
			    "MTA-STS: %s is not an MX host of the policy of %s",
			    host, p->domain);
			plan_event(p, host, "", "validation-failure",
			    res->text);
			if (p->sts.mode == STS_MODE_ENFORCE)
				return -1;
			memset(res, 0, sizeof(*res));
			break;
		}
		if (p->sts.mode == STS_MODE_ENFORCE) {
			o->tls = CLIENT_TLS_REQUIRE;
			o->tls_fallback = 0;
		}
		break;
	}
	p->verify = o->tls_verify;
	return 0;
}

int
tlsplan_wants_trust(const struct tlsplan *p)
{
	return p->have_sts && p->sts.mode != STS_MODE_NONE;
}

/* 1 if the record matches the certificate (DER). */
static int
dane_match(const struct dns_tlsa *t, const gnutls_datum_t *der)
{
	gnutls_datum_t sel = *der, spki = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pk = NULL;
	unsigned char md[64];
	int ok = 0;

	if (t->selector == 1) {
		if (gnutls_x509_crt_init(&crt) < 0)
			return 0;
		if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0 ||
		    gnutls_pubkey_init(&pk) < 0 ||
		    gnutls_pubkey_import_x509(pk, crt, 0) < 0 ||
		    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &spki) < 0)
			goto out;
		sel = spki;
	} else if (t->selector != 0)
		return 0;
	switch (t->mtype) {
	case 0:
		ok = sel.size == t->len && memcmp(sel.data, t->data,
		    t->len) == 0;
		break;
	case 1:
		ok = t->len == 32 && gnutls_hash_fast(GNUTLS_DIG_SHA256,
		    sel.data, sel.size, md) == 0 && memcmp(md, t->data, 32) == 0;
		break;
	case 2:
		ok = t->len == 64 && gnutls_hash_fast(GNUTLS_DIG_SHA512,
		    sel.data, sel.size, md) == 0 && memcmp(md, t->data, 64) == 0;
		break;
	}
out:
	gnutls_free(spki.data);
	if (pk != NULL)
		gnutls_pubkey_deinit(pk);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ok;
}

/*
 * DANE-TA: certs[ta] issues the chain certs[0..ta-1], whose first
 * certificate names host or domain.  1 or 0.
 */
static int
dane_ta_chain(const gnutls_datum_t *certs, unsigned ta, const char *host,
    const char *domain)
{
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t chain[16], ca = NULL;
	unsigned i, n = 0, status = 1;
	int ok = 0;

	if (ta == 0 || ta > 16)
		return 0;
	for (n = 0; n < ta; n++) {
		if (gnutls_x509_crt_init(&chain[n]) < 0)
			goto out;
		if (gnutls_x509_crt_import(chain[n], &certs[n],
		    GNUTLS_X509_FMT_DER) < 0) {
			n++;
			goto out;
		}
	}
	if (gnutls_x509_trust_list_init(&tl, 0) < 0)
		goto out;
	if (gnutls_x509_crt_init(&ca) < 0)
		goto out;
	if (gnutls_x509_crt_import(ca, &certs[ta], GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_trust_list_add_cas(tl, &ca, 1, 0) != 1) {
		gnutls_x509_crt_deinit(ca);
		goto out;
	}
	if (gnutls_x509_trust_list_verify_crt(tl, chain, ta, 0, &status,
	    NULL) < 0 || status != 0)
		goto out;
	ok = gnutls_x509_crt_check_hostname2(chain[0], host, 0) ||
	    (domain[0] != '\0' &&
	    gnutls_x509_crt_check_hostname2(chain[0], domain, 0));
out:
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	return ok;
}

/* 1 if one usable record authenticates the chain. */
static int
dane_verify(const struct tlsplan *p, const gnutls_datum_t *certs,
    unsigned n, const char *host)
{
	size_t i;
	unsigned k;

	for (i = 0; i < p->ntlsa; i++) {
		const struct dns_tlsa *t = &p->tlsa[i];

		if (t->usage == 3 && n > 0 && dane_match(t, &certs[0]))
			return 1;
		if (t->usage != 2)
			continue;
		for (k = 1; k < n; k++)
			if (dane_match(t, &certs[k]) &&
			    dane_ta_chain(certs, k, host,
			    p->by_mx ? p->domain : ""))
				return 1;
	}
	return 0;
}

int
tlsplan_check(struct tlsplan *p, gnutls_session_t s, const char *host,
    const char *addr, const char *peer, struct client_result *res)
{
	const gnutls_datum_t *certs;
	gnutls_datum_t out;
	unsigned int n = 0, status = 0;
	const char *failure;
	char detail[256];
	int r;

	switch (p->kind) {
	case HOST_DANE:
		certs = gnutls_certificate_get_peers(s, &n);
		if (certs == NULL || !dane_verify(p, certs, n, host)) {
			plan_result(res, peer,
			    "DANE: the certificate of %s matches none of its "
			    "TLSA records", peer);
			plan_event(p, host, addr, "validation-failure",
			    res->text);
			return -1;
		}
		p->authed = "DANE";
		break;
	case HOST_DANE_ENCRYPT:
		p->authed = "unverified (no usable TLSA record)";
		break;
	case HOST_STS:
		r = gnutls_certificate_verify_peers3(s, host, &status);
		if (r == 0 && status == 0) {
			p->authed = "MTA-STS";
			break;
		}
		failure = status & GNUTLS_CERT_EXPIRED ?
		    "certificate-expired" :
		    status & GNUTLS_CERT_UNEXPECTED_OWNER ?
		    "certificate-host-mismatch" :
		    status & (GNUTLS_CERT_SIGNER_NOT_FOUND |
		    GNUTLS_CERT_SIGNER_NOT_CA) ? "certificate-not-trusted" :
		    "validation-failure";
		detail[0] = '\0';
		if (r < 0)
			str_lcpy(detail, gnutls_strerror(r), sizeof(detail));
		else if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &out, 0) == 0) {
			str_lcpy(detail, (const char *)out.data,
			    sizeof(detail));
			gnutls_free(out.data);
		}
		plan_result(res, peer,
		    "MTA-STS: certificate of %s not accepted: %s", peer,
		    detail);
		plan_event(p, host, addr, failure, res->text);
		if (p->sts.mode == STS_MODE_ENFORCE)
			return -1;
		/* testing: reported, and the mail goes on. */
		memset(res, 0, sizeof(*res));
		p->authed = "unverified (MTA-STS testing)";
		return 0;
	default:
		p->authed = p->verify ? "verified" : "unverified";
		break;
	}
	plan_event(p, host, addr, NULL, NULL);
	return 0;
}

void
tlsplan_fail(struct tlsplan *p, const char *host, const char *addr,
    const char *failure, const char *detail)
{
	plan_event(p, host, addr, failure, detail);
}

const char *
tlsplan_auth(const struct tlsplan *p, int tls_active)
{
	if (!tls_active)
		return "none";
	return p->authed != NULL ? p->authed : p->verify ? "verified" :
	    "unverified";
}
