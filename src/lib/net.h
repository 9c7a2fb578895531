/*
 * net: socket addresses -- parsing listen strings, printing peers,
 * opening listeners.
 */
#ifndef NET_H
#define NET_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stddef.h>
#include <time.h>

#define NET_ADDRSTR_MAX	64	/* INET6_ADDRSTRLEN plus room */

/*
 * Parses "host:port", "[v6addr]:port", ":port" or "port" into numeric host
 * and port strings.  host gets "" for the wildcard.  0 or -1.
 */
int	net_split_hostport(const char *s, char *host, size_t hostlen,
	    char *port, size_t portlen);
/*
 * Parses "host:port" or "[v6addr]:port" where host may be a name, as
 * the address of a service to connect to: host is never empty.  0 or -1.
 */
int	net_split_service(const char *s, char *host, size_t hostlen,
	    char *port, size_t portlen);
/* 1 if p is a port number (1-65535) or a service name. */
int	net_valid_port(const char *p);
/*
 * Opens, binds and listens on s (as above; the host must be numeric).
 * Returns the fd or -1 with a message in err.
 * A negative backlog leaves the socket bound but not listening yet.
 */
/* Milliseconds on the monotonic clock, for deadlines. */
long long net_now_ms(void);
/*
 * A deadline ms from now on the monotonic clock, for pthread_cond_timedwait()
 * on a condition variable set to that clock (pthread_condattr_setclock()).
 */
void	net_deadline_ts(struct timespec *, long long ms);
/*
 * Waits for events (poll(2)) on fd until deadline, a net_now_ms() time:
 * 1 when ready, 0 at the deadline (errno ETIMEDOUT), -1 on an error.
 */
int	net_wait(int fd, short events, long long deadline);
/*
 * Sends all n bytes of p on the socket fd before deadline (net_now_ms()
 * time), blocking or not, never raising SIGPIPE: 0, or -1 with errno
 * (ETIMEDOUT at the deadline).
 */
int	net_send_all(int fd, const void *p, size_t n, long long deadline);
/*
 * A non-blocking stream connection to the unix socket path, or when path
 * is NULL to host:port (every address it has, in turn), given up at
 * deadline (a net_now_ms() time); a unix socket's listener with a full
 * backlog is waited for.  The descriptor (O_NONBLOCK, close on exec), or
 * -1 with errno (ETIMEDOUT at the deadline).
 */
int	net_connect(const char *path, const char *host, const char *port,
	    long long deadline);
int	net_listen(const char *s, int backlog, char *err, size_t errlen);
/*
 * Writes the numeric address of sa to buf; IPv4-mapped IPv6 addresses are
 * shown as IPv4.  port may be NULL.  0 or -1.
 */
int	net_ntop(const struct sockaddr *sa, char *buf, size_t len, int *port);
/* Normalises an IPv4-mapped IPv6 address in place to AF_INET. */
void	net_unmap(struct sockaddr_storage *);
/*
 * A client's network as a key for counting: the address family, then the
 * first v4bits of an IPv4 address or v6bits of an IPv6 one, the rest
 * zero.  An IPv6 client counts as its /64 (one customer's prefix), not
 * its address, or a /64 would be 2^64 clients.  0, or -1 for a family
 * that is neither.
 */
#define NET_KEY_LEN	17
int	net_prefix_key(const struct sockaddr_storage *, int v4bits,
	    int v6bits, unsigned char key[NET_KEY_LEN]);
/* Parses a numeric IPv4 or IPv6 address into ss.  0 or -1. */
int	net_pton(const char *s, struct sockaddr_storage *ss);

/*
 * Waits up to ms milliseconds (< 0: without end) for fd to be readable:
 * poll()'s result (1, 0 on timeout, -1), an interrupted wait resumed.
 */
int	net_poll_in(int fd, int ms);
/*
 * This host's name: the canonical DNS name of gethostname(), that name
 * itself when it does not resolve, "localhost" when there is none.  The
 * default of smtpd, smtpq (so that EHLO, Received: and the DSNs'
 * Reporting-MTA agree), sendmail and smtp.
 */
void	net_host_name(char *buf, size_t len);
/*
 * The forward-confirmed reverse DNS name of sa: its PTR name, but only if
 * that name resolves back to the same address.  0 or -1 (buf gets "").
 */
int	net_reverse_name(const struct sockaddr *sa, char *buf, size_t len);

#endif
