/*
 * session: one SMTP conversation, from greeting to QUIT, on a pair of file
 * descriptors.  The same code serves stdio mode and the daemon's workers.
 */
#ifndef SESSION_H
#define SESSION_H

#include <sys/socket.h>

#include <stdatomic.h>

#include "policy/policy.h"
#include "queue/spool.h"
#include "guard.h"

struct session_conf {
	int			 rfd, wfd;
	/* The client's address; ss_family AF_UNSPEC when unknown. */
	struct sockaddr_storage	 peer;
	/* The snapshot the session runs with, and its policy section. */
	struct config		*config;	/* NULL: no TLS, no secrets */
	struct policy		*policy;
	struct spool		*spool;
	struct policy_state	*state;		/* greylisting, rates; may be NULL */
	struct throttle		*throttle;	/* AUTH failures; may be NULL */
	int			 implicit_tls;	/* TLS before the greeting (465) */
	int			 listen_flags;	/* LISTEN_* (server.h); 0: policy's */
	/* " proxy=addr:port ..." for the connect line, or NULL. */
	const char		*via;
	const char		*mailer;	/* -m: hand messages to this program */
	/*
	 * A session waiting this long for a command is handed back to the
	 * server (session_continue() returns SESSION_PARK); 0: never.
	 */
	int			 park_ms;
	/*
	 * Workers now serving sessions, and how many of them make a session
	 * with nothing to read park at once, without the park time; NULL:
	 * never at once.
	 */
	const atomic_uint	*busy;
	unsigned int		 park_busy;
	int			 single;	/* the only session in this process */
	/* Set by the server when it is shutting down: the session says 421. */
	const atomic_int	*stopping;
	/*
	 * Called once the session is over, before its last reply is sent:
	 * a client that reconnects on reading it must find its connection
	 * no longer counted against the limits.
	 */
	void			(*release)(void *);
	void			*release_arg;
};

/* Runs a whole session.  Returns 0 after QUIT, -1 on any other end. */
int	session_run(const struct session_conf *);

/*
 * The same session in steps, for a server that sets a session aside while
 * it waits for its client's next command (server.c) rather than keep a
 * thread blocked on it.  conf must outlive the session.
 */
struct session;
enum session_next {
	SESSION_PARK,		/* waiting for the client: see the park */
	SESSION_OVER,		/* to be finished */
};
struct session_park {
	long long	 deadline;	/* monotonic ms: then it timed out */
	int		 between;	/* no transaction under way */
};
/* Checks the client and greets it.  NULL: nothing more to do. */
struct session *session_open(const struct session_conf *);
/*
 * Runs commands.  Returns SESSION_PARK, replies written, when the client
 * has sent nothing for conf->park_ms -- call again when the socket is
 * readable (or the deadline has passed: then session_interrupt() first);
 * with wait set, never: it serves the session to its end.
 */
enum session_next session_continue(struct session *, int wait,
	    struct session_park *);
/*
 * Ends a parked session: END_TIMEOUT (421 4.4.2), END_SHUTDOWN (421 4.3.2
 * between transactions, else nothing) or another reason without a reply.
 * session_continue() then returns SESSION_OVER.
 */
void	session_interrupt(struct session *, enum session_end);
/* Logs, frees, sets *sp NULL.  0 if the client said QUIT, else -1. */
int	session_finish(struct session **sp);
/* A fresh 16-hex-digit session id. */
void	session_new_id(char *buf, size_t len);

#endif
