/*
 * reply: one SMTP reply (RFC 5321 4.2) as every part of the program
 * holds it: a code, an RFC 3463 enhanced status and a text.
 *
 * Bounds and rules:
 * - code is 200..599, or 0 for "no reply yet".
 * - status is "" or class.subject.detail: class 2, 4 or 5 and the same
 *   as the code's first digit, subject and detail 1 to 3 digits each
 *   (at most "5.999.999", REPLY_STATUS_LEN bytes).  A status is never
 *   cut: one that does not match is replaced by its class's default
 *   ("4.0.0" or "5.0.0", "" for other codes) and the setter returns -1.
 * - text holds at most REPLY_TEXT_MAX - 1 bytes; '\n' separates the lines
 *   of a multi-line reply.  Longer text is cut after the last whole UTF-8
 *   character that fits, so the result is never a broken sequence, and
 *   the setter returns -1.  There is no marker: the cut text is still
 *   the server's words, only shorter.
 */
#ifndef LIB_REPLY_H
#define LIB_REPLY_H

#include <stdarg.h>
#include <stddef.h>

#include "lib/str.h"

#define REPLY_STATUS_LEN	9	/* "5.999.999" */
#define REPLY_TEXT_MAX		512	/* bytes with the NUL */

struct reply {
	int	code;
	char	status[REPLY_STATUS_LEN + 1];
	char	text[REPLY_TEXT_MAX];
};

/* What a reply code means for the command it answers. */
enum reply_class {
	REPLY_NONE,		/* 0 or not an SMTP code */
	REPLY_POSITIVE,		/* 2xx */
	REPLY_INTERMEDIATE,	/* 3xx */
	REPLY_TEMPORARY,	/* 4xx: try again later */
	REPLY_PERMANENT,	/* 5xx: do not retry */
};

/* Empties r: code 0, no status, no text. */
void	reply_clear(struct reply *);
/*
 * 1 if status is a well-formed RFC 3463 code, class.subject.detail with
 * class 2, 4 or 5 and 1 to 3 digits in the others, else 0.
 */
int	reply_status_valid(const char *status);
/* 1 if status is valid and of the class of code (e.g. "5.1.1" for 550). */
int	reply_status_fits(const char *status, int code);
/* The default status of code's class: "2.0.0", "4.0.0", "5.0.0" or "". */
const char *reply_status_default(int code);
/*
 * Sets code, status and text (printf format).  A NULL or "" status stays
 * "".  Code 0 keeps a text with no reply (a note for the log).  0, or -1
 * when code is neither 0 nor 200..599 (then r is cleared), when the status
 * did not fit the code (class default used) or the text was cut; r is
 * usable in every case but the first.
 */
int	reply_set(struct reply *, int code, const char *status,
	    const char *fmt, ...)
	    __attribute__((__format__(__printf__, 4, 5)));
int	reply_vset(struct reply *, int code, const char *status,
	    const char *fmt, va_list);
/* Replaces the status alone (rules above); 0 or -1. */
int	reply_set_status(struct reply *, const char *status);
/* Replaces the text alone with len bytes of s; 0, or -1 when cut. */
int	reply_set_text(struct reply *, const char *s, size_t len);
/*
 * Copies src (NUL-terminated) into dst of size dstlen, cut after the last
 * whole UTF-8 character that fits.  The length of src, as strlcpy.
 */
size_t	reply_text_cpy(char *dst, const char *src, size_t dstlen);
enum reply_class reply_class(int code);
/* 1 if r's code is 4xx (temporary), 5xx (permanent), else 0. */
int	reply_temporary(const struct reply *);
int	reply_permanent(const struct reply *);
/*
 * Appends r to out as it goes on the wire: one "code-status text" line per
 * '\n'-separated line of the text, the last with a space after the code,
 * each ending in CRLF.  Empty text gives one line.  0, or -1 (out is
 * unchanged) when the code is not 200..599 or out's bound is reached.
 */
int	reply_format(const struct reply *, struct str *out);

#endif
