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
	va_start(ap, fmt);
	(void)reply_vset(&res->reply, code, enhanced, fmt, ap);
	va_end(ap);
	for (i = 0; res->reply.text[i] != '\0'; i++)
		if ((unsigned char)res->reply.text[i] < 0x20)
			res->reply.text[i] = ' ';
}
