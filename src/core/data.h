/*
 * data: the message content a client sends with DATA or BDAT, checked and
 * written to the spool as it arrives, in bounded memory.
 */
#ifndef DATA_H
#define DATA_H

#include <stddef.h>

#include "lib/str.h"
#include "queue/spool.h"

#define DATA_MAX_RECEIVED	100	/* more Received: lines is a loop */

enum data_verdict {
	DATA_OK = 0,
	DATA_BARE_NEWLINE,	/* 550 5.5.2, SMTP smuggling defence */
	DATA_TOO_BIG,		/* 552 5.3.4 */
	DATA_LOOP,		/* 554 5.4.6 */
	DATA_LONG_LINE,		/* 550 5.6.0, only with a line limit */
	DATA_WRITE_ERROR,	/* 452 4.3.1 */
};

/*
 * Called once the header is complete (or limits.header_size is reached):
 * header lines to add go into tags, written before the client's header.
 */
typedef void (*datain_header_fn)(void *arg, const char *hdr, size_t len,
    struct str *tags);

struct datain {
	struct spool_msg	*msg;
	datain_header_fn	 on_header;
	void			*arg;
	struct str		 hdr;		/* the header, held back */
	int			 hdr_done;	/* written out; stream the rest */
	size_t			 size;		/* bytes taken so far */
	size_t			 max_size;	/* 0: no limit */
	size_t			 line_max;	/* 0: no limit */
	size_t			 line_len;	/* of the current line so far */
	unsigned int		 received;	/* Received: header lines */
	int			 in_header;
	int			 bol;		/* at the start of a line */
	int			 cr_pending;	/* BDAT: chunk ended in CR */
	char			 lh[9];		/* BDAT: a header line's start */
	size_t			 lhn;
	enum data_verdict	 verdict;	/* first problem seen */
};

void	datain_init(struct datain *, struct spool_msg *, size_t max_size,
	    size_t line_max, size_t header_max, datain_header_fn, void *arg);
/*
 * DATA: one piece of a line, already dot-unstuffed; eol says it ends with
 * LF.  Bytes are checked, counted and spooled.
 */
void	datain_line(struct datain *, const char *, size_t, int eol);
/* BDAT: raw chunk bytes; lone LFs become CRLF. */
void	datain_bdat(struct datain *, const char *, size_t);
/* Ends the message: the verdict, after the last bytes. */
enum data_verdict datain_finish(struct datain *);
/* Frees what the reader holds (not the message). */
void	datain_free(struct datain *);

#endif
