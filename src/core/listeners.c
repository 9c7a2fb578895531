/*
 * Opening the daemon's listeners, or taking them from systemd.  See
 * listeners.h.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "listeners.h"
#include "server.h"

#define LISTEN_BACKLOG		1024
#define SD_LISTEN_FDS_START	3	/* sd_listen_fds(3) */

/*
 * What systemd passed, taken once from the environment by the main
 * thread before any other starts (setenv and getenv are not thread-safe).
 */
static int	sd_taken;
static int	sd_count;
static char	sd_names[LISTENERS_MAX * (LISTEN_NAME_MAX + 1) + 1];

/*
 * The listeners as they were bound, by the index their sockets' flags
 * carry: a reloaded table may list them elsewhere or not at all.  Written
 * by listeners_open() before any thread starts, read-only after.
 */
struct bound {
	char		 address[sizeof(((struct listen_conf *)0)->address)];
	char		 name[LISTEN_NAME_MAX + 1];
};
static struct bound	bound[LISTENERS_MAX];

static int	activated_count(void);
static int	wildcard(const struct sockaddr *);
static int	same_address(const char *conf, const struct sockaddr_storage *);
static const struct listen_conf *match_socket(const struct listen_table *,
		    int fd, const char *name, char *desc, size_t desclen);
static void	log_listener(const char *desc, const char *how, int flags,
		    const struct listen_conf *);

/* How many sockets systemd passed us: LISTEN_PID must be ours. */
static int
activated_count(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long p, n;

	if (pid == NULL || fds == NULL)
		return 0;
	errno = 0;
	p = strtol(pid, &end, 10);
	if (errno != 0 || *end != '\0' || p != (long)getpid())
		return 0;
	n = strtol(fds, &end, 10);
	if (errno != 0 || *end != '\0' || n <= 0 || n > LISTENERS_MAX)
		return 0;
	return (int)n;
}

int
listeners_activated(void)
{
	const char *names;

	if (!sd_taken) {
		sd_taken = 1;
		sd_count = activated_count();
		names = getenv("LISTEN_FDNAMES");
		if (sd_count > 0 && names != NULL)
			str_lcpy(sd_names, names, sizeof(sd_names));
		/* Not for our children: the runner's programs are no daemons. */
		if (sd_count > 0) {
			unsetenv("LISTEN_PID");
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_FDNAMES");
		}
	}
	return sd_count > 0;
}

int
listeners_flags(const struct listen_conf *l)
{
	int f = 0;

	if (l->tls == LTLS_IMPLICIT)
		f |= LISTEN_TLS;
	else if (l->tls == LTLS_NONE)
		f |= LISTEN_NO_STARTTLS;
	if (l->proxy)
		f |= LISTEN_PROXY;
	if (l->auth == LAUTH_REQUIRED)
		f |= LISTEN_AUTH_SET | LISTEN_AUTH_REQUIRED;
	else if (l->auth == LAUTH_OPTIONAL)
		f |= LISTEN_AUTH_SET;
	else if (l->auth == LAUTH_OFF)
		f |= LISTEN_AUTH_SET | LISTEN_AUTH_OFF;
	if (l->cleartext != -1)
		f |= LISTEN_CLEARTEXT_SET |
		    (l->cleartext ? LISTEN_CLEARTEXT : 0);
	return f;
}

/* The flags of listener i of t: its settings and where it is bound. */
static int
bind_flags(const struct listen_table *t, int i)
{
	str_lcpy(bound[i].address, t->l[i].address, sizeof(bound[i].address));
	str_lcpy(bound[i].name, t->l[i].name, sizeof(bound[i].name));
	return listeners_flags(&t->l[i]) | (i + 1) << LISTEN_INDEX_SHIFT;
}

static int
is_bound(const struct listen_conf *l, const struct bound *b)
{
	return strcmp(l->address, b->address) == 0 &&
	    strcmp(l->name, b->name) == 0;
}

const struct listen_conf *
listeners_conf(const struct policy *p, int flags)
{
	const struct listen_table *t = &p->listeners;
	const struct bound *b;
	int i = (flags >> LISTEN_INDEX_SHIFT & LISTEN_INDEX_MASK) - 1, j;

	if (i < 0 || i >= LISTENERS_MAX)
		return NULL;
	b = &bound[i];
	if (i < t->n && is_bound(&t->l[i], b))
		return &t->l[i];
	for (j = 0; j < t->n; j++)
		if (is_bound(&t->l[j], b))
			return &t->l[j];
	return NULL;
}

/* 0.0.0.0 or :: */
static int
wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

static int
sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

/*
 * Is the socket bound where the listen entry says?  The same port, and
 * the same address or both a wildcard: systemd's ListenStream=25 is
 * [::]:25, which takes IPv4 too, as ":25" and "0.0.0.0:25" mean here.
 */
static int
same_address(const char *conf, const struct sockaddr_storage *ss)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage a;
	const struct sockaddr *sa = (const struct sockaddr *)ss;
	char host[256], port[32];
	int match = 0;

	if (net_split_hostport(conf, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL && !match; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(a))
			continue;
		memset(&a, 0, sizeof(a));
		memcpy(&a, ai->ai_addr, ai->ai_addrlen);
		net_unmap(&a);
		if (sockaddr_port((struct sockaddr *)&a) != sockaddr_port(sa))
			continue;
		if (wildcard((struct sockaddr *)&a) || wildcard(sa))
			match = wildcard((struct sockaddr *)&a) && wildcard(sa);
		else if (a.ss_family == AF_INET && sa->sa_family == AF_INET)
			match = memcmp(&((struct sockaddr_in *)&a)->sin_addr,
			    &((const struct sockaddr_in *)sa)->sin_addr,
			    sizeof(struct in_addr)) == 0;
		else if (a.ss_family == AF_INET6 && sa->sa_family == AF_INET6)
			match = memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
			    &((const struct sockaddr_in6 *)sa)->sin6_addr,
			    sizeof(struct in6_addr)) == 0;
	}
	freeaddrinfo(res);
	return match;
}

/*
 * The listener a passed socket stands for: by FileDescriptorName= first,
 * then by address.  NULL: none.  desc gets the socket's address.
 */
static const struct listen_conf *
match_socket(const struct listen_table *t, int fd, const char *name,
    char *desc, size_t desclen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int i, port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(desc, desclen, "fd %d", fd);
		return NULL;
	}
	net_unmap(&ss);
	if (net_ntop((struct sockaddr *)&ss, desc, desclen, &port) == 0) {
		size_t n = strlen(desc);

		snprintf(desc + n, desclen - n, " port %d", port);
	} else
		snprintf(desc, desclen, "fd %d", fd);
	for (i = 0; name[0] != '\0' && i < t->n; i++)
		if (strcmp(t->l[i].name, name) == 0)
			return &t->l[i];
	for (i = 0; i < t->n; i++)
		if (same_address(t->l[i].address, &ss))
			return &t->l[i];
	return NULL;
}

static void
log_listener(const char *desc, const char *how, int flags,
    const struct listen_conf *l)
{
	log_info("listening on %s%s%s%s%s%s%s%s", desc, how,
	    l != NULL && l->name[0] ? " name=" : "", l != NULL ? l->name : "",
	    flags & LISTEN_PROXY ? " (PROXY header first)" : "",
	    flags & LISTEN_TLS ? " (implicit TLS)" : "",
	    flags & LISTEN_NO_STARTTLS ? " (no TLS)" : "",
	    flags & LISTEN_AUTH_REQUIRED ? " (AUTH required)" :
	    flags & LISTEN_AUTH_OFF ? " (no AUTH)" : "");
}

/* The n-th name in LISTEN_FDNAMES ("a:b:c"), or "". */
static void
fd_name(const char *names, int n, char *buf, size_t len)
{
	const char *p = names, *end;
	size_t l;

	buf[0] = '\0';
	if (p == NULL)
		return;
	for (; n > 0 && p != NULL; n--)
		if ((p = strchr(p, ':')) != NULL)
			p++;
	if (p == NULL)
		return;
	end = strchr(p, ':');
	l = end != NULL ? (size_t)(end - p) : strlen(p);
	if (l >= len)
		l = len - 1;
	memcpy(buf, p, l);
	buf[l] = '\0';
}

int
listeners_open(const struct policy *p, int *fds, int *flags, int max,
    int listen_now, char *err, size_t errlen)
{
	const struct listen_table *t = &p->listeners;
	const struct listen_conf *l;
	char taken[LISTEN_TABLE_MAX], name[LISTEN_NAME_MAX + 1];
	char desc[NET_ADDRSTR_MAX + 32];
	int i, fd, nsd, n = 0, acc;
	socklen_t alen;

	memset(taken, 0, sizeof(taken));
	nsd = listeners_activated() ? sd_count : 0;
	for (i = 0; i < nsd; i++) {
		fd = SD_LISTEN_FDS_START + i;
		acc = 0;
		alen = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc,
		    &alen) == -1 || !acc) {
			snprintf(err, errlen, "systemd passed fd %d, not a "
			    "listening socket (Accept=yes wants smtpd -i)", fd);
			goto fail;
		}
		if (n >= max) {
			snprintf(err, errlen, "more than %d listeners", max);
			goto fail;
		}
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		fd_name(sd_names, i, name, sizeof(name));
		l = match_socket(t, fd, name, desc, sizeof(desc));
		if (l != NULL)
			taken[l - t->l] = 1;
		else
			log_info("systemd socket %s%s%s matches no listen "
			    "entry: plain SMTP, STARTTLS and AUTH as the "
			    "global settings say", desc, name[0] ? " name=" :
			    "", name);
		fds[n] = fd;
		flags[n] = l != NULL ? bind_flags(t, (int)(l - t->l)) : 0;
		log_listener(desc, " (from systemd)", flags[n], l);
		n++;
	}
	for (i = 0; i < t->n; i++) {
		if (taken[i])
			continue;
		if (n >= max) {
			snprintf(err, errlen, "more than %d listeners", max);
			goto fail;
		}
		if ((fd = net_listen(t->l[i].address, listen_now ?
		    LISTEN_BACKLOG : -1, err, errlen)) == -1)
			goto fail;
		fds[n] = fd;
		flags[n] = bind_flags(t, i);
		log_listener(t->l[i].address, "", flags[n], &t->l[i]);
		n++;
	}
	return n;
fail:
	while (n > 0)
		close(fds[--n]);
	return -1;
}

int
listeners_listen(const int *fds, int n)
{
	socklen_t alen;
	int i, acc;

	for (i = 0; i < n; i++) {
		acc = 0;
		alen = sizeof(acc);
		/* systemd's keep the backlog its unit gave them. */
		if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc,
		    &alen) == 0 && acc)
			continue;
		if (listen(fds[i], LISTEN_BACKLOG) == -1)
			return -1;
	}
	return 0;
}

void
listeners_reload_check(const struct policy *running,
    const struct policy *loaded)
{
	if (!listenconf_equal(&running->listeners, &loaded->listeners))
		log_warn("reload: the listeners changed; new listeners and "
		    "their settings take a restart");
}
