/*
 * table_socketmap: lookups answered by another program over the Postfix
 * socketmap protocol (socketmap_table(5)): the request is the netstring
 * "name key", the reply a netstring "OK value", "NOTFOUND ", "TEMP why",
 * "TIMEOUT why" or "PERM why".
 *
 * One connection per lookup, all of it bounded by TABLE_IO_TIMEOUT and
 * the reply by SM_REPLY_MAX.  Anything but OK or NOTFOUND -- the service
 * down, slow, or talking nonsense -- is TABLE_TEMP with the reason, so
 * the caller defers and never accepts on a guess.
 */
#include "config.h"

#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "str.h"
#include "table.h"

#define SM_REPLY_MAX	(TABLE_VALUE_MAX + 64)
#define SM_NAME_MAX	100

struct smtab {
	int	 unix_;			/* 1: path, 0: host and port */
	char	 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char	 host[256];
	char	 port[16];
	char	 name[SM_NAME_MAX + 1];
};

static int
sm_open(struct table *t, const char *arg, char *err, size_t errlen)
{
	char ep[TABLE_REF_MAX], *colon;
	struct smtab *sm;

	if ((sm = calloc(1, sizeof(*sm))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	str_lcpy(ep, arg, sizeof(ep));
	if ((colon = strrchr(ep, ':')) == NULL || colon[1] == '\0' ||
	    strlen(colon + 1) > SM_NAME_MAX || strchr(colon + 1, ' ')) {
		snprintf(err, errlen, "%s: a socketmap ends in :name",
		    table_ref(t));
		goto fail;
	}
	str_lcpy(sm->name, colon + 1, sizeof(sm->name));
	*colon = '\0';
	if (strncmp(ep, "unix:", 5) == 0) {
		sm->unix_ = 1;
		if (ep[5] != '/' || str_lcpy(sm->path, ep + 5,
		    sizeof(sm->path)) >= sizeof(sm->path)) {
			snprintf(err, errlen, "%s: socketmap:unix: needs an "
			    "absolute socket path", table_ref(t));
			goto fail;
		}
	} else if (strncmp(ep, "inet:", 5) == 0) {
		if (net_split_hostport(ep + 5, sm->host, sizeof(sm->host),
		    sm->port, sizeof(sm->port)) == -1 || sm->host[0] == '\0' ||
		    !net_valid_port(sm->port)) {
			snprintf(err, errlen, "%s: socketmap:inet: needs "
			    "host:port:name", table_ref(t));
			goto fail;
		}
	} else {
		snprintf(err, errlen, "%s: use socketmap:unix:/path:name or "
		    "socketmap:inet:host:port:name", table_ref(t));
		goto fail;
	}
	table_set_priv(t, sm);
	return 0;
fail:
	free(sm);
	return -1;
}

static int
sm_connect(const struct smtab *sm, long long deadline, char *err,
    size_t errlen)
{
	int fd;

	if ((fd = net_connect(sm->unix_ ? sm->path : NULL, sm->host, sm->port,
	    deadline)) == -1)
		snprintf(err, errlen, "cannot connect: %s", strerror(errno));
	return fd;
}

/* Waits for input until the deadline: 0, or -1 with errno. */
static int
wait_in(int fd, long long deadline)
{
	return net_wait(fd, POLLIN, deadline) == 1 ? 0 : -1;
}

/*
 * Reads one netstring into buf (NUL-terminated): its length, ':', the
 * data, ','.  0, or -1 with a reason in err.
 */
static int
read_netstring(int fd, char *buf, size_t buflen, long long deadline,
    char *err, size_t errlen)
{
	char head[16];
	size_t hl = 0, want, got = 0;
	ssize_t r;
	char c;

	/* The length, one byte at a time: it is short. */
	for (;;) {
		if (wait_in(fd, deadline) == -1)
			goto ioerr;
		if ((r = read(fd, &c, 1)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			goto ioerr;
		}
		if (r == 0)
			goto eof;
		if (c == ':')
			break;
		if (c < '0' || c > '9' || hl >= 6) {
			snprintf(err, errlen, "malformed reply (not a "
			    "netstring, or longer than %d bytes)",
			    SM_REPLY_MAX);
			return -1;
		}
		head[hl++] = c;
	}
	head[hl] = '\0';
	if (hl == 0 || (want = strtoul(head, NULL, 10)) > SM_REPLY_MAX ||
	    want + 2 > buflen) {
		snprintf(err, errlen, "malformed reply (%s)", hl == 0 ?
		    "no length" : "too long");
		return -1;
	}
	/* The data and the ','. */
	while (got < want + 1) {
		if (wait_in(fd, deadline) == -1)
			goto ioerr;
		if ((r = read(fd, buf + got, want + 1 - got)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			goto ioerr;
		}
		if (r == 0)
			goto eof;
		got += (size_t)r;
	}
	if (buf[want] != ',') {
		snprintf(err, errlen, "malformed reply (no ',' after the "
		    "data)");
		return -1;
	}
	buf[want] = '\0';
	if (memchr(buf, '\0', want) != NULL) {
		snprintf(err, errlen, "malformed reply (a NUL byte)");
		return -1;
	}
	return 0;
ioerr:
	snprintf(err, errlen, "%s", errno == ETIMEDOUT ? "no reply in time" :
	    strerror(errno));
	return -1;
eof:
	snprintf(err, errlen, "connection closed before a whole reply");
	return -1;
}

static enum table_result
sm_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	const struct smtab *sm = table_priv(t);
	char req[TABLE_KEY_MAX + SM_NAME_MAX + 32], reply[SM_REPLY_MAX + 2];
	char why[256];
	long long deadline;
	int fd, n;

	n = snprintf(req, sizeof(req), "%zu:%s %s,",
	    strlen(sm->name) + 1 + strlen(key), sm->name, key);
	if (n < 0 || (size_t)n >= sizeof(req))
		return TABLE_NOTFOUND;	/* no entry can be this long */
	deadline = net_now_ms() + TABLE_IO_TIMEOUT * 1000LL;
	if ((fd = sm_connect(sm, deadline, why, sizeof(why))) == -1)
		goto temp;
	if (net_send_all(fd, req, (size_t)n, deadline) == -1) {
		snprintf(why, sizeof(why), "cannot send: %s",
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		close(fd);
		goto temp;
	}
	if (read_netstring(fd, reply, sizeof(reply), deadline, why,
	    sizeof(why)) == -1) {
		close(fd);
		goto temp;
	}
	close(fd);
	if (strncmp(reply, "OK ", 3) == 0) {
		str_lcpy(val, reply + 3, vallen);
		return TABLE_FOUND;
	}
	if (strncmp(reply, "NOTFOUND", 8) == 0 &&
	    (reply[8] == '\0' || reply[8] == ' '))
		return TABLE_NOTFOUND;
	if (strncmp(reply, "TEMP", 4) == 0 ||
	    strncmp(reply, "TIMEOUT", 7) == 0 ||
	    strncmp(reply, "PERM", 4) == 0) {
		str_printable(why, sizeof(why), reply, strlen(reply));
		goto temp;
	}
	snprintf(why, sizeof(why), "malformed reply \"");
	str_printable(why + strlen(why), sizeof(why) - strlen(why) - 2,
	    reply, strlen(reply));
	str_lcat(why, "\"", sizeof(why));
temp:
	snprintf(err, errlen, "%s: %s", table_ref(t), why);
	return TABLE_TEMP;
}

static void
sm_close(struct table *t)
{
	free(table_priv(t));
}

const struct table_backend table_socketmap_backend = {
	"socketmap", sm_open, sm_lookup, sm_close
};
