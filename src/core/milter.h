/*
 * milter: the client side of the Sendmail/Postfix milter protocol,
 * version 6, for the content filters of the milters list (OpenDKIM,
 * rspamd's proxy, amavis's milter, ...).
 *
 * Each session opens one connection to every configured milter when
 * the client first says HELO/EHLO, and keeps it for the session: one
 * message after another, with an abort in between.  Every reply is
 * awaited for at most the milter's timeout; a milter that cannot be
 * reached, goes silent, closes or says something that is not the
 * protocol gets its default action (tempfail: the session's mail is
 * refused with 451 4.7.1 from then on; accept: the milter is left out
 * for the rest of the session), with a log line.
 *
 * The message streams to the spool as it arrives, so the header and
 * body reach the milters through a datain tap; their verdict and the
 * changes they ask for are applied at the end of the data.  Every
 * milter sees the message as the client sent it (not our Received:
 * field); the changes are applied in the order of the list, each on
 * the result of the ones before (milter_edit.c, milter_apply.c): header
 * fields added (at the end of the header), inserted at an index, changed
 * or deleted (the n-th field of that name), the body replaced (kept in a
 * nameless file in the spool, up to the message size limit), recipients
 * added (with NOTIFY and ORCPT) or removed, the sender changed (with RET
 * and ENVID).  They make a new spool message with the same queue id that
 * takes the old one's place before the reply, so nothing half-changed
 * is queued.  Quarantine queues the message on hold.  An action the
 * milter did not negotiate is a protocol error: its default action.
 */
#ifndef MILTER_H
#define MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "lib/str.h"
#include "policy/policy.h"
#include "queue/spool.h"

#define MILTER_VERSION		6
#define MILTER_PACKET_MAX	(256 * 1024)	/* longest reply taken */
#define MILTER_CHUNK		65535		/* body bytes a packet */

struct milter_session;

/*
 * HELO/EHLO: connects to the milters the first time (negotiation and
 * the connect stage), then the helo stage: the listener's milters in its
 * order, or all of them when it names none (l NULL or no milters key).
 * *mp stays NULL when there is no milter to use.  Continue, or a verdict
 * to answer with.
 */
enum verdict_kind milter_helo(struct milter_session **mp,
	    struct policy_session *, const struct listen_conf *l,
	    const char *helo, struct verdict *);
/* MAIL and RCPT: continue, or the verdict for this command. */
enum verdict_kind milter_mail(struct milter_session *, const char *sender,
	    struct verdict *);
enum verdict_kind milter_rcpt(struct milter_session *, const char *rcpt,
	    struct verdict *);
/*
 * The data begins: the milters see the message through a tap put in
 * front of the one the reader has (if any), which it then calls.
 */
void	milter_data(struct milter_session *, struct datain *,
	    const char *queue_id);
/*
 * The data ended: the milters' verdict in v (continue, reject, defer;
 * 451 4.3.0 when their changes cannot be made); with changes *mp is
 * replaced by the changed message (*added follows its size); quarantine
 * sets the hold mark, discard (or no recipient left) ps->discard.  -1
 * only when the hold mark cannot be made.
 */
int	milter_eom(struct milter_session *, struct spool_msg **mp,
	    size_t *added, struct verdict *v);
/* Did milter_eom() write the message anew (with the changes asked)? */
int	milter_rewrote(const struct milter_session *);
/*
 * If so, shows fn the bytes the taps saw during the data, as they are
 * now (for a signer to start again).  0, or -1 when they cannot be read.
 */
int	milter_retap(struct milter_session *, struct spool_msg *,
	    datain_tap_fn fn, void *arg);
/* The transaction ends without a message (RSET, refusal, after EOM). */
void	milter_abort(struct milter_session *);
void	milter_close(struct milter_session **);

/* The I/O-free part, for tests. */
/* Appends one packet: length, command, data. 0 or -1. */
int	milter_packet(struct str *, char cmd, const void *, size_t);
/*
 * An SMFIR_REPLYCODE text ("550 5.7.1 text", possibly several lines)
 * into v.  0, or -1 when it is not a 4xx/5xx reply.
 */
int	milter_replycode(const char *, size_t, struct verdict *);

#endif
