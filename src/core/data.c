#include "config.h"

#include <string.h>
#include <strings.h>

#include "data.h"

static void	take(struct datain *, const char *, size_t);
static void	text(struct datain *, const char *, size_t);
static void	flag(struct datain *, enum data_verdict);
static void	header_byte(struct datain *, char);
static int	end_line(struct datain *, int, int);
static size_t	scan(struct datain *, const char *, size_t, int, int *);
static void	flush_header(struct datain *);
static int	put(struct datain *, const char *, size_t);

void
datain_init(struct datain *d, struct spool_msg *m, size_t max_size,
    size_t line_max, size_t header_max, enum data_bare_lf bare_lf,
    datain_header_fn fn, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->msg = m;
	d->max_size = max_size;
	d->line_max = line_max;
	d->bare_lf = bare_lf;
	d->in_header = 1;
	d->bol = 1;
	d->on_header = fn;
	d->arg = arg;
	str_init(&d->hdr, header_max);
	d->hdr_done = fn == NULL;
}

void
datain_free(struct datain *d)
{
	str_free(&d->hdr);
}

void
datain_tap(struct datain *d, datain_tap_fn fn, void *arg)
{
	d->tap = fn;
	d->tap_arg = arg;
}

/* Spools bytes, showing them to the tap (a DKIM signer) first. */
static int
put(struct datain *d, const char *p, size_t n)
{
	if (d->tap != NULL)
		d->tap(d->tap_arg, p, n);
	return spool_write(d->msg, p, n);
}

/* Writes the tags and the held-back header; from now on bytes stream. */
static void
flush_header(struct datain *d)
{
	struct str tags;

	if (d->hdr_done)
		return;
	d->hdr_done = 1;
	str_init(&tags, 64 * 1024);
	if (d->verdict == DATA_OK)
		d->on_header(d->arg, str_cstr(&d->hdr), d->hdr.len, &tags);
	if (d->verdict == DATA_OK && ((tags.len > 0 &&
	    put(d, tags.s, tags.len) == -1) || (d->hdr.len > 0 &&
	    put(d, d->hdr.s, d->hdr.len) == -1)))
		flag(d, DATA_WRITE_ERROR);
	str_free(&tags);
	str_free(&d->hdr);
}

/* Keeps the first problem: that is what the client hears about. */
static void
flag(struct datain *d, enum data_verdict v)
{
	if (d->verdict == DATA_OK)
		d->verdict = v;
}

/* Counts and spools bytes, unless the message is already refused. */
static void
take(struct datain *d, const char *p, size_t n)
{
	d->size += n;
	if (d->max_size != 0 && d->size > d->max_size)
		flag(d, DATA_TOO_BIG);
	if (d->verdict != DATA_OK)
		return;
	if (!d->hdr_done) {
		if (str_append(&d->hdr, p, n) == 0)
			return;
		/* Past header_size: what follows is passed on unexamined. */
		flush_header(d);
		if (d->verdict != DATA_OK)
			return;
	}
	if (put(d, p, n) == -1)
		flag(d, DATA_WRITE_ERROR);
}

/* A line's text (not its end): counted against the line limit. */
static void
text(struct datain *d, const char *p, size_t n)
{
	if (n == 0)
		return;
	d->line_len += n;
	if (d->line_max != 0 && d->line_len > d->line_max)
		flag(d, DATA_LONG_LINE);
	take(d, p, n);
}

/*
 * A header line's first bytes, gathered across reads and chunks up to
 * "Received:"'s length: too many of those is a loop.
 */
static void
header_byte(struct datain *d, char c)
{
	d->lh[d->lhn++] = c;
	if (d->lhn == sizeof(d->lh) &&
	    strncasecmp(d->lh, "Received:", sizeof(d->lh)) == 0 &&
	    ++d->received > DATA_MAX_RECEIVED)
		flag(d, DATA_LOOP);
}

/*
 * The end of a line, in CRLF or a bare LF; 1 if it was the end of the
 * data.  Only a "." line between two CRLFs ends DATA; a "." line ended by
 * a bare LF or after one is the smuggling signature.
 */
static int
end_line(struct datain *d, int crlf, int dotted)
{
	if (d->dot_line && dotted && crlf && !d->prev_bare_lf)
		return 1;
	if (!crlf && d->bare_lf == DATA_LF_REJECT)
		flag(d, DATA_BARE_NEWLINE);
	if (d->dot_line && (!crlf || d->prev_bare_lf))
		flag(d, DATA_SMUGGLING);
	if (d->in_header && d->line_len == 0 && !d->dot_line) {
		d->in_header = 0;
		flush_header(d);
	}
	take(d, "\r\n", 2);
	d->prev_bare_lf = !crlf;
	d->bol = 1;
	d->dot_line = 0;
	d->line_len = 0;
	return 0;
}

/*
 * The byte grammar of DATA (dotted) and BDAT.  Text runs are spooled
 * whole; a CR is held back until the next byte says whether it is half
 * of a CRLF, which may be in the next call.
 */
static size_t
scan(struct datain *d, const char *p, size_t n, int dotted, int *end_r)
{
	size_t i, run = 0;	/* start of the text not yet spooled */
	int at_bol;
	char c;

	*end_r = 0;
	for (i = 0; i < n; i++) {
		c = p[i];
		if (d->cr_pending) {
			d->cr_pending = 0;
			if (c == '\n') {
				run = i + 1;
				if (end_line(d, 1, dotted)) {
					*end_r = 1;
					return i + 1;
				}
				continue;
			}
			flag(d, DATA_BARE_NEWLINE);
			d->dot_line = 0;
			text(d, "\r", 1);
		}
		at_bol = d->bol;
		if (d->bol) {
			d->bol = 0;
			d->lhn = 0;
			if (dotted && c == '.') {
				/* Dot-unstuffing: the first dot is not text. */
				d->dot_line = 1;
				run = i + 1;
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			text(d, p + run, i - run);
			run = i + 1;
			if (c == '\r')
				d->cr_pending = 1;
			else
				(void)end_line(d, 0, dotted);
			continue;
		}
		d->dot_line = at_bol && c == '.';
		if (d->in_header && d->lhn < sizeof(d->lh))
			header_byte(d, c);
	}
	text(d, p + run, n - run);
	return n;
}

size_t
datain_data(struct datain *d, const char *p, size_t n, int *end_r)
{
	return scan(d, p, n, 1, end_r);
}

void
datain_bdat(struct datain *d, const char *p, size_t n)
{
	int end;

	(void)scan(d, p, n, 0, &end);
}

enum data_verdict
datain_finish(struct datain *d)
{
	/* A CR as the very last byte has no LF after it. */
	if (d->cr_pending) {
		d->cr_pending = 0;
		flag(d, DATA_BARE_NEWLINE);
	}
	flush_header(d);
	return d->verdict;
}
