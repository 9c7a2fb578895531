#include "config.h"

#include <string.h>
#include <strings.h>

#include "data.h"

static void	take(struct datain *, const char *, size_t);
static void	flag(struct datain *, enum data_verdict);
static void	header_check(struct datain *, const char *, size_t);
static void	flush_header(struct datain *);

void
datain_init(struct datain *d, struct spool_msg *m, size_t max_size,
    size_t line_max, size_t header_max, datain_header_fn fn, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->msg = m;
	d->max_size = max_size;
	d->line_max = line_max;
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
	    spool_write(d->msg, tags.s, tags.len) == -1) || (d->hdr.len > 0 &&
	    spool_write(d->msg, d->hdr.s, d->hdr.len) == -1)))
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
	if (spool_write(d->msg, p, n) == -1)
		flag(d, DATA_WRITE_ERROR);
}

/* A line start in the header: its end, or one more Received: line. */
static void
header_check(struct datain *d, const char *p, size_t n)
{
	if (!d->in_header)
		return;
	if ((n >= 2 && p[0] == '\r' && p[1] == '\n') || (n >= 1 && p[0] == '\n')) {
		d->in_header = 0;
		flush_header(d);
		return;
	}
	if (n >= 9 && strncasecmp(p, "Received:", 9) == 0 &&
	    ++d->received > DATA_MAX_RECEIVED)
		flag(d, DATA_LOOP);
}

void
datain_line(struct datain *d, const char *p, size_t n, int eol)
{
	size_t body = n, i;

	if (d->bol)
		header_check(d, p, n);
	if (eol) {
		/* A line must end in CRLF; a lone LF is how smuggling starts. */
		if (n < 2 || p[n - 2] != '\r') {
			flag(d, DATA_BARE_NEWLINE);
			body = n - 1;
		} else
			body = n - 2;
	}
	/* A CR anywhere but before the final LF is a bare CR. */
	for (i = 0; i < body; i++)
		if (p[i] == '\r') {
			flag(d, DATA_BARE_NEWLINE);
			break;
		}
	d->line_len += body;
	if (d->line_max != 0 && d->line_len > d->line_max)
		flag(d, DATA_LONG_LINE);
	take(d, p, n);
	d->bol = eol;
	if (eol)
		d->line_len = 0;
}

/*
 * BDAT chunks split lines anywhere: the start of each header line is
 * gathered across chunks (up to "Received:"'s length) before it is judged.
 */
static void
bdat_header_byte(struct datain *d, char c)
{
	if (!d->in_header || d->lhn > sizeof(d->lh))
		return;
	if (d->lhn < sizeof(d->lh))
		d->lh[d->lhn] = c;
	d->lhn++;
	if (c == '\n' || d->lhn == sizeof(d->lh)) {
		header_check(d, d->lh, d->lhn < sizeof(d->lh) ? d->lhn :
		    sizeof(d->lh));
		d->lhn = sizeof(d->lh) + 1;	/* judged; wait for the next line */
	}
}

void
datain_bdat(struct datain *d, const char *p, size_t n)
{
	size_t start = 0, i;

	for (i = 0; i < n; i++) {
		if (d->bol) {
			d->lhn = 0;
			d->bol = 0;
		}
		if (p[i] != '\n') {
			/* A lone CR at a line's start still leaves it open. */
			if (d->lhn <= sizeof(d->lh) && p[i] != '\r')
				bdat_header_byte(d, p[i]);
			else if (p[i] == '\r' && d->lhn == 0 && d->in_header) {
				d->lh[0] = '\r';
				d->lhn = 1;
			}
			d->cr_pending = p[i] == '\r';
			if (!d->cr_pending && ++d->line_len > d->line_max &&
			    d->line_max != 0)
				flag(d, DATA_LONG_LINE);
			continue;
		}
		/* The end of a line: an empty one ends the header. */
		if (d->in_header && d->lhn <= 1 &&
		    (d->lhn == 0 || d->lh[0] == '\r'))
			header_check(d, "\r\n", 2);
		/* A lone LF: spool what came before, then CRLF. */
		if (!d->cr_pending) {
			take(d, p + start, i - start);
			take(d, "\r\n", 2);
		} else
			take(d, p + start, i - start + 1);
		start = i + 1;
		d->cr_pending = 0;
		d->bol = 1;
		d->line_len = 0;
	}
	if (start < n)
		take(d, p + start, n - start);
}

enum data_verdict
datain_finish(struct datain *d)
{
	flush_header(d);
	return d->verdict;
}
