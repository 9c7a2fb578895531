#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "agent.h"

const struct agent_ops *
agent_for(enum route_action a)
{
	switch (a) {
	case ROUTE_MAILDIR:
		return &agent_maildir_ops;
	case ROUTE_PIPE:
		return &agent_pipe_ops;
	case ROUTE_RELAY:
		return &agent_relay_ops;
	case ROUTE_LMTP:
		return &agent_lmtp_ops;
	}
	return NULL;
}

void
agent_dest(const struct route *r, const char *mailbox, char *buf, size_t len)
{
	const char *at;
	size_t i;

	buf[0] = '\0';
	if (r->action != ROUTE_RELAY)
		return;
	if (r->host != NULL) {
		str_lcpy(buf, r->host, len);
		return;
	}
	/* By MX: one destination per domain. */
	at = strrchr(mailbox, '@');
	str_lcpy(buf, at ? at + 1 : "", len);
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
}

void
agent_set(struct agent_result *res, enum agent_status st, int code,
    const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	res->status = st;
	res->code = code;
	str_lcpy(res->enhanced, enhanced, sizeof(res->enhanced));
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	for (i = 0; res->text[i] != '\0'; i++)
		if ((unsigned char)res->text[i] < 0x20)
			res->text[i] = ' ';
}

void
agent_lf_init(struct agent_lf *lf, int fd, off_t off)
{
	lf->fd = fd;
	lf->off = off;
	lf->cr = 0;
	lf->eof = 0;
}

ssize_t
agent_lf_read(struct agent_lf *lf, char *buf, size_t len)
{
	size_t i, o = 0, want;
	ssize_t n;

	if (len < 2)
		return -1;
	while (o == 0) {
		if (lf->eof) {
			if (lf->cr) {
				buf[o++] = '\r';
				lf->cr = 0;
			}
			return (ssize_t)o;
		}
		/* Leave room for a held-back CR. */
		want = len - 1 < sizeof(lf->in) ? len - 1 : sizeof(lf->in);
		n = pread(lf->fd, lf->in, want, lf->off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			lf->eof = 1;
			continue;
		}
		lf->off += n;
		for (i = 0; i < (size_t)n; i++) {
			char c = lf->in[i];

			if (lf->cr) {
				lf->cr = 0;
				if (c != '\n')
					buf[o++] = '\r';
			}
			if (c == '\r')
				lf->cr = 1;
			else
				buf[o++] = c;
		}
	}
	return (ssize_t)o;
}
