/*
 * milter: what the protocol client's files share.  See milter.h.
 */
#ifndef MILTER_INT_H
#define MILTER_INT_H

#include <stdio.h>

#include "policy/milterconf.h"
#include "milter.h"

/* Commands (MTA to milter). */
#define C_ABORT		'A'
#define C_BODY		'B'
#define C_CONNECT	'C'
#define C_MACRO		'D'
#define C_BODYEOB	'E'
#define C_HELO		'H'
#define C_HEADER	'L'
#define C_MAIL		'M'
#define C_EOH		'N'
#define C_OPTNEG	'O'
#define C_QUIT		'Q'
#define C_RCPT		'R'
#define C_DATA		'T'

/* Replies and changes (milter to MTA). */
#define R_ADDRCPT	'+'
#define R_DELRCPT	'-'
#define R_ADDRCPT_PAR	'2'
#define R_SHUTDOWN	'4'
#define R_ACCEPT	'a'
#define R_REPLBODY	'b'
#define R_CONTINUE	'c'
#define R_DISCARD	'd'
#define R_CHGFROM	'e'
#define R_CONN_FAIL	'f'
#define R_ADDHEADER	'h'
#define R_INSHEADER	'i'
#define R_SETSYMLIST	'l'
#define R_CHGHEADER	'm'
#define R_PROGRESS	'p'
#define R_QUARANTINE	'q'
#define R_REJECT	'r'
#define R_SKIP		's'
#define R_TEMPFAIL	't'
#define R_REPLYCODE	'y'

/*
 * Actions a milter may take: all offered, all done (a list of macros asked
 * for with SETSYMLIST is taken, but the fixed ones are sent).
 */
#define A_ALL		0x1ff
#define A_ADDHDRS	0x001
#define A_CHGBODY	0x002
#define A_ADDRCPT	0x004
#define A_DELRCPT	0x008
#define A_CHGHDRS	0x010
#define A_QUARANTINE	0x020
#define A_CHGFROM	0x040
#define A_ADDRCPT_PAR	0x080

/* Protocol steps: stages the milter may leave out or not answer. */
#define P_NOCONNECT	0x000001
#define P_NOHELO	0x000002
#define P_NOMAIL	0x000004
#define P_NORCPT	0x000008
#define P_NOBODY	0x000010
#define P_NOHDRS	0x000020
#define P_NOEOH		0x000040
#define P_NR_HDR	0x000080
#define P_NOUNKNOWN	0x000100
#define P_NODATA	0x000200
#define P_SKIP		0x000400
#define P_NR_CONN	0x001000
#define P_NR_HELO	0x002000
#define P_NR_MAIL	0x004000
#define P_NR_RCPT	0x008000
#define P_NR_DATA	0x010000
#define P_NR_UNKN	0x020000
#define P_NR_EOH	0x040000
#define P_NR_BODY	0x080000
#define P_HDR_LEADSPC	0x100000
/* All of them but RCPT_REJ (0x800): refused recipients are not shown. */
#define P_OFFERED	0x1ff7ff

#define PROGRESS_MAX	1000	/* "still working" answers to one command */
#define CHANGES_MAX	1000	/* change requests at the end of a message */
#define ADDED_MAX	(64 * 1024)	/* header bytes milters may add */
#define HEADER_MAX	(256 * 1024)	/* header passed on as fields */

/* The changes asked for at the end of a message (milter_edit.c). */
struct milter_edit {
	struct spool_msg *msg;		/* temporary files go beside it */
	struct str	 hops;		/* header changes, in order */
	struct str	 eops;		/* envelope changes, in order */
	FILE		*body;		/* the body as replaced, or NULL */
	size_t		 blen;
	int		 body_mi;	/* by this milter */
	FILE		*nbody;		/* the milter answering replaces it */
	size_t		 nlen;
	int		 ncr, nlf;	/* its last byte: CR, LF */
	size_t		 hmark, emark;	/* its changes begin there */
	int		 cur_mi;
	int		 failed;	/* errno: the body could not be kept */
};

/*
 * A change as taken down in hops or eops: the command, the milter's
 * place in the list, an index, and two strings with their lengths.
 */
struct milter_rec {
	char		 op;
	unsigned char	 mi;
	uint32_t	 idx;
	const char	*a, *b;
	size_t		 alen, blen;
};

struct milter {
	const struct milter_def	*d;
	int		 fd;		/* -1: not connected */
	uint32_t	 actions;	/* negotiated */
	uint32_t	 pflags;
	int		 conn_done;	/* accepted the session: no more */
	int		 msg_done;	/* decided on this message */
	int		 skip_body;
	int		 in_tx;		/* MAIL sent, no end of message yet */
};

struct milter_session {
	struct policy_session	*ps;
	struct milter	 m[MILTERS_MAX];
	int		 n;
	int		 opened;
	struct verdict	 conn_v;	/* the session is refused */
	struct verdict	 msg_v;		/* the message is refused */
	int		 discard;	/* of the message */
	int		 quarantine;
	char		 queue_id[SPOOL_ID_LEN + 1];
	char		 sender[512];
	const char	*rcpt;		/* while RCPT is asked about */

	/* What the tap has seen of the message. */
	struct str	 hdr;
	int		 hdr_cut;	/* hdr does not hold all of it */
	size_t		 prefix;	/* message bytes before the tap's */
	size_t		 seen;		/* bytes through the tap */
	int		 rewritten;	/* the changes made a new message */
	int		 in_body;
	char		 chunk[MILTER_CHUNK];
	size_t		 chunklen;
	datain_tap_fn	 next;
	void		*next_arg;
};

/* The milter did not answer as it should: its default action. */
void	milter_broken(struct milter_session *, struct milter *,
	    const char *what);
/* Sends one packet; -1 when the milter is now broken. */
int	milter_put(struct milter_session *, struct milter *, char cmd,
	    const void *, size_t);
/*
 * Reads one packet into *buf (malloc'd, NUL added), skipping progress
 * reports.  The command, or -1 when the milter is now broken.
 */
int	milter_get(struct milter_session *, struct milter *, char **buf,
	    size_t *len);
/* The same with a wait of secs (the end-of-message answer's). */
int	milter_get_within(struct milter_session *, struct milter *,
	    char **buf, size_t *len, unsigned int secs);
/* The macros a stage defines, sent before its command. */
int	milter_macros(struct milter_session *, struct milter *, char stage);
/* The milter's answer to one stage, applied; 0, or -1 if it broke. */
int	milter_answer(struct milter_session *, struct milter *, int c,
	    const char *, size_t, int conn, struct verdict *rcpt_v);
/* Is the milter to be told about this stage of the message? */
int	milter_live(const struct milter *);
/* One stage to every milter that wants it. */
void	milter_stage(struct milter_session *, char cmd, const void *, size_t,
	    uint32_t skip, uint32_t noreply, int conn, struct verdict *rcpt_v);
/* The verdict of the session or message so far, into v. */
enum verdict_kind milter_outcome(struct milter_session *, struct verdict *);

void	milter_edit_init(struct milter_edit *, struct spool_msg *);
void	milter_edit_free(struct milter_edit *);
/* The milter at index mi starts answering. */
void	milter_edit_begin(struct milter_edit *, int mi);
/*
 * One change asked for, taken down (not applied yet).  0; -1 when the
 * milter is now broken (not negotiated, not the protocol, too big).
 */
int	milter_edit_take(struct milter_session *, struct milter *,
	    struct milter_edit *, int c, const char *, size_t);
/* The milter's answer is over: its changes stay (ok) or are dropped. */
void	milter_edit_end(struct milter_edit *, int ok);
/* The change at *off (which moves past it); 0, or -1 after the last. */
int	milter_rec_get(const struct str *, size_t *off, struct milter_rec *);
/*
 * Applies what was taken down: *mp is replaced by a new message with
 * the same id.  0, or -1 (logged; *mp unchanged).
 */
int	milter_edit_apply(struct milter_session *, struct milter_edit *,
	    struct spool_msg **mp, size_t *added);

#endif
