/*
 * A new connection's setup: EHLO and its extensions, STARTTLS (or TLS on
 * connect) as the TLS policy asks, and AUTH (RFC 4954).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "client.h"
#include "client_int.h"
#include "clientext.h"
#include "dial.h"
#include "pin.h"
#include "reply.h"
#include "tlspolicy.h"
#include "lib/dns.h"
#include "lib/lineio.h"
#include "lib/net.h"

static void	client_parse_caps(struct client_conn *, const struct str *);
static int	client_b64(const void *, size_t, struct str *);

/* The EHLO reply's extensions (RFC 5321 4.1.1.1). */
static void
client_parse_caps(struct client_conn *c, const struct str *lines)
{
	const char *p = str_cstr(lines), *nl, *kw;
	char word[32];
	size_t n, wl;
	int first = 1;

	c->caps = 0;
	c->size_max = 0;
	memset(&c->limits, 0, sizeof(c->limits));
	c->auth[0] = '\0';
	for (; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		n = (size_t)(nl - p);
		if (first) {
			first = 0;	/* the greeting line */
			continue;
		}
		for (wl = 0; wl < n && p[wl] != ' ' && p[wl] != '=' &&
		    wl + 1 < sizeof(word); wl++)
			word[wl] = (char)toupper((unsigned char)p[wl]);
		word[wl] = '\0';
		kw = p + wl;
		if (strcmp(word, "PIPELINING") == 0)
			c->caps |= CAP_PIPELINING;
		else if (strcmp(word, "8BITMIME") == 0)
			c->caps |= CAP_8BITMIME;
		else if (strcmp(word, "SMTPUTF8") == 0)
			c->caps |= CAP_SMTPUTF8;
		else if (strcmp(word, "STARTTLS") == 0)
			c->caps |= CAP_STARTTLS;
		else if (strcmp(word, "DSN") == 0)
			c->caps |= CAP_DSN;
		else if (strcmp(word, "REQUIRETLS") == 0)
			c->caps |= CAP_REQUIRETLS;
		else if (strcmp(word, "LIMITS") == 0 && kw < nl)
			clientext_limits_parse(kw + 1, (size_t)(nl - kw - 1),
			    &c->limits);
		else if (strcmp(word, "SIZE") == 0) {
			c->caps |= CAP_SIZE;
			if (kw < nl && *kw == ' ')
				c->size_max = strtoull(kw + 1, NULL, 10);
		} else if (strcmp(word, "AUTH") == 0 && kw < nl) {
			/* Also the old "AUTH=LOGIN PLAIN" form. */
			size_t have = strlen(c->auth);
			size_t add = (size_t)(nl - kw - 1);

			c->caps |= CAP_AUTH;
			if (have + add + 2 < sizeof(c->auth)) {
				if (have > 0)
					c->auth[have++] = ' ';
				memcpy(c->auth + have, kw + 1, add);
				c->auth[have + add] = '\0';
			}
		}
	}
}

enum try_result
client_ehlo(struct client_conn *c, struct client_result *res)
{
	struct reply r;
	struct str lines;
	int rc;

	const char *verb = c->opts.lmtp ? "LHLO" : "EHLO";

	str_init(&lines, 65536);
	if (client_cmd(c, NULL, "%s %s", verb, c->opts.helo) == -1 ||
	    (rc = client_reply(c, &r, &lines, c->opts.command_timeout)) == -1) {
		str_free(&lines);
		client_set(res, CLIENT_PH_EHLO, CLIENT_CAUSE_NETWORK, 1,
		    c->peer, "%s: connection lost: %s", verb, strerror(errno));
		return TRY_NEXT;
	}
	if (rc == -2) {
		str_free(&lines);
		client_set(res, CLIENT_PH_EHLO, CLIENT_CAUSE_PROTOCOL, 0,
		    c->peer, "%s: the reply is not SMTP", verb);
		return TRY_NEXT;
	}
	if (r.code / 100 == 2) {
		client_parse_caps(c, &lines);
		str_lcpy(c->ehlo, str_cstr(&lines), sizeof(c->ehlo));
		str_free(&lines);
		return TRY_OK;
	}
	str_free(&lines);
	/* RFC 2033 4.1: LMTP has no HELO to fall back to. */
	if (r.code / 100 == 5 && !c->broken && !c->opts.lmtp) {
		/* An old server: RFC 5321 3.2. */
		c->caps = 0;
		c->ehlo[0] = '\0';
		if (client_cmd(c, NULL, "HELO %s", c->opts.helo) == -1 ||
		    (rc = client_reply(c, &r, NULL,
		    c->opts.command_timeout)) == -1) {
			client_set(res, CLIENT_PH_EHLO, CLIENT_CAUSE_NETWORK, 1,
			    c->peer, "HELO: connection lost: %s",
			    strerror(errno));
			return TRY_NEXT;
		}
		if (rc == 0 && r.code / 100 == 2)
			return TRY_OK;
		if (rc == -2) {
			client_set(res, CLIENT_PH_EHLO, CLIENT_CAUSE_PROTOCOL,
			    0, c->peer, "HELO: the reply is not SMTP");
			return TRY_NEXT;
		}
		client_set_reply(res, c->peer, CLIENT_PH_EHLO, &r, "HELO %s",
		    c->opts.helo);
		return TRY_NEXT;
	}
	client_set_reply(res, c->peer, CLIENT_PH_EHLO, &r, "%s %s", verb,
	    c->opts.helo);
	return TRY_NEXT;
}

/*
 * The TLS layer's reads, noting the first bytes (see tls_first); writes
 * stay GnuTLS's own on the descriptor.
 */
static ssize_t
client_tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct client_conn *c = p;
	ssize_t n;
	size_t k;

	n = recv(c->fd, buf, len, 0);
	if (n > 0 && c->tls_seen < sizeof(c->tls_first)) {
		k = sizeof(c->tls_first) - c->tls_seen;
		if ((size_t)n < k)
			k = (size_t)n;
		memcpy(c->tls_first + c->tls_seen, buf, k);
		c->tls_seen += k;
	}
	return n;
}

static int
client_tls_wait(gnutls_transport_ptr_t p, unsigned int ms)
{
	const struct client_conn *c = p;

	return net_poll_in(c->fd, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 :
	    ms > INT_MAX ? INT_MAX : (int)ms);
}

/* 1 if what the TLS layer read first looks like an SMTP reply. */
static int
client_tls_got_smtp(const struct client_conn *c)
{
	const char *b = c->tls_first;

	return c->tls_seen == sizeof(c->tls_first) && b[0] >= '2' &&
	    b[0] <= '5' && isdigit((unsigned char)b[1]) &&
	    isdigit((unsigned char)b[2]) && (b[3] == ' ' || b[3] == '-');
}

enum try_result
client_tls_start(struct client_conn *c, int implicit,
    struct client_result *res)
{
	const struct client_opts *o = &c->opts;
	const gnutls_datum_t *certs;
	gnutls_datum_t out;
	unsigned int ncerts, status;
	char have[PIN_HAVE_MAX], *desc;
	int r, verify = o->tls_verify && o->tls_pin == NULL, tries;

	if (!c->tls_inited) {
		if ((r = gnutls_global_init()) < 0) {
			client_set(res, CLIENT_PH_STARTTLS,
			    CLIENT_CAUSE_SOFTWARE, 0, c->peer, "TLS: %s",
			    gnutls_strerror(r));
			return TRY_STOP;
		}
		c->tls_inited = 1;
	}
	if (c->cred == NULL) {
		r = gnutls_certificate_allocate_credentials(&c->cred);
		if (r < 0) {
			client_set(res, CLIENT_PH_STARTTLS,
			    CLIENT_CAUSE_SOFTWARE, 0, c->peer, "TLS: %s",
			    gnutls_strerror(r));
			return TRY_STOP;
		}
		if ((verify || tlsplan_wants_trust(c->plan)) && (r =
		    gnutls_certificate_set_x509_system_trust(c->cred)) < 0) {
			client_set(res, CLIENT_PH_STARTTLS, CLIENT_CAUSE_CONFIG,
			    0, c->peer,
			    "TLS: cannot load the system trust store: %s",
			    gnutls_strerror(r));
			return TRY_STOP;
		}
		if (o->tls_cafile != NULL && (r =
		    gnutls_certificate_set_x509_trust_file(c->cred,
		    o->tls_cafile, GNUTLS_X509_FMT_PEM)) <= 0) {
			client_set(res, CLIENT_PH_STARTTLS, CLIENT_CAUSE_CONFIG,
			    0, c->peer, "TLS: cannot load CA file %s: %s",
			    o->tls_cafile, r == 0 ? "no certificates in it" :
			    gnutls_strerror(r));
			return TRY_STOP;
		}
	}
	if ((r = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)) < 0 ||
	    (r = gnutls_set_default_priority(c->tls)) < 0 ||
	    (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
	    c->cred)) < 0 ||
	    (!c->literal && (r = gnutls_server_name_set(c->tls,
	    GNUTLS_NAME_DNS, c->host, strlen(c->host))) < 0)) {
		client_set(res, CLIENT_PH_STARTTLS, CLIENT_CAUSE_SOFTWARE, 0,
		    c->peer, "TLS: %s", gnutls_strerror(r));
		return TRY_STOP;
	}
	if (verify)
		gnutls_session_set_verify_cert(c->tls, c->host, 0);
	gnutls_transport_set_ptr2(c->tls, c, (gnutls_transport_ptr_t)
	    (intptr_t)c->fd);
	gnutls_transport_set_pull_function(c->tls, client_tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, client_tls_wait);
	c->tls_seen = 0;
	gnutls_handshake_set_timeout(c->tls, o->command_timeout * 1000);
	lineio_set_timeout(c->io, (int)o->command_timeout * 1000);
	tries = 0;
	do {
		r = gnutls_handshake(c->tls);
	} while (r < 0 && !gnutls_error_is_fatal(r) && ++tries < 1000);
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		status = gnutls_session_get_verify_cert_status(c->tls);
		desc = NULL;
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &out, 0) == 0)
			desc = (char *)out.data;
		client_set(res, CLIENT_PH_STARTTLS, CLIENT_CAUSE_TLS_VERIFY, 0,
		    c->peer, "TLS: certificate of %s not accepted: %s", c->host,
		    desc != NULL ? desc : "verification failed");
		gnutls_free(desc);
		tlsplan_fail(c->plan, c->host, c->addr, "validation-failure",
		    res->text);
		certs = gnutls_certificate_get_peers(c->tls, &ncerts);
		if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
			res->hint = CLIENT_HINT_UNKNOWN_CA;
			if (certs != NULL && ncerts > 0 &&
			    pin_spki(certs[0].data, certs[0].size,
			    res->peer_pin, sizeof(res->peer_pin)) == -1)
				res->peer_pin[0] = '\0';
		}
		c->broken = 1;
		return TRY_NEXT;
	}
	if (r < 0) {
		int temp = r == GNUTLS_E_PULL_ERROR ||
		    r == GNUTLS_E_PUSH_ERROR ||
		    r == GNUTLS_E_PREMATURE_TERMINATION ||
		    r == GNUTLS_E_TIMEDOUT || r == GNUTLS_E_AGAIN;

		client_set(res, CLIENT_PH_STARTTLS, temp ? CLIENT_CAUSE_NETWORK
		    : CLIENT_CAUSE_PROTOCOL, temp, c->peer,
		    "TLS handshake failed: %s", gnutls_strerror(r));
		tlsplan_fail(c->plan, c->host, c->addr, "validation-failure",
		    res->text);
		if (implicit && client_tls_got_smtp(c)) {
			snprintf(res->text, sizeof(res->text), "TLS handshake "
			    "failed: the server greeted in plain text "
			    "(\"%.3s\")", c->tls_first);
			res->hint = CLIENT_HINT_PLAIN_SMTP;
		}
		c->broken = 1;
		return TRY_NEXT;
	}
	if (o->tls_pin != NULL) {
		certs = gnutls_certificate_get_peers(c->tls, &ncerts);
		r = certs == NULL || ncerts == 0 ? -1 :
		    pin_check(o->tls_pin, certs[0].data, certs[0].size, have,
		    sizeof(have));
		if (r == -1) {
			client_set(res, CLIENT_PH_STARTTLS,
			    CLIENT_CAUSE_TLS_VERIFY, 0, c->peer,
			    "TLS: no certificate to check against the pin");
			c->broken = 1;
			return TRY_NEXT;
		}
		if (r == 0) {
			client_set(res, CLIENT_PH_STARTTLS,
			    CLIENT_CAUSE_TLS_VERIFY, 0, c->peer,
			    "TLS: certificate of %s has %s, not the pinned one",
			    c->host, have);
			c->broken = 1;
			return TRY_NEXT;
		}
	}
	if (tlsplan_check(c->plan, c->tls, c->host, c->addr, c->peer,
	    res) == -1) {
		c->broken = 1;
		return TRY_NEXT;
	}
	lineio_set_tls(c->io, c->tls);
	if (c->opts.debug && (desc = gnutls_session_get_desc(c->tls)) != NULL) {
		char note[256];
		const char *how = tlsplan_auth(c->plan, 1);
		int n = snprintf(note, sizeof(note), "TLS %s%s%s", desc,
		    verify ? ", certificate verified" :
		    o->tls_pin != NULL ? ", certificate matches the pin" :
		    how[0] == 'u' ? ", certificate not checked" :
		    ", certificate authenticated by ", verify ||
		    o->tls_pin != NULL || how[0] == 'u' ? "" : how);

		client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
		gnutls_free(desc);
	}
	return TRY_OK;
}

/* ---------------------------------------------------------------- */
/* AUTH (RFC 4954) */

int
client_pick_mech(const char *offered, int tls, int cleartext_ok, int xoauth2,
    enum client_auth_mech forced)
{
	static const struct {
		const char		*name;
		enum client_auth_mech	 mech;
	} mechs[] = {
		{ "PLAIN", CLIENT_AUTH_PLAIN },
		{ "LOGIN", CLIENT_AUTH_LOGIN },
		{ "CRAM-MD5", CLIENT_AUTH_CRAM_MD5 },
		{ "XOAUTH2", CLIENT_AUTH_XOAUTH2 },
	};
	/* Best first: under TLS the one-round-trip PLAIN; in the clear
	 * only CRAM-MD5, which does not reveal the password. */
	static const enum client_auth_mech tls_order[] = { CLIENT_AUTH_PLAIN,
	    CLIENT_AUTH_CRAM_MD5, CLIENT_AUTH_LOGIN };
	static const enum client_auth_mech clear_order[] = {
	    CLIENT_AUTH_CRAM_MD5, CLIENT_AUTH_PLAIN, CLIENT_AUTH_LOGIN };
	int have[5] = { 0 }, safe = tls || cleartext_ok;
	const char *p = offered;
	size_t i, n;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
			if (strlen(mechs[i].name) == n &&
			    strncasecmp(p, mechs[i].name, n) == 0)
				have[mechs[i].mech] = 1;
		p += n;
	}
	if (xoauth2)
		return have[CLIENT_AUTH_XOAUTH2] && safe ? CLIENT_AUTH_XOAUTH2 :
		    -1;
	if (forced != CLIENT_AUTH_AUTO) {
		if (forced == CLIENT_AUTH_XOAUTH2 || !have[forced])
			return -1;
		return forced == CLIENT_AUTH_CRAM_MD5 || safe ? (int)forced :
		    -1;
	}
	for (i = 0; i < 3; i++) {
		enum client_auth_mech m = tls ? tls_order[i] : clear_order[i];

		if (have[m] && (m == CLIENT_AUTH_CRAM_MD5 || safe))
			return (int)m;
	}
	return -1;
}

/* Appends base64 of p to out.  0 or -1. */
static int
client_b64(const void *p, size_t n, struct str *out)
{
	gnutls_datum_t in, enc;
	int r;

	in.data = (unsigned char *)(uintptr_t)p;
	in.size = (unsigned int)n;
	if (gnutls_base64_encode2(&in, &enc) < 0)
		return -1;
	r = str_append(out, enc.data, enc.size);
	str_wipe(enc.data, enc.size);
	gnutls_free(enc.data);
	return r;
}

/* Sends one AUTH step (a base64 line or a command) and reads the reply. */
static int
client_auth_step(struct client_conn *c, const char *shown, const char *line,
    struct reply *r)
{
	if (client_cmd(c, shown, "%s", line) == -1)
		return -1;
	return client_reply(c, r, NULL, c->opts.command_timeout);
}

enum try_result
client_auth(struct client_conn *c, struct client_result *res)
{
	static const char *names[] = { "", "PLAIN", "LOGIN", "CRAM-MD5",
	    "XOAUTH2" };
	const struct client_opts *o = &c->opts;
	struct reply r;
	struct str buf, line;
	gnutls_datum_t chal_in, chal;
	unsigned char digest[16];
	char hex[33];
	int mech, rc = -1, tls = c->tls != NULL;
	size_t i;

	if (!(c->caps & CAP_AUTH) || c->auth[0] == '\0') {
		client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_AUTH, 0, c->peer,
		    "AUTH: the server does not offer authentication%s",
		    tls || o->tls == CLIENT_TLS_NONE ? "" :
		    " (before TLS)");
		return TRY_STOP;
	}
	mech = client_pick_mech(c->auth, tls, o->auth_cleartext_ok,
	    o->auth_xoauth2, o->auth_mech);
	if (mech < 0) {
		client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_AUTH, 0, c->peer,
		    "AUTH: no usable mechanism; the server offers \"%s\"%s",
		    c->auth, !tls && !o->auth_cleartext_ok ?
		    " (PLAIN, LOGIN and XOAUTH2 need TLS unless cleartext "
		    "authentication is allowed)" : "");
		return TRY_STOP;
	}
	str_init(&buf, CLIENT_CMD_MAX);
	str_init(&line, CLIENT_CMD_MAX);
	switch (mech) {
	case CLIENT_AUTH_PLAIN:
		/* RFC 4616: authzid NUL authcid NUL passwd */
		if (str_appendc(&buf, '\0') == 0 &&
		    str_appends(&buf, o->auth_user) == 0 &&
		    str_appendc(&buf, '\0') == 0 &&
		    str_appends(&buf, o->auth_secret) == 0 &&
		    str_appends(&line, "AUTH PLAIN ") == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "AUTH PLAIN ********", line.s,
			    &r);
		break;
	case CLIENT_AUTH_LOGIN:
		rc = client_auth_step(c, NULL, "AUTH LOGIN", &r);
		if (rc == 0 && r.code == 334 &&
		    client_b64(o->auth_user, strlen(o->auth_user), &line) == 0)
			rc = client_auth_step(c, NULL, line.s, &r);
		str_clear(&line);
		if (rc == 0 && r.code == 334 &&
		    client_b64(o->auth_secret, strlen(o->auth_secret),
		    &line) == 0)
			rc = client_auth_step(c, "********", line.s, &r);
		break;
	case CLIENT_AUTH_CRAM_MD5:
		rc = client_auth_step(c, NULL, "AUTH CRAM-MD5", &r);
		if (rc != 0 || r.code != 334)
			break;
		chal_in.data = (unsigned char *)r.text;
		chal_in.size = (unsigned int)strlen(r.text);
		if (gnutls_base64_decode2(&chal_in, &chal) < 0) {
			(void)client_auth_step(c, NULL, "*", &r);
			client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_PROTOCOL,
			    0, c->peer,
			    "AUTH CRAM-MD5: the challenge is not base64");
			str_free(&buf);
			str_free(&line);
			return TRY_STOP;
		}
		/* RFC 2195: user SP hex(HMAC-MD5(secret, challenge)) */
		rc = gnutls_hmac_fast(GNUTLS_MAC_MD5, o->auth_secret,
		    strlen(o->auth_secret), chal.data, chal.size, digest);
		gnutls_free(chal.data);
		if (rc < 0) {
			(void)client_auth_step(c, NULL, "*", &r);
			client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_SOFTWARE,
			    0, c->peer, "AUTH CRAM-MD5: %s",
			    gnutls_strerror(rc));
			str_free(&buf);
			str_free(&line);
			return TRY_STOP;
		}
		for (i = 0; i < sizeof(digest); i++)
			snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x",
			    digest[i]);
		rc = -1;
		if (str_appendf(&buf, "%s %s", o->auth_user, hex) == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "********", line.s, &r);
		str_wipe(digest, sizeof(digest));
		break;
	case CLIENT_AUTH_XOAUTH2:
		if (str_appendf(&buf, "user=%s\001auth=Bearer %s\001\001",
		    o->auth_user, o->auth_secret) == 0 &&
		    str_appends(&line, "AUTH XOAUTH2 ") == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "AUTH XOAUTH2 ********",
			    line.s, &r);
		/* A 334 carries the error details; answer with an empty
		 * line to get the final reply. */
		if (rc == 0 && r.code == 334)
			rc = client_auth_step(c, NULL, "", &r);
		break;
	}
	if (buf.s != NULL)
		str_wipe(buf.s, buf.len);
	if (line.s != NULL)
		str_wipe(line.s, line.len);
	str_free(&buf);
	str_free(&line);
	if (rc == -1) {
		client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_NETWORK, 1,
		    c->peer, "AUTH %s: connection lost: %s", names[mech],
		    strerror(errno));
		return TRY_STOP;
	}
	if (rc == -2) {
		client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_PROTOCOL, 0,
		    c->peer, "AUTH %s: the reply is not SMTP", names[mech]);
		return TRY_STOP;
	}
	if (r.code == 235)
		return TRY_OK;
	if (r.code == 334) {
		/* The server wants more than the mechanism has: cancel. */
		(void)client_auth_step(c, NULL, "*", &r);
		client_set(res, CLIENT_PH_AUTH, CLIENT_CAUSE_PROTOCOL, 0,
		    c->peer, "AUTH %s: unexpected challenge", names[mech]);
		return TRY_STOP;
	}
	client_set_reply(res, c->peer, CLIENT_PH_AUTH, &r,
	    "AUTH %s as %s refused", names[mech], o->auth_user);
	return TRY_STOP;
}

