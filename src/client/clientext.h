/*
 * clientext: what the client library makes of two service extensions,
 * kept apart from the protocol engine in client.c.
 *
 * LIMITS (RFC 9422): the next hop's RCPTMAX and MAILMAX, so that a
 * message's recipients are split over several transactions and a
 * connection is closed after MAILMAX of them, instead of meeting 452s.
 *
 * REQUIRETLS (RFC 8689 4.2.1): whether a session may carry a message
 * that asked for it.
 */
#ifndef CLIENTEXT_H
#define CLIENTEXT_H

#include <stddef.h>

#define CLIENTEXT_LIMIT_MAX	999999	/* a larger value is taken as none */

struct clientext_limits {
	unsigned int	rcptmax;	/* recipients a transaction; 0: none */
	unsigned int	mailmax;	/* transactions a session; 0: none */
};

/*
 * Parses the parameters of a LIMITS EHLO line ("RCPTMAX=10 MAILMAX=3",
 * len bytes, not NUL-ended) into *l.  Unknown names and malformed values
 * are ignored (RFC 9422 3: a client ignores what it does not know).
 */
void	clientext_limits_parse(const char *params, size_t len,
	    struct clientext_limits *l);

/*
 * RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS whose
 * certificate was authenticated by DANE, an MTA-STS policy or a trust
 * chain with the host name checked (tls_auth as client_tls_auth() gives
 * it; a pinned key checks no name and does not count), to a server that
 * offers REQUIRETLS after STARTTLS.  1 when it may; else 0 with the
 * reason in why.
 */
int	clientext_requiretls_ok(int tls_active, const char *tls_auth,
	    int pinned, int offered, char *why, size_t whylen);

#endif
