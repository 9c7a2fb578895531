/*
 * qenv: reads the envelope of a message in the spool (doc/smtpd-spool.5).
 *
 * Spool files are treated as untrusted: a damaged file gives a clear
 * error, never a crash.  qenv_parse() is pure (bytes in, struct out).
 */
#ifndef QENV_H
#define QENV_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

#define QENV_MAX	(32 * 1024 * 1024)	/* largest envelope read */
#define QENV_RCPT_MAX	100000

/* RFC 3461 NOTIFY, as bits; 0 means the client did not say. */
#define QENV_NOTIFY_NEVER	0x01
#define QENV_NOTIFY_SUCCESS	0x02
#define QENV_NOTIFY_FAILURE	0x04
#define QENV_NOTIFY_DELAY	0x08

enum qenv_ret { QENV_RET_UNSET, QENV_RET_FULL, QENV_RET_HDRS };

struct qenv_rcpt {
	char	*mailbox;	/* as received */
	int	 notify;	/* QENV_NOTIFY_* bits, 0 = not given */
	char	*orcpt;		/* "type;xtext" as received, or NULL */
};

struct qenv {
	char		  id[32];
	time_t		  arrival;
	char		 *sender;	/* "" for the null sender */
	struct qenv_rcpt *rcpts;
	size_t		  nrcpts;
	enum qenv_ret	  ret;
	char		 *envid;	/* xtext, or NULL */
	char		 *auth;		/* NULLs when absent */
	char		 *helo;
	char		 *peer;
	char		 *peer_name;
	char		 *protocol;
	char		 *body;		/* "7BIT", "8BITMIME" or NULL */
	int		  smtputf8;
	int		  requiretls;	/* RFC 8689 REQUIRETLS */
	char		 *user;		/* local submitter (sendmail), or NULL */
	off_t		  body_off;	/* where the message starts */
	off_t		  size;		/* message bytes (qenv_read only) */
};

/*
 * Parses the envelope at the start of buf (len bytes, which must include
 * the empty line that ends it).  0, or -1 with the reason in err.
 */
int	qenv_parse(const char *buf, size_t len, struct qenv **, char *err,
	    size_t errlen);
/*
 * Reads and parses the envelope of the message open on fd (from offset
 * 0, with pread).  0; -1 on an I/O error (errno set, err filled); -2 when
 * the file is damaged (err says how).
 */
int	qenv_read(int fd, struct qenv **, char *err, size_t errlen);
void	qenv_free(struct qenv **);

/*
 * Decodes RFC 3461 xtext into out (NUL-terminated).  Returns the decoded
 * length, or -1 if in is not valid xtext or out is too small.
 */
int	qenv_xtext_decode(const char *in, char *out, size_t outlen);
/* Encodes s as xtext.  Returns the length, -1 if out is too small. */
int	qenv_xtext_encode(const char *s, char *out, size_t outlen);
/* Parses a NOTIFY list ("SUCCESS,DELAY").  Bits, or -1 if invalid. */
int	qenv_parse_notify(const char *);

#endif
