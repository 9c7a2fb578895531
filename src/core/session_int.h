/*
 * session_int.h: what the parts of an SMTP session share -- the command
 * table and the envelope commands (session.c), the message (session_data.c:
 * DATA, BDAT, the hand-off to the spool or the -m mailer) and AUTH and
 * STARTTLS (session_auth.c).  Not for use outside them.
 */
#ifndef SESSION_INT_H
#define SESSION_INT_H

#include <gnutls/gnutls.h>

#include "auth/authconf.h"
#include "auth/sasl.h"
#include "lib/addr.h"
#include "lib/lineio.h"
#include "lib/net.h"
#include "cmdparse.h"
#include "data.h"
#include "milter.h"
#include "session.h"
#include "signing.h"
#include "tls.h"


/* Input buffer: the longest command line (AUTH) and then some. */
#define SESSION_INBUF	(CMD_AUTH_LINE_MAX + 1024)
#define HELO_MAX	255

enum state {
	ST_GREET = 0x01,	/* no HELO/EHLO yet */
	ST_READY = 0x02,	/* may start a transaction */
	ST_MAIL	 = 0x04,	/* MAIL accepted, no recipient yet */
	ST_RCPT	 = 0x08,	/* at least one recipient */
	ST_BDAT	 = 0x10,	/* inside a BDAT transfer */
};
#define ST_ANY	(ST_GREET | ST_READY | ST_MAIL | ST_RCPT | ST_BDAT)
/* A mail transaction is under way. */
#define ST_TRANSACTION	(ST_MAIL | ST_RCPT | ST_BDAT)

struct session {
	const struct session_conf *conf;
	struct policy	*pol;
	const struct auth_conf *auth;	/* the snapshot's auth { } */
	struct queue_conf *queue;	/* ... and its queue settings */
	struct lineio	*io;
	char		 id[17];
	char		 peer_addr[NET_ADDRSTR_MAX];
	int		 peer_port;
	char		 peer_name[256];	/* verified reverse name, or "" */
	char		 local_addr[NET_ADDRSTR_MAX];	/* for describe() */
	enum state	 st;
	char		 helo[HELO_MAX + 1];
	int		 esmtp;
	int		 quit;
	enum session_end end;	/* who closed the connection, and why */
	unsigned int	 errors;

	/* The transaction. */
	struct addr	 sender;
	struct mail_params mparams;
	struct env_rcpt	*rcpts;		/* strings owned by the session */
	size_t		 nrcpts, rcptcap;
	struct spool_msg *msg;		/* open while BDAT chunks arrive */
	struct datain	 din;
	struct signing	*sign;		/* DKIM, for trusted senders */
	struct milter_session *milt;	/* content filters, or NULL */
	size_t		 added;		/* bytes of Received: and tags we add */
	int		 bdat_failed;	/* refuse the rest of this transfer */

	struct policy_session ps;
	struct verdict	 hv;		/* what the header checks said */

	struct tls_server *tlss;	/* NULL: no STARTTLS */
	gnutls_session_t tls;		/* once TLS is up */
	struct tls_info	*tlsinfo;	/* once TLS is up (the two go together) */
	int		 authenticated;
	char		 auth_user[SASL_USER_MAX + 1];
	/* The listener's settings, or the policy's (listen_flags). */
	int		 auth_offered, auth_required, auth_cleartext;
	const struct listen_conf *listener;	/* NULL: stdio, unmatched */
	char		 auth_mech[24];

	/* Counts for the disconnect line. */
	unsigned int	 n_msgs, n_rcpts, n_cmds;
	unsigned int	 v2_lines;	/* first lines like a PROXY v2 header */
	long long	 parked_at;	/* set aside then (monotonic ms), or 0 */
	int		 waited_ms;	/* in place before it was set aside */
};

/* session.c */
void	reply(struct session *, int code, const char *ecode,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int	reply_verdict(struct session *, const struct verdict *);
void	session_enter(struct session *, enum state);
void	session_close(struct session *, enum session_end);
void	reset_transaction(struct session *);
const char *protocol_name(const struct session *);
void	bad_sequence(struct session *, enum cmd_verb);

/* session_data.c */
int	do_data(struct session *, struct cmd *);
int	do_bdat(struct session *, struct cmd *);

/* session_auth.c */
void	auth_reply(struct session *, enum sasl_result);
void	auth_conf(struct session *, struct sasl_conf *);
int	start_tls(struct session *);
int	do_auth(struct session *, struct cmd *);
int	do_starttls(struct session *, struct cmd *);

#endif
