/*
 * dovecot: Dovecot's authentication service as a password checker and a
 * user database, over its unix sockets (the Dovecot auth protocol v1:
 * tab-separated lines, one request per connection).
 *
 *	dovecot_auth_verify()	the auth-client socket: a PLAIN
 *				authentication that Dovecot's passdb checks
 *	dovecot_user_exists()	the auth-userdb (or auth-master) socket:
 *				a USER lookup in Dovecot's userdb
 *
 * Both open their own connection and close it before returning, so they
 * are safe to call from any number of threads at once and keep no state
 * between calls.  Each call is bounded: lines of at most DOVECOT_LINE_MAX
 * bytes, DOVECOT_TIMEOUT seconds in all.  Neither the password nor
 * anything derived from it is logged; problems with Dovecot (down,
 * refusing, speaking something else) are logged as errors and answered
 * with a temporary failure.
 */
#ifndef DOVECOT_H
#define DOVECOT_H

#include <stddef.h>

#include "auth/secrets.h"

#define DOVECOT_LINE_MAX	16384	/* the protocol's expected line limit */
#define DOVECOT_TIMEOUT		30	/* seconds for one whole request */
#define DOVECOT_DEF_SOCKET	"/run/dovecot/auth-client"
#define DOVECOT_DEF_USERDB	"/run/dovecot/auth-userdb"

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

enum dovecot_user {
	DOVECOT_USER_NO = 0,	/* the userdb does not know the user */
	DOVECOT_USER_YES,	/* it does */
	DOVECOT_USER_TEMPFAIL,	/* cannot tell now: answer 4xx */
};

/*
 * Looks user up (as given: "bob" or "bob@example.com", Dovecot's
 * username_format decides what counts) in Dovecot's userdb through the
 * socket at path: auth-userdb (enough for lookups) or auth-master.
 * Meant for recipient verification at RCPT.
 */
enum dovecot_user dovecot_user_exists(const char *path, const char *user);

#endif
