/*
 * Reading the PROXY header.  Bytes are peeked first and taken off the
 * socket only as far as the parser says they belong to the header, so
 * the first SMTP bytes stay for the session.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "lib/net.h"
#include "proxyio.h"

/* Takes exactly n peeked bytes off the socket.  0 or -1. */
static int
consume(int fd, unsigned char *buf, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = recv(fd, buf, n, MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

int
proxy_read(int fd, int timeout_ms, struct proxy_info *pi, const char **why)
{
	unsigned char buf[PROXY_HDR_MAX];
	struct pollfd pfd;
	long deadline = net_now_ms() + timeout_ms, left;
	size_t have = 0;
	ssize_t n;
	int r;

	for (;;) {
		left = deadline - net_now_ms();
		if (left <= 0) {
			*why = have ? "header not complete in time" :
			    "no header in time";
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		r = poll(&pfd, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*why = strerror(errno);
			return -1;
		}
		if (r == 0)
			continue;
		n = recv(fd, buf + have, sizeof(buf) - have,
		    MSG_PEEK | MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			*why = strerror(errno);
			return -1;
		}
		if (n == 0) {
			*why = have ? "truncated header" :
			    "closed before sending a header";
			return -1;
		}
		r = proxy_parse(buf, have + (size_t)n, pi);
		if (r == -1) {
			*why = pi->error;
			return -1;
		}
		if (r > 0) {
			if (consume(fd, buf + have, (size_t)r - have) == -1) {
				*why = "read error";
				return -1;
			}
			return 0;
		}
		/* All of it is header: take it, wait for the rest. */
		if (consume(fd, buf + have, (size_t)n) == -1) {
			*why = "read error";
			return -1;
		}
		have += (size_t)n;
		if (have == sizeof(buf)) {
			*why = "header too long";
			return -1;
		}
	}
}

int
proxy_sniff(int fd)
{
	unsigned char buf[16];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return 0;
	/* Five bytes at least: a stray "P" is a client's typo, not a header. */
	if (n < 5)
		return 0;
	return proxy_looks_like(buf, (size_t)n);
}
