#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "str.h"

/* The split both forms share; a bare IPv6 address needs brackets. */
static int
split(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *p, *colon;
	size_t hl;

	if (s[0] == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':' || p[2] == '\0')
			return -1;
		hl = (size_t)(p - s - 1);
		if (hl >= hostlen)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		p += 2;
	} else if ((colon = strrchr(s, ':')) != NULL) {
		if (strchr(s, ':') != colon)
			return -1;	/* bare IPv6 needs brackets */
		hl = (size_t)(colon - s);
		if (hl >= hostlen)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		p = colon + 1;
	} else {
		host[0] = '\0';
		p = s;
	}
	if (*p == '\0' || str_lcpy(port, p, portlen) >= portlen)
		return -1;
	return net_valid_port(port) ? 0 : -1;
}

int
net_split_hostport(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	if (split(s, host, hostlen, port, portlen) == -1)
		return -1;
	return host[0] == '\0' ||
	    strspn(host, "0123456789abcdefABCDEF.:") == strlen(host) ? 0 : -1;
}

int
net_split_service(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	if (split(s, host, hostlen, port, portlen) == -1)
		return -1;
	return host[0] != '\0' ? 0 : -1;
}

int
net_valid_port(const char *p)
{
	size_t n = strlen(p), digits = strspn(p, "0123456789");

	if (n == 0 || n > 32)
		return 0;
	if (digits == n)
		return n <= 5 && atoi(p) > 0 && atoi(p) <= 65535;
	/* A service name: letters, digits and hyphens, not all digits. */
	return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-") == n;
}

int
net_listen(const char *s, int backlog, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[32];
	int fd, on = 1, r;

	if (net_split_hostport(s, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "bad listen address \"%.100s\"", s);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if ((r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen address \"%.100s\": %s", s,
		    gai_strerror(r));
		return -1;
	}
	/* For the wildcard prefer IPv6, which also takes IPv4 (dual stack). */
	struct addrinfo *ai = res, *it;
	for (it = res; it != NULL && host[0] == '\0'; it = it->ai_next)
		if (it->ai_family == AF_INET6) {
			ai = it;
			break;
		}
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): a list */
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket for %.100s: %s", s, strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6) {
		int v6only = host[0] != '\0';

		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only));
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    (backlog >= 0 && listen(fd, backlog) == -1)) {
		snprintf(err, errlen, "listen on %.100s: %s", s, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

void
net_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

int
net_prefix_key(const struct sockaddr_storage *peer, int v4bits, int v6bits,
    unsigned char key[NET_KEY_LEN])
{
	struct sockaddr_storage ss = *peer;
	const unsigned char *a;
	int bits, i;

	net_unmap(&ss);
	memset(key, 0, NET_KEY_LEN);
	if (ss.ss_family == AF_INET) {
		a = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
		bits = v4bits > 32 ? 32 : v4bits;
		key[0] = 4;
	} else if (ss.ss_family == AF_INET6) {
		a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
		bits = v6bits > 128 ? 128 : v6bits;
		key[0] = 6;
	} else
		return -1;
	for (i = 0; i < bits / 8; i++)
		key[1 + i] = a[i];
	if (bits % 8)
		key[1 + i] = a[i] & (unsigned char)(0xff << (8 - bits % 8));
	return 0;
}

int
net_ntop(const struct sockaddr *sa, char *buf, size_t len, int *port)
{
	struct sockaddr_storage ss;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len) == NULL)
			return -1;
		if (port)
			*port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, s6, sizeof(*s6));
			net_unmap(&ss);
			return net_ntop((struct sockaddr *)&ss, buf, len, port);
		}
		if (inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len) == NULL)
			return -1;
		if (port)
			*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -1;
}

int
net_pton(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		net_unmap(ss);
		return 0;
	}
	return -1;
}

static int
same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_storage x, y;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	memcpy(&x, a, a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
	memcpy(&y, b, b->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
	net_unmap(&x);
	net_unmap(&y);
	if (x.ss_family != y.ss_family)
		return 0;
	if (x.ss_family == AF_INET)
		return memcmp(&((struct sockaddr_in *)&x)->sin_addr,
		    &((struct sockaddr_in *)&y)->sin_addr, 4) == 0;
	return memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr,
	    &((struct sockaddr_in6 *)&y)->sin6_addr, 16) == 0;
}

int
net_reverse_name(const struct sockaddr *sa, char *buf, size_t len)
{
	struct addrinfo hints, *res = NULL, *ai;
	char name[NI_MAXHOST];
	socklen_t salen;
	int ok = 0;

	buf[0] = '\0';
	salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (getnameinfo(sa, salen, name, sizeof(name), NULL, 0,
	    NI_NAMEREQD) != 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL && !ok; ai = ai->ai_next)
		ok = same_addr(ai->ai_addr, sa);
	freeaddrinfo(res);
	if (!ok)
		return -1;
	str_lcpy(buf, name, len);
	return 0;
}

long long
net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
net_poll_in(int fd, int ms)
{
	struct pollfd pfd;
	int r;

	pfd.fd = fd;
	pfd.events = POLLIN;
	do {
		pfd.revents = 0;
		r = poll(&pfd, 1, ms < 0 ? -1 : ms);
	} while (r == -1 && errno == EINTR);
	return r;
}

void
net_deadline_ts(struct timespec *ts, long long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000 * 1000;
	if (ts->tv_nsec >= 1000 * 1000 * 1000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000 * 1000 * 1000;
	}
}

int
net_wait(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int r;

	for (;;) {
		if ((left = deadline - net_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return 0;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

int
net_send_all(int fd, const void *p, size_t n, long long deadline)
{
	const char *b = p;
	ssize_t w;

	while (n > 0) {
		w = send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
		} else if (w == -1 && errno == EINTR)
			continue;
		else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (net_wait(fd, POLLOUT, deadline) != 1)
				return -1;
		} else
			return -1;
	}
	return 0;
}

/* Closes fd, keeping errno: -1. */
static int
close_failed(int fd)
{
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}

/*
 * A unix socket whose listener's backlog is full refuses a non-blocking
 * connect with EAGAIN, and no poll() says when there is room: connect
 * blocking, bounded by SO_SNDTIMEO (the kernel wakes it when there is
 * room), then make the socket non-blocking.
 */
static int
connect_unix(const struct sockaddr *sa, socklen_t len, long long deadline)
{
	struct timeval tv;
	long long left;
	int fd, fl;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	for (;;) {
		if ((left = deadline - net_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			goto bad;
		}
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof(tv)) == -1)
			goto bad;
		if (connect(fd, sa, len) == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			goto bad;
	}
	tv.tv_sec = 0;
	tv.tv_usec = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    (fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		goto bad;
	return fd;
bad:
	return close_failed(fd);
}

static int
connect_to(const struct sockaddr *sa, socklen_t len, long long deadline)
{
	socklen_t elen = sizeof(int);
	int fd, e = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	if (connect(fd, sa, len) == -1) {
		if (errno != EINPROGRESS ||
		    net_wait(fd, POLLOUT, deadline) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
			goto bad;
		if (e != 0) {
			errno = e;
			goto bad;
		}
	}
	return fd;
bad:
	return close_failed(fd);
}

int
net_connect(const char *path, const char *host, const char *port,
    long long deadline)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_un sun;
	int fd = -1, e = ECONNREFUSED;

	if (path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (str_lcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
		    sizeof(sun.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return connect_unix((struct sockaddr *)&sun, sizeof(sun),
		    deadline);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
		if ((fd = connect_to(ai->ai_addr, ai->ai_addrlen,
		    deadline)) == -1)
			e = errno;
	freeaddrinfo(res);
	if (fd == -1)
		errno = e;
	return fd;
}

void
net_host_name(char *buf, size_t len)
{
	struct addrinfo hints, *res = NULL;
	char host[256];

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0') {
		str_lcpy(buf, "localhost", len);
		return;
	}
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, NULL, &hints, &res) == 0) {
			if (res->ai_canonname != NULL &&
			    strchr(res->ai_canonname, '.') != NULL)
				str_lcpy(host, res->ai_canonname, sizeof(host));
			freeaddrinfo(res);
		}
	}
	str_lcpy(buf, host, len);
}
