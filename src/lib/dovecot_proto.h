/*
 * dovecot_proto: the client side of Dovecot's auth protocol (version 1)
 * over a unix socket, shared by SASL (src/auth/dovecot.c, the
 * auth-client socket) and the "dovecot:" table (table_dovecot.c, the
 * auth-userdb or auth-master socket).
 *
 * One connection per request, closed before the caller returns, so any
 * number of threads may use it at once.  Lines are at most
 * DOVECOT_LINE_MAX bytes and a whole request has a deadline.
 */
#ifndef DOVECOT_PROTO_H
#define DOVECOT_PROTO_H

#include <stddef.h>

#define DOVECOT_LINE_MAX	16384	/* the protocol's expected line limit */
#define DOVECOT_REQ_ID		"1"	/* one request per connection */
#define DOVECOT_HANDSHAKE_LINES	200	/* MECH lines and the like */
/* An escaped user name: each byte may take two. */
#define DOVECOT_USER_MAX	(2 * 1024)
#define DOVECOT_USERDB_TIMEOUT	10	/* seconds for one USER lookup */

struct dconn {
	int		 fd;
	const char	*path;		/* for messages */
	long long	 deadline;	/* a net_now_ms() time */
	size_t		 len;		/* bytes in buf */
	size_t		 used;		/* of which the last line took */
	char		 buf[DOVECOT_LINE_MAX + 1];
};

/* Connects to the socket at path, timeout seconds for it all: 0, -1. */
int	dc_open(struct dconn *, const char *path, int timeout);
/* Closes and wipes the buffer (it may have held a password). */
void	dc_close(struct dconn *);
/* 0, or -1 with errno (ETIMEDOUT at the deadline). */
int	dc_write(struct dconn *, const char *, size_t);
/*
 * The next line, without its LF, NUL-terminated in the buffer.  1 line,
 * 0 end of file, -1 error or timeout (errno), -2 line too long.
 */
int	dc_getline(struct dconn *, char **);
/* Words for a dc_getline() result other than 1. */
const char *dc_strerror(int);
/* 1 when the TAB-separated line has the parameter want ("x" or "x=v"). */
int	dc_field(const char *line, const char *want);
/* Dovecot's TAB-escaping of a parameter: 0, or -1 when it does not fit. */
int	dc_escape(const char *, char *, size_t);
/* A client id for CPID, distinct for every connection of this process. */
unsigned int dc_cpid(void);

/*
 * A USER lookup in Dovecot's userdb through the auth-userdb (or
 * auth-master) socket at path, with the name as given: Dovecot's
 * username_format decides whether a domain counts.  1 known, 0 not
 * known, -1 cannot tell now (Dovecot down, slow, failing, or speaking
 * something else) with the reason in err.
 */
int	dovecot_userdb_lookup(const char *path, const char *user, char *err,
	    size_t errlen);

#endif
