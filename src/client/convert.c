#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "convert.h"
#include "lib/fsutil.h"

/* A field (with its continuation lines) longer than this is copied as is. */
#define CONV_FIELD_MAX	(256 * 1024)

struct conv_state {
	const struct conv_opts	*opts;
	struct conv_info	*info;
	struct str		*out;
	struct str		 field;	/* the field so far */
	time_t			 date;	/* for a missing Date: */
	int			 have_from, have_date, have_msgid;
};

static size_t	conv_next_line(const char *, size_t, size_t *);
static int	conv_is_field(const char *, size_t);
static int	conv_is_addr_field(const char *, size_t);
static int	conv_flush_field(struct conv_state *);
static int	add_named_from(struct str *, const char *, const char *);
static int	conv_add_missing(struct conv_state *);
static int	conv_body(const char *, size_t, struct str *);
static int	conv_finish_seg(struct str *, struct str *, int, int, size_t,
		    const char *);

/*
 * Length of the line at p (without its end) and, in *eol, the bytes of
 * its end: 2 for CRLF, 1 for LF or a lone CR, 0 at the end of the input.
 */
static size_t
conv_next_line(const char *p, size_t len, size_t *eol)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n') {
			*eol = 1;
			return i;
		}
		if (p[i] == '\r') {
			*eol = i + 1 < len && p[i + 1] == '\n' ? 2 : 1;
			return i;
		}
	}
	*eol = 0;
	return len;
}

/* RFC 5322 2.2: a field name is printable ASCII but ':', then ':'. */
static int
conv_is_field(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ':')
			return i > 0;
		if (c < 33 || c > 126)
			return 0;
	}
	return 0;
}

static int
conv_name_is(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len == n && strncasecmp(p, name, n) == 0;
}

static int
conv_is_addr_field(const char *p, size_t len)
{
	static const char *names[] = { "From", "Sender", "Reply-To", "To",
	    "Cc", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
	    NULL };
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (conv_name_is(p, len, names[i]))
			return 1;
	return 0;
}

/*
 * Ends one address: a bare single-word addr-spec without @ gets @domain,
 * inserted after its last word character.
 */
static int
conv_finish_seg(struct str *out, struct str *seg, int bare, int words,
    size_t word_end, const char *domain)
{
	int r;

	if (bare && words == 1 && word_end <= seg->len) {
		r = str_append(out, seg->s, word_end);
		if (r == 0)
			r = str_appendf(out, "@%s", domain);
		if (r == 0)
			r = str_append(out, seg->s + word_end,
			    seg->len - word_end);
	} else
		r = seg->len ? str_append(out, seg->s, seg->len) : 0;
	str_clear(seg);
	return r;
}

int
conv_addr_field(const char *v, size_t len, const char *domain,
    struct str *out)
{
	struct str seg;
	size_t i, word_end = 0;
	int depth = 0, inq = 0, esc = 0, inangle = 0;
	int has_at = 0, has_angle = 0, words = 0, in_word = 0;
	int angle_at = 0, angle_used = 0, r = 0;

	str_init(&seg, CONV_FIELD_MAX);
	for (i = 0; i < len && r == 0; i++) {
		char c = v[i];

		if (esc) {
			esc = 0;
			r = str_appendc(&seg, c);
			if (!inangle && depth == 0)
				word_end = seg.len;
			continue;
		}
		if (inq) {
			if (c == '\\')
				esc = 1;
			else if (c == '"')
				inq = 0;
			r = str_appendc(&seg, c);
			if (!inangle)
				word_end = seg.len;
			continue;
		}
		if (depth > 0) {
			if (c == '\\')
				esc = 1;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			r = str_appendc(&seg, c);
			continue;
		}
		if (inangle) {
			if (c == '>') {
				inangle = 0;
				if (!angle_at && angle_used)
					r = str_appendf(&seg, "@%s", domain);
			} else if (c == '"') {
				inq = 1;
				angle_used = 1;
			} else if (c == '(')
				depth = 1;
			else if (c == '@')
				angle_at = 1;
			else if (!isspace((unsigned char)c))
				angle_used = 1;
			if (r == 0)
				r = str_appendc(&seg, c);
			continue;
		}
		switch (c) {
		case '"':
			inq = 1;
			if (!in_word) {
				words++;
				in_word = 1;
			}
			r = str_appendc(&seg, c);
			break;
		case '(':
			depth = 1;
			in_word = 0;
			r = str_appendc(&seg, c);
			break;
		case '<':
			inangle = 1;
			has_angle = 1;
			angle_at = angle_used = 0;
			in_word = 0;
			r = str_appendc(&seg, c);
			break;
		case ',':
		case ';':
			r = conv_finish_seg(out, &seg, !has_angle && !has_at,
			    words, word_end, domain);
			if (r == 0)
				r = str_appendc(out, c);
			has_at = has_angle = words = in_word = 0;
			break;
		case ':':
			/* What came before was a group's display name. */
			r = conv_finish_seg(out, &seg, 0, 0, 0, domain);
			if (r == 0)
				r = str_appendc(out, c);
			has_at = has_angle = words = in_word = 0;
			break;
		default:
			if (isspace((unsigned char)c)) {
				in_word = 0;
				r = str_appendc(&seg, c);
				break;
			}
			if (c == '@')
				has_at = 1;
			if (!in_word) {
				words++;
				in_word = 1;
			}
			r = str_appendc(&seg, c);
			word_end = seg.len;
			break;
		}
	}
	if (r == 0 && (inangle || inq || depth > 0)) {
		/* Unbalanced: leave the rest alone. */
		r = str_append(out, seg.s, seg.len);
		str_free(&seg);
		return r;
	}
	if (r == 0)
		r = conv_finish_seg(out, &seg, !has_angle && !has_at, words,
		    word_end, domain);
	str_free(&seg);
	return r;
}

int
conv_envelope_addr(const char *in, const char *domain, char *out,
    size_t outlen)
{
	const char *bang;
	size_t len = strlen(in);
	int r;

	if (len >= 2 && in[0] == '<' && in[len - 1] == '>') {
		in++;
		len -= 2;
	}
	if (len == 0 || (len == 9 && strncmp(in, "/dev/null", 9) == 0)) {
		if (outlen == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	if (memchr(in, '@', len) == NULL &&
	    (bang = memchr(in, '!', len)) != NULL && bang > in &&
	    (size_t)(bang - in) + 1 < len)
		/* Plan 9's host!user */
		r = snprintf(out, outlen, "%.*s@%.*s",
		    (int)(len - (size_t)(bang - in) - 1), bang + 1,
		    (int)(bang - in), in);
	else if (memchr(in, '@', len) == NULL && domain != NULL)
		r = snprintf(out, outlen, "%.*s@%s", (int)len, in, domain);
	else
		r = snprintf(out, outlen, "%.*s", (int)len, in);
	return r < 0 || (size_t)r >= outlen ? -1 : 0;
}

int
conv_from_line_date(const char *line, size_t len, time_t *t)
{
	static const char *fmts[] = { "%a %b %d %H:%M:%S %Y",
	    "%a %b %d %H:%M:%S %Z %Y" };
	char buf[256];
	const char *p, *end;
	struct tm tm;
	size_t i;

	if (len < 5 || len >= sizeof(buf) || strncmp(line, "From ", 5) != 0)
		return -1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	/* Skip "From ", the sender, and the spaces after it. */
	p = buf + 5;
	while (*p == ' ')
		p++;
	while (*p != '\0' && *p != ' ')
		p++;
	while (*p == ' ')
		p++;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(p, fmts[i], &tm);
		if (end == NULL || (*end != '\0' && *end != ' '))
			continue;
		tm.tm_isdst = -1;
		if ((*t = mktime(&tm)) == (time_t)-1)
			return -1;
		return 0;
	}
	return -1;
}

/* Writes the gathered field, converted, to the output. */
static int
conv_flush_field(struct conv_state *st)
{
	const char *f = st->field.s, *colon;
	size_t nlen;
	int r;

	if (st->field.len == 0)
		return 0;
	colon = memchr(f, ':', st->field.len);
	nlen = (size_t)(colon - f);
	if (conv_name_is(f, nlen, "Bcc") ||
	    conv_name_is(f, nlen, "Resent-Bcc")) {
		st->info->removed_bcc = 1;
		str_clear(&st->field);
		return 0;
	}
	if (conv_name_is(f, nlen, "From"))
		st->have_from = 1;
	else if (conv_name_is(f, nlen, "Date"))
		st->have_date = 1;
	else if (conv_name_is(f, nlen, "Message-ID"))
		st->have_msgid = 1;
	if (st->opts->domain != NULL && conv_is_addr_field(f, nlen)) {
		r = str_append(st->out, f, nlen + 1);
		if (r == 0)
			r = conv_addr_field(colon + 1,
			    st->field.len - nlen - 1, st->opts->domain,
			    st->out);
	} else
		r = str_append(st->out, f, st->field.len);
	if (r == 0)
		r = str_append(st->out, "\r\n", 2);
	str_clear(&st->field);
	return r;
}

/* From: "Full Name" <sender>, the name as a quoted string. */
static int
add_named_from(struct str *out, const char *name, const char *sender)
{
	const char *p;
	int r;

	r = str_appends(out, "From: \"");
	for (p = name; r == 0 && *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;	/* no line breaks into the header */
		if (*p == '"' || *p == '\\')
			r = str_appendc(out, '\\');
		if (r == 0)
			r = str_appendc(out, *p);
	}
	if (r == 0)
		r = str_appendf(out, "\" <%s>\r\n", sender);
	return r;
}

static int
conv_add_missing(struct conv_state *st)
{
	const struct conv_opts *o = st->opts;
	char date[64];
	int r = 0;

	if (!st->have_from) {
		if (o->sender[0] == '\0')
			r = str_appendf(st->out, "From: Postmaster%s%s\r\n",
			    o->domain ? "@" : "", o->domain ? o->domain : "");
		else if (o->fullname != NULL && *o->fullname != '\0')
			r = add_named_from(st->out, o->fullname, o->sender);
		else
			r = str_appendf(st->out, "From: %s\r\n", o->sender);
		st->info->added_from = 1;
	}
	if (r == 0 && !st->have_date) {
		fs_rfc5322_date(date, sizeof(date), st->date);
		r = str_appendf(st->out, "Date: %s\r\n", date);
		st->info->added_date = 1;
	}
	if (r == 0 && !st->have_msgid && o->domain != NULL &&
	    o->msgid_local != NULL) {
		r = str_appendf(st->out, "Message-ID: <%s@%s>\r\n",
		    o->msgid_local, o->domain);
		st->info->added_msgid = 1;
	}
	return r;
}

/* Copies lines with every line end made CRLF. */
static int
conv_body(const char *p, size_t len, struct str *out)
{
	size_t n, eol;

	while (len > 0) {
		n = conv_next_line(p, len, &eol);
		if (str_append(out, p, n) == -1 ||
		    str_append(out, "\r\n", 2) == -1)
			return -1;
		n += eol;
		p += n;
		len -= n;
	}
	return 0;
}

int
conv_message(const char *in, size_t len, const struct conv_opts *opts,
    struct str *out, struct conv_info *info)
{
	struct conv_state st;
	size_t n, eol, i;
	int r = 0, inbody = 0, rawcont = 0;

	memset(info, 0, sizeof(*info));
	memset(&st, 0, sizeof(st));
	st.opts = opts;
	st.info = info;
	st.out = out;
	st.date = opts->now;
	str_init(&st.field, CONV_FIELD_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)in[i] >= 0x80) {
			info->eightbit = 1;
			break;
		}

	if (len >= 5 && strncmp(in, "From ", 5) == 0) {
		n = conv_next_line(in, len, &eol);
		(void)conv_from_line_date(in, n, &st.date);
		info->removed_from_line = 1;
		in += n + eol;
		len -= n + eol;
	}

	while (len > 0 && r == 0) {
		n = conv_next_line(in, len, &eol);
		if (n == 0 && eol > 0) {
			/* The empty line between header and body. */
			r = conv_flush_field(&st);
			if (r == 0)
				r = conv_add_missing(&st);
			if (r == 0)
				r = str_append(out, "\r\n", 2);
			in += eol;
			len -= eol;
			inbody = 1;
			break;
		}
		if ((in[0] == ' ' || in[0] == '\t') && rawcont) {
			/* A continuation of a field too long to rewrite. */
			r = str_append(out, in, n);
			if (r == 0)
				r = str_append(out, "\r\n", 2);
		} else if ((in[0] == ' ' || in[0] == '\t') &&
		    st.field.len > 0) {
			if (st.field.len + 2 + n <= CONV_FIELD_MAX) {
				if (str_append(&st.field, "\r\n", 2) == -1 ||
				    str_append(&st.field, in, n) == -1)
					r = -1;
			} else {
				/* Too long to rewrite: copy it as it is. */
				r = str_append(out, st.field.s, st.field.len);
				str_clear(&st.field);
				if (r == 0)
					r = str_appendf(out, "\r\n%.*s\r\n",
					    (int)n, in);
				rawcont = 1;
			}
		} else if (conv_is_field(in, n)) {
			r = conv_flush_field(&st);
			rawcont = 0;
			if (r == 0 && str_append(&st.field, in, n) == -1) {
				r = str_append(out, in, n);
				if (r == 0)
					r = str_append(out, "\r\n", 2);
				rawcont = 1;
			}
		} else {
			/* Not a header line: the body starts here. */
			r = conv_flush_field(&st);
			if (r == 0)
				r = conv_add_missing(&st);
			if (r == 0)
				r = str_append(out, "\r\n", 2);
			inbody = 1;
			break;
		}
		in += n + eol;
		len -= n + eol;
	}
	if (r == 0 && !inbody) {
		/* Header only. */
		r = conv_flush_field(&st);
		if (r == 0)
			r = conv_add_missing(&st);
	}
	if (r == 0 && inbody)
		r = conv_body(in, len, out);
	str_free(&st.field);
	return r;
}
