/*
 * dovecot_proto: Dovecot's auth protocol (version 1) over a unix socket.
 * See dovecot_proto.h.
 *
 * The protocol is line based: each line ends with LF and holds a command
 * name and parameters separated by TABs; optional parameters are "name"
 * or "name=value", and unknown ones are ignored.  Both sides start with
 * "VERSION TAB major TAB minor"; only the major version must match.
 *
 * auth-userdb:	C: VERSION 1 0, USER id user service=smtp
 *		S: VERSION, SPID, then USER id user fields | NOTFOUND id |
 *		   FAIL id reason=...
 * (auth-client, for SASL, is in src/auth/dovecot.c.)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dovecot_proto.h"
#include "net.h"
#include "str.h"

void
dc_close(struct dconn *dc)
{
	if (dc->fd != -1)
		close(dc->fd);
	dc->fd = -1;
	/* The buffer may have held the base64 of a password. */
	str_wipe(dc->buf, sizeof(dc->buf));
}

/* Waits for events on the connection until its deadline: 0, or -1. */
static int
dc_wait(struct dconn *dc, short events)
{
	return net_wait(dc->fd, events, dc->deadline) == 1 ? 0 : -1;
}

int
dc_open(struct dconn *dc, const char *path, int timeout)
{
	dc->path = path;
	dc->len = dc->used = 0;
	dc->deadline = net_now_ms() + timeout * 1000LL;
	/* A listener with a full backlog is waited for, not for ever. */
	dc->fd = net_connect(path, NULL, NULL, dc->deadline);
	return dc->fd == -1 ? -1 : 0;
}

int
dc_write(struct dconn *dc, const char *p, size_t len)
{
	return net_send_all(dc->fd, p, len, dc->deadline);
}

int
dc_getline(struct dconn *dc, char **line)
{
	char *lf;
	ssize_t n;

	/* Drop the line returned last time. */
	if (dc->used > 0) {
		memmove(dc->buf, dc->buf + dc->used, dc->len - dc->used);
		dc->len -= dc->used;
		dc->used = 0;
	}
	for (;;) {
		if ((lf = memchr(dc->buf, '\n', dc->len)) != NULL) {
			*lf = '\0';
			dc->used = (size_t)(lf - dc->buf) + 1;
			*line = dc->buf;
			return 1;
		}
		if (dc->len >= DOVECOT_LINE_MAX)
			return -2;
		n = recv(dc->fd, dc->buf + dc->len, DOVECOT_LINE_MAX - dc->len,
		    0);
		if (n == 0)
			return 0;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (dc_wait(dc, POLLIN) == -1)
				return -1;
			continue;
		}
		dc->len += (size_t)n;
	}
}


int
dc_field(const char *line, const char *want)
{
	size_t wl = strlen(want), fl;
	const char *p = line;

	while ((p = strchr(p, '\t')) != NULL) {
		p++;
		fl = strcspn(p, "\t");
		if (fl == wl && strncmp(p, want, wl) == 0)
			return 1;
	}
	return 0;
}

/*
 * Dovecot's tab-escaping of a parameter (\001 then 1, t, r, n).  0, or
 * -1 when it does not fit.
 */
int
dc_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;
	char c;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\001':
			c = '1';
			break;
		case '\t':
			c = 't';
			break;
		case '\r':
			c = 'r';
			break;
		case '\n':
			c = 'n';
			break;
		default:
			c = 0;
			break;
		}
		if (o + 3 > len)
			return -1;
		if (c != 0) {
			out[o++] = '\001';
			out[o++] = c;
		} else
			out[o++] = *s;
	}
	out[o] = '\0';
	return 0;
}

/*
 * The client id for CPID.  Dovecot refuses a second connection that
 * claims the id of one still open, and our threads may each hold one, so
 * every connection gets its own: the top bit set (clear of real process
 * ids), then the pid and a counter.
 */
unsigned int
dc_cpid(void)
{
	static unsigned int seq;
	unsigned int n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);

	return 0x80000000u | (((unsigned int)getpid() & 0x1fffffu) << 10) |
	    (n & 0x3ffu);
}

const char *
dc_strerror(int r)
{
	if (r == 0)
		return "connection closed";
	if (r == -2)
		return "line too long";
	return strerror(errno);
}

int
dovecot_userdb_lookup(const char *path, const char *user, char *err,
    size_t errlen)
{
	struct dconn *dc;
	char esc[DOVECOT_USER_MAX + 1], *req = NULL, *line;
	size_t reqlen;
	int i, r, n, res = -1;

	err[0] = '\0';
	if (user[0] == '\0' || strlen(user) > DOVECOT_USER_MAX / 2 ||
	    dc_escape(user, esc, sizeof(esc)) == -1)
		return 0;
	/* Zeroed for clang-analyzer, which cannot see that a line is whole. */
	if ((dc = calloc(1, sizeof(*dc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dc->fd = -1;
	reqlen = strlen(esc) + 64;
	if ((req = malloc(reqlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = snprintf(req, reqlen, "VERSION\t1\t0\nUSER\t" DOVECOT_REQ_ID
	    "\t%s\tservice=smtp\n", esc);
	if (n < 0 || (size_t)n >= reqlen) {
		snprintf(err, errlen, "request too long");
		goto out;
	}
	if (dc_open(dc, path, DOVECOT_USERDB_TIMEOUT) == -1 ||
	    dc_write(dc, req, (size_t)n) == -1) {
		snprintf(err, errlen, "dovecot userdb %.200s: %s", path,
		    strerror(errno));
		goto out;
	}
	for (i = 0; i < DOVECOT_HANDSHAKE_LINES; i++) {
		if ((r = dc_getline(dc, &line)) != 1) {
			snprintf(err, errlen, "dovecot userdb %.200s: %s", path,
			    dc_strerror(r));
			goto out;
		}
		if (strncmp(line, "VERSION\t", 8) == 0) {
			if (strncmp(line + 8, "1\t", 2) != 0) {
				snprintf(err, errlen, "dovecot userdb %.200s: "
				    "protocol version %.20s, want 1", path,
				    line + 8);
				goto out;
			}
		} else if (strncmp(line, "USER\t" DOVECOT_REQ_ID "\t", 7) ==
		    0) {
			res = 1;
			goto out;
		} else if (strncmp(line, "NOTFOUND\t" DOVECOT_REQ_ID, 10) ==
		    0 && (line[10] == '\0' || line[10] == '\t')) {
			res = 0;
			goto out;
		} else if (strncmp(line, "FAIL\t" DOVECOT_REQ_ID, 6) == 0 &&
		    (line[6] == '\0' || line[6] == '\t')) {
			snprintf(err, errlen, "dovecot userdb %.200s: lookup "
			    "failed: %.200s", path, line + 6);
			goto out;
		}
		/* SPID and whatever a later version adds: skipped. */
	}
	snprintf(err, errlen, "dovecot userdb %.200s: no answer in %d lines",
	    path, DOVECOT_HANDSHAKE_LINES);
out:
	free(req);
	dc_close(dc);
	free(dc);
	return res;
}
