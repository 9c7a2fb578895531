/*
 * dovecot: Dovecot's auth protocol (version 1) over a unix socket.  See
 * dovecot.h.
 *
 * The protocol is line based: each line ends with LF and holds a command
 * name and parameters separated by TABs; optional parameters are "name"
 * or "name=value", and unknown ones are ignored.  Both sides start with
 * "VERSION TAB major TAB minor"; only the major version must match.
 *
 * auth-client:	C: VERSION 1 1, CPID id
 *		S: VERSION, MECH name..., SPID, CUID, COOKIE, DONE
 *		C: AUTH id PLAIN service=smtp secured nologin resp=BASE64
 *		S: OK id ... | FAIL id [temp] [code=temp_fail] ... | CONT id
 * auth-userdb:	C: VERSION 1 0, USER id user service=smtp
 *		S: VERSION, SPID, then USER id user fields | NOTFOUND id |
 *		   FAIL id reason=...
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "lib/log.h"
#include "lib/str.h"
#include "dovecot.h"

#define DOVECOT_HANDSHAKE_LINES	200	/* MECH lines and the like */
#define DOVECOT_REQ_ID		"1"	/* one request per connection */
/* An escaped user name: each byte may take two. */
#define DOVECOT_USER_MAX	(2 * 1024)

struct dconn {
	int		 fd;
	const char	*path;		/* for messages */
	struct timespec	 deadline;	/* CLOCK_MONOTONIC */
	size_t		 len;		/* bytes in buf */
	size_t		 used;		/* of which the last line took */
	char		 buf[DOVECOT_LINE_MAX + 1];
};

static int	dc_open(struct dconn *, const char *);
static void	dc_close(struct dconn *);
static int	dc_wait(struct dconn *, short);
static int	dc_write(struct dconn *, const char *, size_t);
static int	dc_getline(struct dconn *, char **);
static int	dc_field(const char *, const char *);
static int	dc_escape(const char *, char *, size_t);
static unsigned int dc_cpid(void);

static void
dc_close(struct dconn *dc)
{
	if (dc->fd != -1)
		close(dc->fd);
	dc->fd = -1;
	/* The buffer may have held the base64 of a password. */
	str_wipe(dc->buf, sizeof(dc->buf));
}

/*
 * Waits until fd is ready for events or the deadline passes.  0, or -1
 * with errno (ETIMEDOUT at the deadline).
 */
static int
dc_wait(struct dconn *dc, short events)
{
	struct pollfd p;
	struct timespec now;
	long long ms;
	int r;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (long long)(dc->deadline.tv_sec - now.tv_sec) * 1000 +
		    (dc->deadline.tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		p.fd = dc->fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

/* Connects to the socket at path.  0, or -1 with errno. */
static int
dc_open(struct dconn *dc, const char *path)
{
	struct sockaddr_un sun;
	socklen_t elen;
	int e = 0;

	dc->fd = -1;
	dc->path = path;
	dc->len = dc->used = 0;
	clock_gettime(CLOCK_MONOTONIC, &dc->deadline);
	dc->deadline.tv_sec += DOVECOT_TIMEOUT;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_lcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (dc->fd == -1)
		return -1;
	if (connect(dc->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -1;
	/* A listener with a full backlog: wait, but not for ever. */
	if (dc_wait(dc, POLLOUT) == -1)
		return -1;
	elen = sizeof(e);
	if (getsockopt(dc->fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
		return -1;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

static int
dc_write(struct dconn *dc, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(dc->fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (dc_wait(dc, POLLOUT) == -1)
				return -1;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The next line, without its LF, NUL-terminated in the buffer.  1 line,
 * 0 end of file, -1 error or timeout (errno), -2 line too long.
 */
static int
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

/*
 * 1 when the TAB-separated line has the optional parameter name (a
 * boolean "name" or "name=value" with that value, when value is given).
 */
static int
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
static int
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
static unsigned int
dc_cpid(void)
{
	static unsigned int seq;
	unsigned int n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);

	return 0x80000000u | (((unsigned int)getpid() & 0x1fffffu) << 10) |
	    (n & 0x3ffu);
}

/* Reads the handshake up to DONE; 1 if PLAIN is offered, 0 if not, -1. */
static int
auth_handshake(struct dconn *dc)
{
	char *line;
	int i, r, plain = 0, version = 0;

	for (i = 0; i < DOVECOT_HANDSHAKE_LINES; i++) {
		if ((r = dc_getline(dc, &line)) != 1) {
			log_err("dovecot auth %.200s: %s during the handshake",
			    dc->path, r == 0 ? "connection closed" : r == -2 ?
			    "line too long" : strerror(errno));
			return -1;
		}
		if (strncmp(line, "VERSION\t", 8) == 0) {
			if (strncmp(line + 8, "1\t", 2) != 0) {
				log_err("dovecot auth %.200s: protocol "
				    "version %.20s, want 1", dc->path,
				    line + 8);
				return -1;
			}
			version = 1;
		} else if (strncmp(line, "MECH\t", 5) == 0) {
			if (strncasecmp(line + 5, "PLAIN", 5) == 0 &&
			    (line[10] == '\0' || line[10] == '\t'))
				plain = 1;
		} else if (strcmp(line, "DONE") == 0) {
			if (!version) {
				log_err("dovecot auth %.200s: no VERSION "
				    "before DONE", dc->path);
				return -1;
			}
			return plain;
		}
	}
	log_err("dovecot auth %.200s: handshake longer than %d lines",
	    dc->path, DOVECOT_HANDSHAKE_LINES);
	return -1;
}

enum secrets_status
dovecot_auth_verify(const char *path, const char *user, const void *pass,
    size_t passlen)
{
	struct dconn *dc;
	gnutls_datum_t in, b64 = { NULL, 0 };
	enum secrets_status st = SECRETS_TEMPFAIL;
	static const char head[] = "AUTH\t" DOVECOT_REQ_ID "\tPLAIN"
	    "\tservice=smtp\tsecured\tnologin\tresp=";
	char hello[64], *line, *msg = NULL, *req = NULL;
	size_t ulen = strlen(user), mlen = 0, reqlen = 0;
	int n, r;

	if (ulen == 0 || ulen > SECRETS_USER_MAX || passlen == 0 ||
	    passlen > SECRETS_PASS_MAX)
		return SECRETS_FAIL;
	if ((dc = malloc(sizeof(*dc))) == NULL)
		return SECRETS_TEMPFAIL;
	if (dc_open(dc, path) == -1) {
		log_err("dovecot auth %.200s: connect: %s", path,
		    strerror(errno));
		goto out;
	}
	n = snprintf(hello, sizeof(hello), "VERSION\t1\t1\nCPID\t%u\n",
	    dc_cpid());
	if (dc_write(dc, hello, (size_t)n) == -1) {
		log_err("dovecot auth %.200s: %s", path, strerror(errno));
		goto out;
	}
	if ((r = auth_handshake(dc)) != 1) {
		if (r == 0)
			log_err("dovecot auth %.200s: PLAIN is not among "
			    "Dovecot's auth_mechanisms", path);
		goto out;
	}
	/* RFC 4616: an empty authzid, the user, the password. */
	mlen = 1 + ulen + 1 + passlen;
	if ((msg = malloc(mlen)) == NULL)
		goto out;
	msg[0] = '\0';
	memcpy(msg + 1, user, ulen + 1);
	memcpy(msg + 2 + ulen, pass, passlen);
	in.data = (unsigned char *)msg;
	in.size = (unsigned int)mlen;
	if (gnutls_base64_encode2(&in, &b64) != 0)
		goto out;
	/* One buffer of the right size: no copies of it left behind. */
	reqlen = sizeof(head) - 1 + b64.size + 1;
	if ((req = malloc(reqlen)) == NULL)
		goto out;
	memcpy(req, head, sizeof(head) - 1);
	memcpy(req + sizeof(head) - 1, b64.data, b64.size);
	req[reqlen - 1] = '\n';
	if (dc_write(dc, req, reqlen) == -1) {
		log_err("dovecot auth %.200s: %s", path, strerror(errno));
		goto out;
	}
	if ((r = dc_getline(dc, &line)) != 1) {
		log_err("dovecot auth %.200s: %s waiting for the verdict", path,
		    r == 0 ? "connection closed" : r == -2 ? "line too long" :
		    strerror(errno));
		goto out;
	}
	if (strncmp(line, "OK\t" DOVECOT_REQ_ID, 4) == 0 &&
	    (line[4] == '\0' || line[4] == '\t'))
		st = SECRETS_OK;
	else if (strncmp(line, "FAIL\t" DOVECOT_REQ_ID, 6) == 0 &&
	    (line[6] == '\0' || line[6] == '\t')) {
		/* "temp" (2.3) or "code=temp_fail" (2.4): not the user's. */
		if (dc_field(line, "temp") ||
		    dc_field(line, "code=temp_fail")) {
			log_err("dovecot auth %.200s: temporary failure in "
			    "Dovecot's passdb", path);
			st = SECRETS_TEMPFAIL;
		} else
			st = SECRETS_FAIL;
	} else
		log_err("dovecot auth %.200s: unexpected reply \"%.40s\"", path,
		    line);
out:
	if (b64.data != NULL) {
		str_wipe(b64.data, b64.size);
		gnutls_free(b64.data);
	}
	if (msg != NULL) {
		str_wipe(msg, mlen);
		free(msg);
	}
	if (req != NULL) {
		str_wipe(req, reqlen);
		free(req);
	}
	dc_close(dc);
	free(dc);
	return st;
}

enum dovecot_user
dovecot_user_exists(const char *path, const char *user)
{
	struct dconn *dc;
	enum dovecot_user res = DOVECOT_USER_TEMPFAIL;
	char esc[DOVECOT_USER_MAX + 1], *req = NULL, *line;
	size_t reqlen;
	int i, r, n;

	if (user[0] == '\0' || strlen(user) > DOVECOT_USER_MAX / 2 ||
	    dc_escape(user, esc, sizeof(esc)) == -1)
		return DOVECOT_USER_NO;
	if ((dc = malloc(sizeof(*dc))) == NULL)
		return DOVECOT_USER_TEMPFAIL;
	dc->fd = -1;	/* "out" closes it, even before dc_open() */
	reqlen = strlen(esc) + 64;
	if ((req = malloc(reqlen)) == NULL)
		goto out;
	n = snprintf(req, reqlen, "VERSION\t1\t0\nUSER\t" DOVECOT_REQ_ID
	    "\t%s\tservice=smtp\n", esc);
	if (n < 0 || (size_t)n >= reqlen)
		goto out;
	if (dc_open(dc, path) == -1 || dc_write(dc, req, (size_t)n) == -1) {
		log_err("dovecot userdb %.200s: %s", path, strerror(errno));
		goto out;
	}
	for (i = 0; i < DOVECOT_HANDSHAKE_LINES; i++) {
		if ((r = dc_getline(dc, &line)) != 1) {
			log_err("dovecot userdb %.200s: %s", path, r == 0 ?
			    "connection closed" : r == -2 ? "line too long" :
			    strerror(errno));
			goto out;
		}
		if (strncmp(line, "VERSION\t", 8) == 0) {
			if (strncmp(line + 8, "1\t", 2) != 0) {
				log_err("dovecot userdb %.200s: protocol "
				    "version %.20s, want 1", path, line + 8);
				goto out;
			}
		} else if (strncmp(line, "USER\t" DOVECOT_REQ_ID "\t", 7) ==
		    0) {
			res = DOVECOT_USER_YES;
			goto out;
		} else if (strncmp(line, "NOTFOUND\t" DOVECOT_REQ_ID, 10) ==
		    0 && (line[10] == '\0' || line[10] == '\t')) {
			res = DOVECOT_USER_NO;
			goto out;
		} else if (strncmp(line, "FAIL\t" DOVECOT_REQ_ID, 6) == 0 &&
		    (line[6] == '\0' || line[6] == '\t')) {
			log_err("dovecot userdb %.200s: lookup failed: %.200s",
			    path, line + 6);
			goto out;
		}
		/* SPID and whatever a later version adds: skipped. */
	}
	log_err("dovecot userdb %.200s: no answer in %d lines", path,
	    DOVECOT_HANDSHAKE_LINES);
out:
	free(req);
	dc_close(dc);
	free(dc);
	return res;
}
