/*
 * guard: what keeps a session from holding a connection without using
 * it (a deadline for each command line, a deadline and a minimum rate
 * for message data), and the names of the ways a session can end, as the
 * disconnect log line gives them (listed in smtpd(8)).
 */
#ifndef GUARD_H
#define GUARD_H

#include "lib/lineio.h"
#include "policy/policy.h"

enum session_end {
	END_NONE = 0,		/* not decided yet */
	END_QUIT,		/* the client said QUIT */
	END_CLIENT_CLOSED,	/* the client closed the connection */
	END_TIMEOUT,		/* the client sent nothing for too long */
	END_COMMAND_DEADLINE,	/* a command line took too long */
	END_DATA_DEADLINE,	/* a message transfer took too long */
	END_DATA_TOO_SLOW,	/* message data came in below the rate */
	END_IO_ERROR,		/* reading or writing failed */
	END_TLS_FAILED,		/* the TLS handshake failed */
	END_POLICY_DROP,	/* a policy rule dropped the connection */
	END_POLICY_REFUSED,	/* the policy refused the client (421) */
	END_TOO_MANY_ERRORS,	/* limits.errors reached */
	END_STARTTLS_INJECTION,	/* commands pipelined after STARTTLS */
	END_AUTH_BLOCKED,	/* too many AUTH failures from the client */
	END_BDAT_ERROR,		/* a BDAT without a usable size */
	END_HTTP_REQUEST,	/* a web request on the mail port */
	END_SHUTDOWN,		/* the server is shutting down */
	END_PROXY_HEADER,	/* a PROXY header where none is expected */
};

/* The word for the disconnect line: "quit", "client-closed", ... */
const char *guard_end_name(enum session_end);
/* Why the connection's last read or write gave up. */
enum session_end guard_io_end(const struct lineio *);
/* The 421 text for a session ending so (after "421 4.4.2 host "). */
const char *guard_end_text(enum session_end);
/* ... for a read that timed out: the text of its guard_io_end(). */
const char *guard_timeout_text(const struct lineio *);

/* Commands: the per-wait timeout, and the deadline for a whole line. */
void	guard_commands(struct lineio *, const struct policy *);
/* Message data from now on: data timeout, transfer deadline and rate. */
void	guard_data_begin(struct lineio *, const struct policy *);
/* Back to commands after the data. */
void	guard_data_end(struct lineio *, const struct policy *);

#endif
