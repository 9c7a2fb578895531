/*
 * dsn: delivery status notifications (RFC 3464 multipart/report) for
 * failures, expiry, delays and -- when NOTIFY=SUCCESS asked -- successful
 * delivery, honouring RFC 3461 RET, ENVID and ORCPT.
 *
 * A DSN is queued like any other message, from the null sender, so it is
 * never itself bounced.  The returned content is bounded by bounce_size,
 * and the recipients listed in full by DSN_LIST_MAX: the rest are counted
 * ("... and N more recipients").
 */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>
#include <time.h>

#include "lib/reply.h"
#include "lib/str.h"
#include "envelope.h"
#include "spool.h"

#define DSN_HEADER_MAX	(64 * 1024)	/* header bytes returned at most */
#define DSN_LIST_MAX	50		/* recipients listed in full */

enum dsn_kind {
	DSN_FAILURE,	/* failed or expired recipients */
	DSN_DELAY,	/* still trying: a delay warning */
	DSN_SUCCESS,	/* delivered or relayed, NOTIFY=SUCCESS */
};

struct dsn_rcpt {
	const char	*mailbox;	/* Final-Recipient */
	const char	*orcpt;		/* "type;xtext" from ORCPT, or NULL */
	const char	*action;	/* failed, delayed, delivered, relayed */
	const struct reply *reply;	/* the last reply or NULL; status ""
					   for a default, code 0 for no
					   diagnostic */
	const char	*mta;		/* remote MTA, NULL or "" if none */
	time_t		 last_attempt;	/* 0 = none */
};

struct dsn_report {
	enum dsn_kind		 kind;
	const char		*hostname;	/* the reporting MTA */
	const char		*queue_id;	/* of the original message */
	const struct envelope	*env;		/* the original envelope */
	int			 fd;		/* the original spool file */
	size_t			 bounce_size;	/* largest message returned whole */
	time_t			 retry_until;	/* DSN_DELAY: when we give up */
	const struct dsn_rcpt	*rcpts;
	size_t			 nrcpts;
	int			 minimal;	/* the fallback: one recipient
						   listed, no original */
};

/*
 * Writes the whole DSN message (CRLF line ends) with Message-ID msgid
 * into out.  0, or -1 with err (out of memory, unreadable spool file).
 */
int	dsn_build(const struct dsn_report *, const char *msgid,
	    struct str *out, char *err, size_t errlen);
/*
 * Queues the DSN through sp, from <> to the original sender; when the full
 * report cannot be built, a minimal one.  0 with the new queue id in id
 * (at least SPOOL_ID_LEN + 1 bytes), -1 with err.
 */
int	dsn_queue(struct spool *sp, const struct dsn_report *, char *id,
	    size_t idlen, char *err, size_t errlen);

#endif
