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
/* A fresh 16-hex-digit session id. */
void	session_new_id(char *buf, size_t len);

#endif
