/*
 * agent: the delivery agents behind one small vtable.
 *
 * The queue runner groups a message's due recipients by destination (a
 * route plus, for relaying, the domain or smarthost) and hands each group
 * to the route's agent:
 *
 *	sess = ops->open(route, dest, id, qc, &res);	once per destination
 *	ops->deliver(sess, msg, rcpts, n);		per message, reusing sess
 *	ops->close(&sess);
 *
 * The runner keeps a session with idle_ok for a while after its last
 * message, for the destination's next one (runner_cache.c).
 *
 * deliver() fills one result per recipient.  The relay and LMTP agents
 * keep a connection in sess; maildir and pipe keep nothing.
 */
#ifndef AGENT_H
#define AGENT_H

#include <sys/types.h>

#include <stddef.h>

#include "lib/reply.h"
#include "lib/spawn.h"
#include "envelope.h"
#include "queueconf.h"

#define AGENT_MTA_MAX	256

enum agent_status {
	AGENT_DELIVERED,	/* final delivery done here (maildir, pipe) */
	AGENT_PASSED,		/* relayed with the DSN request passed on: the
				   next hop reports from now on (RFC 3461) */
	AGENT_RELAYED,		/* relayed to a host without DSN: a "relayed"
				   DSN is due if NOTIFY=SUCCESS was asked */
	AGENT_TEMP,		/* try again later */
	AGENT_PERM,		/* give up: bounce */
};

struct agent_result {
	enum agent_status status;
	struct reply	 reply;		/* SMTP reply, or its equivalent;
					   text is one printable line */
	char		 mta[AGENT_MTA_MAX];	/* remote MTA, "" when local */
};

/* One message as the agents see it. */
struct agent_msg {
	const char		*id;
	const struct envelope	*env;	/* sender, DSN parameters, body type */
	int			 fd;	/* the spool file: use pread() */
	const struct queue_conf	*qc;
	const int		*cancel;	/* set when the runner stops:
						   give up what can wait */
};

struct agent_rcpt {
	const char		*mailbox;	/* where to deliver */
	const struct env_rcpt	*orig;		/* its rcpt line (NOTIFY, ORCPT) */
	struct agent_result	 res;		/* filled by deliver() */
};

struct agent_ops {
	const char	*name;
	/*
	 * Opens a session to dest (agent-specific: a domain for relaying by
	 * MX, the smarthost, "" for local agents) for the message id, the
	 * first to go, which log lines about the opening name.  NULL when
	 * that fails, with *res saying why; the runner then gives every
	 * recipient waiting for dest that result.
	 */
	void	*(*open)(const struct route *, const char *dest,
		    const char *id, const struct queue_conf *,
		    struct agent_result *res);
	/*
	 * Delivers msg to rcpts[0..n-1], filling each rcpts[i].res.
	 * Returns 0, or -1 when the session cannot be used again.
	 */
	int	 (*deliver)(void *sess, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *rcpts,
		    size_t n);
	void	 (*close)(void **sess);
	/*
	 * 1 if a session left unused since its last message may carry
	 * another (its connection still open, nothing unasked for come);
	 * NULL for agents whose sessions hold nothing worth keeping.
	 */
	int	 (*idle_ok)(void *sess);
};

/* The agent for a route's action. */
const struct agent_ops *agent_for(enum route_action);
/* The destination key of mailbox under route r: "" or a domain or host. */
void	agent_dest(const struct route *r, const char *mailbox, char *buf,
	    size_t len);
/* Fills res (text is printf-like). */
void	agent_set(struct agent_result *, enum agent_status, int code,
	    const char *enhanced, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));


/*
 * The SMTP reply to DATA for a hand-off result (no CRLF):
 * exit 0 -> 250, 75 (EX_TEMPFAIL) -> 451, a timeout or a signal -> 451,
 * any other status -> 554 with the program's first stderr line.
 * Returns the reply code.
 */
int	agent_pipe_reply(const struct spawn_result *, char *buf,
	    size_t len);

/*
 * smtpd -m, Plan 9's synchronous hand-off: runs "mailer -r -- rcpt..."
 * through the pipe agent (no shell, a "From " line, LF line ends) with the
 * message open on fd from its current offset, as user (NULL: as
 * ourselves), for at most timeout seconds.  Writes the reply to the data
 * into reply (no CRLF; see agent_pipe_reply()) and returns its code:
 * 250, 451 or 554.
 */
struct agent_handoff {
	const char		*mailer;
	const struct qc_user	*user;
	unsigned int		 timeout;
	const struct queue_conf	*qc;		/* the hostname, for %d */
	const char		*id;
	const char		*sender;
	const char *const	*rcpts;
	size_t			 nrcpts;
	int			 fd;
};
int	agent_pipe_handoff(const struct agent_handoff *, char *reply,
	    size_t len);

/* The agents. */
extern const struct agent_ops agent_maildir_ops;
extern const struct agent_ops agent_pipe_ops;
extern const struct agent_ops agent_relay_ops;
extern const struct agent_ops agent_lmtp_ops;

#endif
