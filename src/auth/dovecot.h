/*
 * dovecot: Dovecot's authentication service as a password checker, over
 * its auth-client socket (the Dovecot auth protocol v1, in
 * src/lib/dovecot_proto.c; the userdb side is the "dovecot:" table).
 *
 * dovecot_auth_verify() opens its own connection and closes it before
 * returning, so it is safe to call from any number of threads at once
 * and keeps no state between calls.  Each call is bounded: lines of at
 * most DOVECOT_LINE_MAX bytes, DOVECOT_TIMEOUT seconds in all.  Neither
 * the password nor
 * anything derived from it is logged; problems with Dovecot (down,
 * refusing, speaking something else) are logged as errors and answered
 * with a temporary failure.
 */
#ifndef DOVECOT_H
#define DOVECOT_H

#include <stddef.h>

#include "auth/secrets.h"

#define DOVECOT_TIMEOUT		30	/* seconds for one whole request */
#define DOVECOT_DEF_SOCKET	"/run/dovecot/auth-client"

/*
 * Asks Dovecot, through the auth-client socket at path, whether pass
 * (passlen bytes) is user's password.  The request says service "smtp"
 * and "secured": smtpd has already decided that a password may be sent
 * on this connection (TLS or -p).  SECRETS_OK, SECRETS_FAIL (unknown
 * user, wrong password, account disabled), or SECRETS_TEMPFAIL (Dovecot
 * unreachable, a timeout, a temporary failure in its passdb).
 */
enum secrets_status dovecot_auth_verify(const char *path, const char *user,
	    const void *pass, size_t passlen);

#endif
