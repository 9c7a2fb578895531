#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "client.h"
#include "dial.h"
#include "pin.h"
#include "probe.h"
#include "lib/str.h"

#define PROBE_CHAIN_MAX	16	/* certificates shown */

static void	probe_time(time_t, char *, size_t);
static void	probe_cert(unsigned, gnutls_x509_crt_t);
static void	probe_verify(gnutls_session_t, const char *,
		    const struct client_opts *);
static void	probe_peer_host(const char *, char *, size_t);

void
probe_tip(const struct client_result *res, int tflag, const struct dial *d,
    char *tip, size_t len)
{
	tip[0] = '\0';
	switch (res->hint) {
	case CLIENT_HINT_IMPLICIT_TLS:
		if (d->kind == DIAL_HOST)
			snprintf(tip, len, "the server may expect implicit "
			    "TLS: try -t");
		break;
	case CLIENT_HINT_PLAIN_SMTP:
		snprintf(tip, len, "%s", tflag ?
		    "try without -t (with -s for STARTTLS)" :
		    "this port takes plain SMTP: try -s on it, or port 587");
		break;
	case CLIENT_HINT_UNKNOWN_CA:
		if (res->peer_pin[0] != '\0')
			snprintf(tip, len, "give its CA with -o tls_cafile="
			    "FILE, or check the server's key and pin it with "
			    "-o tls_pin=%s", res->peer_pin);
		else
			snprintf(tip, len, "give its CA with -o tls_cafile="
			    "FILE, or pin the server's key with -o "
			    "tls_pin=...");
		break;
	case CLIENT_HINT_NONE:
		break;
	}
}

static void
probe_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		str_lcpy(buf, "unknown", len);
}

static void
probe_cert(unsigned i, gnutls_x509_crt_t crt)
{
	gnutls_datum_t dn;
	char from[64], until[64], san[256];
	size_t sl;
	unsigned k;
	int r;

	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
		printf("  %u subject: %.*s\n", i, (int)dn.size, dn.data);
		gnutls_free(dn.data);
	}
	if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) == 0) {
		printf("    issuer: %.*s\n", (int)dn.size, dn.data);
		gnutls_free(dn.data);
	}
	probe_time(gnutls_x509_crt_get_activation_time(crt), from,
	    sizeof(from));
	probe_time(gnutls_x509_crt_get_expiration_time(crt), until,
	    sizeof(until));
	printf("    valid: %s to %s\n", from, until);
	for (k = 0; k < 32; k++) {
		sl = sizeof(san);
		r = gnutls_x509_crt_get_subject_alt_name(crt, k, san, &sl,
		    NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r == GNUTLS_SAN_DNSNAME)
			printf("    name: %.*s\n", (int)sl, san);
		else if (r == GNUTLS_SAN_IPADDRESS && (sl == 4 || sl == 16)) {
			char a[64];

			if (inet_ntop(sl == 4 ? AF_INET : AF_INET6, san, a,
			    sizeof(a)) != NULL)
				printf("    address: %s\n", a);
		}
	}
}

/* "name" of "name [addr]", or addr of "[addr]": what the certificate
 * should name. */
static void
probe_peer_host(const char *peer, char *buf, size_t len)
{
	size_t n;

	if (peer[0] == '[') {
		n = strcspn(peer + 1, "]");
		peer++;
	} else
		n = strcspn(peer, " ");
	if (n >= len)
		n = len - 1;
	memcpy(buf, peer, n);
	buf[n] = '\0';
}

/*
 * The certificate against the trust store and tls_cafile, and the name,
 * checked here so that a failure still shows the chain; with advice.
 */
static void
probe_verify(gnutls_session_t s, const char *host,
    const struct client_opts *o)
{
	gnutls_x509_crt_t crts[PROBE_CHAIN_MAX];
	gnutls_x509_trust_list_t tl = NULL;
	const gnutls_datum_t *der;
	gnutls_datum_t out, sdn, idn;
	unsigned int n = 0, i, ncrt = 0, status = 0;
	char pin[PIN_HAVE_MAX];
	int r, self_signed = 0;

	der = gnutls_certificate_get_peers(s, &n);
	if (der == NULL || n == 0) {
		printf("Certificate: none sent\n");
		return;
	}
	printf("Certificate chain (%u sent):\n", n);
	for (i = 0; i < n && ncrt < PROBE_CHAIN_MAX; i++) {
		if (gnutls_x509_crt_init(&crts[ncrt]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[ncrt], &der[i],
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[ncrt]);
			printf("  %u: not an X.509 certificate\n", i);
			break;
		}
		probe_cert(i, crts[ncrt]);
		ncrt++;
	}
	if (ncrt == 0)
		return;
	if ((r = gnutls_x509_trust_list_init(&tl, 0)) < 0 ||
	    (r = gnutls_x509_trust_list_add_system_trust(tl, 0, 0)) < 0 ||
	    (o->tls_cafile != NULL && (r =
	    gnutls_x509_trust_list_add_trust_file(tl, o->tls_cafile, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0)) < 0) ||
	    (r = gnutls_x509_trust_list_verify_crt2(tl, crts, ncrt, NULL, 0,
	    0, &status, NULL)) < 0) {
		printf("Certificate check: cannot be made: %s\n",
		    gnutls_strerror(r));
		goto out;
	}
	if (!gnutls_x509_crt_check_hostname(crts[0], host))
		status |= GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER;
	if (status == 0) {
		printf("Certificate check: verified (%s%s), name %s matches\n",
		    "trust store", o->tls_cafile != NULL ? " and tls_cafile" :
		    "", host);
		goto out;
	}
	if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) == 0) {
		printf("Certificate check: failed: %s\n", out.data);
		gnutls_free(out.data);
	} else
		printf("Certificate check: failed\n");
	if (gnutls_x509_crt_get_dn3(crts[ncrt - 1], &sdn, 0) == 0) {
		if (gnutls_x509_crt_get_issuer_dn3(crts[ncrt - 1], &idn,
		    0) == 0) {
			self_signed = sdn.size == idn.size &&
			    memcmp(sdn.data, idn.data, sdn.size) == 0;
			gnutls_free(idn.data);
		}
		gnutls_free(sdn.data);
	}
	if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
		printf("Advice: the certificate is for other names than %s "
		    "(see above): connect by one of them, or give the server "
		    "a certificate for %s\n", host, host);
	if (status & GNUTLS_CERT_EXPIRED)
		printf("Advice: the certificate has expired: the server "
		    "needs a renewed one\n");
	if (status & GNUTLS_CERT_NOT_ACTIVATED)
		printf("Advice: the certificate is not valid yet: check the "
		    "clocks\n");
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
		if (self_signed)
			printf("Advice: the certificate is self-signed: trust "
			    "it with -o tls_cafile=FILE or pin it\n");
		else
			printf("Advice: the issuer of the last certificate "
			    "sent is not trusted here.  If it is an "
			    "intermediate CA, the server does not send it: "
			    "add it to the server's certificate file after "
			    "its own.  If it is a private CA, give it with -o "
			    "tls_cafile=FILE\n");
		if (pin_spki(der[0].data, der[0].size, pin, sizeof(pin)) == 0)
			printf("Advice: or, once the key is known to be "
			    "right, pin it: -o tls_pin=%s\n", pin);
	}
out:
	if (tl != NULL)
		gnutls_x509_trust_list_deinit(tl, 1);
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
}

/* One connection attempt as the probe makes it. */
static struct client_conn *
probe_connect(const char *dest, struct client_opts *o, int implicit,
    struct client_result *res)
{
	o->tls = implicit ? CLIENT_TLS_IMPLICIT : CLIENT_TLS_OPPORTUNISTIC;
	return client_connect(dest, o, res);
}

int
probe_run(const char *dest, const struct dial *d, struct client_opts *o,
    int tflag)
{
	struct client_conn *c;
	struct client_result res, again;
	const char *p, *nl, *how;
	gnutls_session_t s;
	char tip[256], host[CLIENT_HOST_MAX], *desc;
	int implicit = tflag, auth = 0;

	/* The probe checks the certificate itself, to show the chain even
	 * when it fails; DANE and MTA-STS stay the policy's. */
	o->tls_verify = 0;
	o->tls_pin = NULL;
	o->tls_fallback = 0;
	o->auth_user = NULL;
	if (o->tls_policy == CLIENT_TLSPOL_VERIFY ||
	    o->tls_policy == CLIENT_TLSPOL_ENCRYPT ||
	    o->tls_policy == CLIENT_TLSPOL_NONE)
		o->tls_policy = CLIENT_TLSPOL_DEFAULT;
	if ((c = probe_connect(dest, o, implicit, &res)) == NULL) {
		probe_tip(&res, tflag, d, tip, sizeof(tip));
		fprintf(stderr, "smtp: %s: %s%s%s\n", res.host, res.text,
		    tip[0] != '\0' ? "; " : "", tip);
		/* The classic mix-up of ports: try the other way. */
		if (res.hint != CLIENT_HINT_IMPLICIT_TLS &&
		    res.hint != CLIENT_HINT_PLAIN_SMTP)
			return client_exit_status(&res);
		implicit = res.hint == CLIENT_HINT_IMPLICIT_TLS;
		if ((c = probe_connect(dest, o, implicit, &again)) == NULL) {
			fprintf(stderr, "smtp: %s: %s\n", again.host,
			    again.text);
			return client_exit_status(&res);
		}
		printf("Advice: %s\n", implicit ? "this port speaks TLS "
		    "from the start (implicit TLS, as on port 465): use -t" :
		    "this port speaks plain SMTP first, with STARTTLS (as on "
		    "ports 25 and 587): use -s, not -t");
	}
	printf("Server: %s\n", client_peer(c));
	printf("Greeting: %s\n", client_greeting(c));
	s = client_tls_session(c);
	if (s != NULL) {
		printf("TLS: %s (%s), cipher %s\n", implicit ? "implicit" :
		    "STARTTLS", gnutls_protocol_get_name(
		    gnutls_protocol_get_version(s)), gnutls_cipher_get_name(
		    gnutls_cipher_get(s)));
		if ((desc = gnutls_session_get_desc(s)) != NULL) {
			printf("TLS session: %s\n", desc);
			gnutls_free(desc);
		}
		probe_peer_host(client_peer(c), host, sizeof(host));
		probe_verify(s, host, o);
		how = client_tls_auth(c);
		if (strcmp(how, "DANE") == 0 || strcmp(how, "MTA-STS") == 0)
			printf("Policy: authenticated by %s\n", how);
		else if (o->tls_policy != CLIENT_TLSPOL_DEFAULT)
			printf("Policy: %s: %s\n", client_tls_policy_name(
			    o->tls_policy), how);
	} else
		printf("TLS: none (no STARTTLS offered)\n");
	p = client_ehlo_reply(c);
	if (*p == '\0')
		printf("Extensions: none (EHLO refused, HELO used)\n");
	else {
		printf("Extensions:\n");
		/* The first line greets us back. */
		if ((nl = strchr(p, '\n')) != NULL)
			p = nl + 1;
		for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			printf("  %.*s\n", (int)(nl - p), p);
			if (nl - p > 5 && strncmp(p, "AUTH ", 5) == 0) {
				printf("AUTH mechanisms: %.*s\n",
				    (int)(nl - p - 5), p + 5);
				auth = 1;
			}
		}
	}
	if (!auth)
		printf("AUTH mechanisms: none offered%s\n", s == NULL ?
		    " (many servers offer AUTH only under TLS)" : "");
	if (s == NULL && d->kind == DIAL_HOST)
		printf("Advice: no TLS: passwords and mail would cross the "
		    "network in the clear\n");
	client_quit(&c);
	return EX_OK;
}
