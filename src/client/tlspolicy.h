/*
 * tlspolicy: which TLS each server of a destination gets, inside the
 * client library.
 *
 * client_connect() makes one plan per destination: tlsplan_domain() when
 * the MX hosts are known (MTA-STS policy), tlsplan_host() before a host's
 * addresses are tried (TLSA records; it sets the tls, tls_verify and
 * tls_fallback options for that host), tlsplan_check() after each TLS
 * handshake (the certificate against the TLSA records or the web PKI),
 * tlsplan_fail() for failures seen elsewhere.  Outcomes go to the
 * caller's tls_event hook for TLS reports.
 */
#ifndef TLSPOLICY_H
#define TLSPOLICY_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "client.h"

struct tlsplan;

struct tlsplan *tlsplan_new(const struct client_opts *);
void	tlsplan_free(struct tlsplan *);
/*
 * The destination: a mail domain whose MX answer was (mx_secure) or was
 * not DNSSEC-validated, or a host name (by_mx 0).
 */
void	tlsplan_domain(struct tlsplan *, const char *dest, int by_mx,
	    int mx_secure, void (*debug)(void *, const char *), void *arg);
/*
 * Before host is tried: sets o->tls, o->tls_verify and o->tls_fallback.
 * 0, or -1 when the host must be skipped (res says why; a temporary
 * failure).
 */
int	tlsplan_host(struct tlsplan *, struct client_opts *o, const char *host,
	    uint16_t port, struct client_result *res);
/* 1 if the TLS credentials need the trust store (web PKI checks). */
int	tlsplan_wants_trust(const struct tlsplan *);
/*
 * After a TLS handshake with host (at addr): 0 the session may be used,
 * -1 not (res filled; a temporary failure).
 */
int	tlsplan_check(struct tlsplan *, gnutls_session_t, const char *host,
	    const char *addr, const char *peer, struct client_result *res);
/* A TLS failure seen by the caller (an RFC 8460 result type). */
void	tlsplan_fail(struct tlsplan *, const char *host, const char *addr,
	    const char *failure, const char *detail);
/* What authenticated the session ("DANE", ...; see client_tls_auth). */
const char *tlsplan_auth(const struct tlsplan *, int tls_active);

#endif
