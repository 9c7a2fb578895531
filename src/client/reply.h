/*
 * reply: the client's parser of SMTP replies (RFC 5321 4.2), fed one line
 * at a time, with no I/O: client.c reads the lines, the fuzz target feeds
 * them directly.
 */
#ifndef REPLY_H
#define REPLY_H

#include <stddef.h>

#include "client.h"
#include "lib/reply.h"
#include "lib/str.h"

#define CLIENT_REPLY_LINES	200	/* lines in one reply */

struct reply_parser {
	struct reply		*r;
	struct str		*lines;
	char			 joined[CLIENT_TEXT_MAX];
	size_t			 jlen;
	int			 n;		/* lines so far */
};

/*
 * Starts a reply into r: the lines' text joined by spaces, made printable;
 * the status only when it is well formed and of the code's class.  lines,
 * if not NULL, gets each line's text followed by '\n' (for EHLO).
 */
void	reply_init(struct reply_parser *, struct reply *r,
	    struct str *lines);
/*
 * Takes one line (len bytes; a trailing CR and LF are ignored).  1 when
 * the reply is complete (r filled), 0 when more lines follow, -2 when it
 * is not SMTP: not "DDD", "DDD text" or "DDD-text", a code outside
 * 200..599, a code that changes, too many lines, or lines over lines'
 * limit.
 */
int	reply_line(struct reply_parser *, const char *line, size_t len);

#endif
