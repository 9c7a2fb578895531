/*
 * envelope: the envelope of a queued message (doc/smtpd-spool.5), one
 * data model from the SMTP session to the delivery agents.
 *
 * One key table drives both envelope_format() (the spool writes it) and
 * envelope_parse() (the runner, smtpq, sendmail read it), so the two
 * cannot drift apart.  Spool files are untrusted: a damaged one gives a
 * clear error, never a crash.  Nothing is truncated: a value or an
 * envelope over its limit is an error.
 *
 * A struct envelope from envelope_parse() owns its strings and is freed
 * with envelope_free().  A writer may instead fill one on its stack with
 * pointers to strings it owns, and hand it to envelope_format() or
 * spool_begin(); such a one is not freed.
 */
#ifndef ENVELOPE_H
#define ENVELOPE_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

struct str;

#define ENVELOPE_MAX	(32 * 1024 * 1024)	/* largest envelope */
#define ENVELOPE_RCPT_MAX 100000
#define ENVELOPE_ID_MAX	31		/* characters in the id line */
#define ENVELOPE_ENVID_MAX 100		/* RFC 3461 4.4, decoded */
#define ENVELOPE_ORCPT_MAX 500		/* RFC 3461 4.2, "type;xtext" */

/* RFC 3461 NOTIFY, as bits; 0 means the client did not say. */
#define ENV_NOTIFY_NEVER	0x01
#define ENV_NOTIFY_SUCCESS	0x02
#define ENV_NOTIFY_FAILURE	0x04
#define ENV_NOTIFY_DELAY	0x08
#define ENV_NOTIFY_STRMAX	24	/* "SUCCESS,FAILURE,DELAY" + NUL */

/* RFC 3461 RET and RFC 6152 BODY; UNSET when the client did not say. */
enum env_ret { ENV_RET_UNSET = 0, ENV_RET_FULL, ENV_RET_HDRS };
enum env_body { ENV_BODY_UNSET = 0, ENV_BODY_7BIT, ENV_BODY_8BITMIME };

struct env_rcpt {
	const char	*mailbox;	/* as received */
	int	 notify;	/* ENV_NOTIFY_* bits, 0 = not given */
	const char	*orcpt;		/* "type;xtext" as received, or NULL */
};

struct envelope {
	char		  id[ENVELOPE_ID_MAX + 1];
	time_t		  arrival;
	const char	 *sender;	/* "" for the null sender */
	const struct env_rcpt *rcpts;
	size_t		  nrcpts;
	enum env_ret	  ret;
	const char	 *envid;	/* RFC 3461 ENVID as xtext, or NULL */
	const char	 *auth;		/* the login of an authenticated
					   client, or NULL */
	const char	 *helo;		/* NULLs when absent */
	const char	 *peer;		/* numeric address */
	const char	 *peer_name;	/* verified reverse name */
	const char	 *protocol;	/* "ESMTP", ... (RFC 3848) */
	enum env_body	  body;
	int		  smtputf8;	/* RFC 6531 */
	int		  requiretls;	/* RFC 8689 */
	const char	 *user;		/* local submitter (sendmail) */
	const char	 *account;	/* sendmail's offline queue: the
					   smarthost account, or NULL */
	off_t		  body_off;	/* where the message starts (parse) */
	off_t		  size;		/* message bytes (envelope_read only) */
};

/*
 * Appends the envelope, with the empty line that ends it, to out.  0, or
 * -1 with the reason in err (a required item missing, an invalid NOTIFY,
 * ORCPT or ENVID, more than out's limit): out is then to be thrown away.
 * Control characters in free-text values are written as '?'.
 */
int	envelope_format(const struct envelope *, struct str *out, char *err,
	    size_t errlen);
/*
 * Parses the envelope at the start of buf (len bytes, which must include
 * the empty line that ends it).  0, or -1 with the reason in err.
 * Unknown keys and rcpt parameters are ignored (for later versions).
 */
int	envelope_parse(const char *buf, size_t len, struct envelope **,
	    char *err, size_t errlen);
/*
 * Reads and parses the envelope of the message open on fd (from offset
 * 0, with pread).  0; -1 on an I/O error (err filled); -2 when the file
 * is damaged (err says how).
 */
int	envelope_read(int fd, struct envelope **, char *err, size_t errlen);
void	envelope_free(struct envelope **);
/* Replaces the mailbox of recipient i of a parsed envelope.  0 or -1. */
int	envelope_set_mailbox(struct envelope *, size_t i, const char *);

/* Parses a NOTIFY list ("SUCCESS,DELAY").  Bits, or -1 if invalid. */
int	env_notify_parse(const char *);
/*
 * Writes NOTIFY bits as RFC 3461 spells them ("SUCCESS,FAILURE"), ""
 * for 0.  len of ENV_NOTIFY_STRMAX is always enough.  -1 for bits that
 * are no valid NOTIFY (NEVER with others, unknown bits).
 */
int	env_notify_format(int bits, char *buf, size_t len);
/* "FULL", "HDRS"; "7BIT", "8BITMIME"; NULL when unset. */
const char *env_ret_name(enum env_ret);
const char *env_body_name(enum env_body);

/* 1 if s (n bytes) is valid RFC 3461 xtext. */
int	env_xtext_valid(const char *s, size_t n);
/* 1 if s is a valid ORCPT value: "addr-type;xtext". */
int	env_orcpt_valid(const char *s);
/*
 * Decodes RFC 3461 xtext into out (NUL-terminated).  Returns the decoded
 * length, or -1 if in is not valid xtext or out is too small.
 */
int	env_xtext_decode(const char *in, char *out, size_t outlen);
/* Encodes s as xtext.  Returns the length, -1 if out is too small. */
int	env_xtext_encode(const char *s, char *out, size_t outlen);

#endif
