/*
 * data: the message content a client sends with DATA or BDAT, checked and
 * written to the spool as it arrives, in bounded memory.
 *
 * Lines end in CRLF or, unless bare LFs are refused, in a LF alone, which
 * is stored as CRLF: the queue holds CRLF lines only.  A CR that is not
 * followed by LF is refused.  A line that holds only "." and ends in a
 * bare LF or follows one is how SMTP smuggling hides a second message, so
 * it is refused too; with DATA only CRLF "." CRLF ends the data.
 */
#ifndef DATA_H
#define DATA_H

#include <stddef.h>

#include "lib/str.h"
#include "queue/spool.h"

#define DATA_MAX_RECEIVED	100	/* more Received: lines is a loop */

enum data_verdict {
	DATA_OK = 0,
	DATA_BARE_NEWLINE,	/* 550 5.5.2: bare CR; bare LF if refused */
	DATA_SMUGGLING,		/* 550 5.5.2: a "." line next to a bare LF */
	DATA_TOO_BIG,		/* 552 5.3.4 */
	DATA_LOOP,		/* 554 5.4.6 */
	DATA_LONG_LINE,		/* 550 5.6.0, only with a line limit */
	DATA_WRITE_ERROR,	/* 452 4.3.1 */
};

/* What a line ending in LF without CR does. */
enum data_bare_lf {
	DATA_LF_NORMALIZE = 0,	/* ends the line; stored as CRLF */
	DATA_LF_REJECT,		/* refuses the message */
};

/*
 * Called once the header is complete (or limits.header_size is reached):
 * header lines to add go into tags, written before the client's header.
 */
typedef void (*datain_header_fn)(void *arg, const char *hdr, size_t len,
    struct str *tags);

/* Sees every byte the reader spools, in order (tags, header, body). */
typedef void (*datain_tap_fn)(void *arg, const char *, size_t);

struct datain {
	struct spool_msg	*msg;
	datain_tap_fn		 tap;
	void			*tap_arg;
	datain_header_fn	 on_header;
	void			*arg;
	struct str		 hdr;		/* the header, held back */
	int			 hdr_done;	/* written out; stream the rest */
	enum data_bare_lf	 bare_lf;
	size_t			 size;		/* bytes taken so far */
	size_t			 max_size;	/* 0: no limit */
	size_t			 line_max;	/* 0: no limit */
	size_t			 line_len;	/* of the current line so far */
	unsigned int		 received;	/* Received: header lines */
	int			 in_header;
	int			 bol;		/* at the start of a line */
	int			 cr_pending;	/* a CR held back: LF next? */
	int			 dot_line;	/* the line so far is "." */
	int			 prev_bare_lf;	/* the last line ended in LF */
	char			 lh[9];		/* a header line's start */
	size_t			 lhn;
	enum data_verdict	 verdict;	/* first problem seen */
};

void	datain_init(struct datain *, struct spool_msg *, size_t max_size,
	    size_t line_max, size_t header_max, enum data_bare_lf,
	    datain_header_fn, void *arg);
/*
 * DATA: raw bytes as the client sent them, split anywhere.  Dot-stuffing
 * is removed; bytes are checked, counted and spooled.  Returns how many
 * bytes were taken; *end_r is 1 if the last of them ended the data, and
 * the bytes after it (the next command) were not looked at.
 */
size_t	datain_data(struct datain *, const char *, size_t, int *end_r);
/* BDAT: raw chunk bytes, the same line rules without dot-stuffing. */
void	datain_bdat(struct datain *, const char *, size_t);
/* Ends the message: the verdict, after the last bytes. */
enum data_verdict datain_finish(struct datain *);
/* Installs a tap, after datain_init(). */
void	datain_tap(struct datain *, datain_tap_fn, void *arg);
/* Frees what the reader holds (not the message). */
void	datain_free(struct datain *);

#endif
