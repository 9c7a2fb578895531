/*
 * The client's connection: a dial string or a domain's MX hosts, each
 * host's addresses in turn, the greeting, and the command and reply I/O
 * every other part uses.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "client.h"
#include "client_int.h"
#include "clientext.h"
#include "dial.h"
#include "pin.h"
#include "reply.h"
#include "tlspolicy.h"
#include "lib/dns.h"
#include "lib/lineio.h"
#include "lib/net.h"

static int	client_dial(const struct sockaddr_storage *, unsigned, char *,
		    size_t);
static void	client_close(struct client_conn *, int);
static enum try_result client_try(struct client_conn *,
		    const struct sockaddr_storage *, const char *, int, int,
		    struct client_result *);
static enum try_result client_try_addr(struct client_conn *,
		    const struct sockaddr_storage *, const char *, int, int,
		    struct client_result *);
static size_t	client_mx_self(const struct client_conn *, struct dns_mx *,
		    size_t);
static int	client_route(struct client_conn *, const struct dial *,
		    struct client_result *, int *);
static void	client_plan_debug(void *, const char *);

void
client_debug(const struct client_conn *c, const char *dir, const char *s,
    size_t len)
{
	char line[CLIENT_LINE_MAX + 16];
	int n;

	if (!c->opts.debug)
		return;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len > CLIENT_LINE_MAX)
		len = CLIENT_LINE_MAX;
	n = snprintf(line, sizeof(line), "%s %.*s\n", dir, (int)len, s);
	if (n > 0 && write(2, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1) < 0)
		return;
}

/*
 * Queues one command; shown, if not NULL, is what the transcript says
 * instead (secrets).  Flushed by the next read.  0 or -1.
 */
int
client_cmd(struct client_conn *c, const char *shown, const char *fmt, ...)
{
	struct str line;
	va_list ap;
	int r;

	str_init(&line, CLIENT_CMD_MAX);
	va_start(ap, fmt);
	r = str_vappendf(&line, fmt, ap);
	va_end(ap);
	if (r == 0) {
		client_debug(c, "->", shown != NULL ? shown : line.s,
		    shown != NULL ? strlen(shown) : line.len);
		r = str_append(&line, "\r\n", 2);
	}
	if (r == 0)
		r = lineio_write(c->io, line.s, line.len);
	if (line.s != NULL)
		str_wipe(line.s, line.len);
	str_free(&line);
	if (r == -1)
		c->broken = 1;
	return r;
}

/*
 * Reads one reply (flushing queued commands first).  lines, if not NULL,
 * gets each line's text followed by '\n' (for EHLO).
 * 0, -1 I/O error or timeout (errno), -2 not SMTP.
 */
int
client_reply(struct client_conn *c, struct reply *r, struct str *lines,
    unsigned timeout)
{
	struct reply_parser p;
	char *line;
	size_t len;
	int rc;

	reply_init(&p, r, lines);
	lineio_set_timeout(c->io, (int)timeout * 1000);
	if (lineio_flush(c->io) == -1) {
		c->broken = 1;
		return -1;
	}
	for (;;) {
		rc = lineio_getline(c->io, &line, &len);
		if (rc == 0) {
			errno = ECONNRESET;
			c->broken = 1;
			return -1;
		}
		if (rc == -1) {
			c->broken = 1;
			return -1;
		}
		if (rc == -2) {
			c->broken = 1;
			return -2;
		}
		client_debug(c, "<-", line, len);
		if ((rc = reply_line(&p, line, len)) == -2) {
			c->broken = 1;
			return -2;
		}
		if (rc == 1) {
			if (r->code == 421)
				c->broken = 1;	/* RFC 5321 3.8 */
			return 0;
		}
	}
}

/* ---------------------------------------------------------------- */
/* Connections */

static int
client_dial(const struct sockaddr_storage *ss, unsigned timeout, char *err,
    size_t errlen)
{
	socklen_t salen, elen;
	struct pollfd p;
	int fd, on = 1, e = 0, r, flags;

	salen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    ss->ss_family == AF_UNIX ? sizeof(struct sockaddr_un) :
	    sizeof(struct sockaddr_in);
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, salen) == -1) {
		if (errno != EINPROGRESS) {
			snprintf(err, errlen, "%s", strerror(errno));
			close(fd);
			return -1;
		}
		p.fd = fd;
		p.events = POLLOUT;
		do {
			r = poll(&p, 1, (int)timeout * 1000);
		} while (r == -1 && errno == EINTR);
		if (r == 0) {
			snprintf(err, errlen, "connection timed out after %u s",
			    timeout);
			close(fd);
			return -1;
		}
		elen = sizeof(e);
		if (r == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e,
		    &elen) == -1 || e != 0) {
			snprintf(err, errlen, "%s", strerror(e ? e : errno));
			close(fd);
			return -1;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	/* We write in large blocks; don't let Nagle hold back the last. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	return fd;
}

/* Ends the transport of the current attempt; quit: say QUIT first. */
static void
client_close(struct client_conn *c, int quit)
{
	struct reply r;

	if (quit && c->io != NULL && !c->broken &&
	    client_cmd(c, NULL, "QUIT") == 0)
		(void)client_reply(c, &r, NULL,
		    c->opts.command_timeout < CLIENT_QUIT_WAIT ?
		    c->opts.command_timeout : CLIENT_QUIT_WAIT);
	if (c->tls != NULL) {
		if (!c->broken)
			(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	lineio_free(&c->io);
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	c->caps = 0;
	c->broken = 0;
	c->ntrans = 0;
}

/* ---------------------------------------------------------------- */
/* Connecting */

/*
 * One address: connect, greeting, EHLO, STARTTLS, AUTH.  On success the
 * session is ready for MAIL.
 */
static enum try_result
client_try(struct client_conn *c, const struct sockaddr_storage *ss,
    const char *host, int literal, int implicit_tls,
    struct client_result *res)
{
	const struct client_opts *o = &c->opts;
	struct reply r;
	char err[256], note[CLIENT_HOST_MAX + 64];
	enum try_result t;
	int port = 0, rc, n;

	str_lcpy(c->host, host, sizeof(c->host));
	c->literal = literal;
	if (net_ntop((const struct sockaddr *)ss, c->addr, sizeof(c->addr),
	    &port) == -1)
		str_lcpy(c->addr, "?", sizeof(c->addr));
	if (ss->ss_family == AF_UNIX)
		str_lcpy(c->peer, host, sizeof(c->peer));
	else if (literal)
		snprintf(c->peer, sizeof(c->peer), "[%s]", c->addr);
	else
		snprintf(c->peer, sizeof(c->peer), "%s [%s]", host, c->addr);
	n = snprintf(note, sizeof(note), "connecting to %s port %d", c->peer,
	    port);
	client_debug(c, "*", note, n > 0 ? (size_t)n : 0);

	if ((c->fd = client_dial(ss, o->connect_timeout, err,
	    sizeof(err))) == -1) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NETWORK, 1,
		    c->peer, "connect to %s port %d: %s", c->peer, port, err);
		return TRY_NEXT;
	}
	if ((c->io = lineio_new(c->fd, c->fd, CLIENT_LINE_MAX)) == NULL) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NOMEM, 0,
		    c->peer, "out of memory");
		client_close(c, 0);
		return TRY_STOP;
	}
	if (implicit_tls && (t = client_tls_start(c, 1, res)) != TRY_OK) {
		client_close(c, 0);
		return t;
	}
	rc = client_reply(c, &r, NULL, o->command_timeout);
	if (rc != 0 || r.code != 220) {
		if (rc == -1) {
			int e = errno;

			client_set(res, CLIENT_PH_GREETING,
			    CLIENT_CAUSE_NETWORK, 1, c->peer, "no greeting: %s",
			    strerror(e));
			/* Silence, or a hang-up: the server may be
			 * waiting for a TLS handshake. */
			if (!implicit_tls && (e == ETIMEDOUT ||
			    e == ECONNRESET))
				res->hint = CLIENT_HINT_IMPLICIT_TLS;
		}
		else if (rc == -2 || r.code / 100 == 2)
			client_set(res, CLIENT_PH_GREETING,
			    CLIENT_CAUSE_PROTOCOL, 0, c->peer,
			    "the greeting is not SMTP");
		else
			client_set_reply(res, c->peer, CLIENT_PH_GREETING, &r,
			    "greeting");
		client_close(c, rc == 0);
		return TRY_NEXT;
	}
	str_lcpy(c->greeting, r.text, sizeof(c->greeting));
	if ((t = client_ehlo(c, res)) != TRY_OK) {
		client_close(c, 1);
		return t;
	}
	if ((o->tls == CLIENT_TLS_OPPORTUNISTIC ||
	    o->tls == CLIENT_TLS_REQUIRE) && c->tls == NULL && !c->cleartext) {
		if (!(c->caps & CAP_STARTTLS)) {
			tlsplan_fail(c->plan, c->host, c->addr,
			    "starttls-not-supported", "no STARTTLS offered");
			if (o->tls == CLIENT_TLS_REQUIRE) {
				client_set(res, CLIENT_PH_STARTTLS,
				    CLIENT_CAUSE_TLS_NOT_OFFERED, 0, c->peer,
				    "the server does not offer "
				    "STARTTLS, and TLS is required");
				client_close(c, 1);
				return TRY_NEXT;
			}
		} else {
			if (client_cmd(c, NULL, "STARTTLS") == -1 ||
			    (rc = client_reply(c, &r, NULL,
			    o->command_timeout)) == -1) {
				client_set(res, CLIENT_PH_STARTTLS,
				    CLIENT_CAUSE_NETWORK, 1, c->peer,
				    "STARTTLS: connection lost: %s",
				    strerror(errno));
				client_close(c, 0);
				return TRY_NEXT;
			}
			if (rc == -2) {
				client_set(res, CLIENT_PH_STARTTLS,
				    CLIENT_CAUSE_PROTOCOL, 0, c->peer,
				    "STARTTLS: the reply is not SMTP");
				client_close(c, 0);
				return TRY_NEXT;
			}
			if (r.code != 220) {
				client_set_reply(res, c->peer,
				    CLIENT_PH_STARTTLS, &r, "STARTTLS");
				if (o->tls == CLIENT_TLS_REQUIRE ||
				    r.code == 421) {
					if (!res->temporary)
						res->cause =
						    CLIENT_CAUSE_TLS_REFUSED;
					client_close(c, 1);
					return TRY_NEXT;
				}
				/* Opportunistic: carry on in the clear. */
				goto tls_done;
			}
			/* RFC 3207 5: nothing may come before the handshake. */
			if (lineio_pending(c->io) > 0) {
				client_set(res, CLIENT_PH_STARTTLS,
				    CLIENT_CAUSE_PROTOCOL, 0, c->peer,
				    "STARTTLS: data after the 220 reply "
				    "(injection attempt?)");
				client_close(c, 0);
				return TRY_NEXT;
			}
			if ((t = client_tls_start(c, 0, res)) != TRY_OK) {
				c->tls_failed = 1;
				client_close(c, 0);
				return t;
			}
			/* RFC 3207 4.2: forget what we knew; ask again. */
			if ((t = client_ehlo(c, res)) != TRY_OK) {
				client_close(c, 1);
				return t;
			}
		}
	}
tls_done:
	if (o->auth_user != NULL && (t = client_auth(c, res)) != TRY_OK) {
		client_close(c, 1);
		return t;
	}
	return TRY_OK;
}

/*
 * One address; under opportunistic TLS with tls_fallback, once more in the
 * clear when the TLS handshake failed there: a server whose TLS is broken
 * still gets its mail, as it would without STARTTLS (RFC 7435).
 */
static enum try_result
client_try_addr(struct client_conn *c, const struct sockaddr_storage *ss,
    const char *host, int literal, int implicit_tls,
    struct client_result *res)
{
	struct client_result again;
	enum try_result t;
	char note[CLIENT_HOST_MAX + 64];
	int n;

	c->tls_failed = 0;
	t = client_try(c, ss, host, literal, implicit_tls, res);
	if (t != TRY_NEXT || !c->tls_failed || !c->opts.tls_fallback ||
	    c->opts.tls != CLIENT_TLS_OPPORTUNISTIC)
		return t;
	n = snprintf(note, sizeof(note), "TLS failed with %s; trying again "
	    "without TLS", c->peer);
	client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
	c->cleartext = 1;
	t = client_try(c, ss, host, literal, implicit_tls, &again);
	c->cleartext = 0;
	if (t != TRY_OK)
		client_merge(res, &again);
	return t;
}

/*
 * RFC 5321 5.1: when we are one of the MX hosts, only those preferred to
 * us may be tried.  Returns how many of the sorted mx[] remain.
 */
static size_t
client_mx_self(const struct client_conn *c, struct dns_mx *mx, size_t nmx)
{
	size_t i, j;

	if (c->opts.self == NULL || c->opts.self[0] == '\0')
		return nmx;
	for (i = 0; i < nmx; i++)
		if (str_host_eq(mx[i].host, c->opts.self))
			break;
	if (i == nmx)
		return nmx;
	for (j = 0; j < i && mx[j].pref < mx[i].pref; j++)
		;
	return j;
}

static void
client_plan_debug(void *arg, const char *s)
{
	client_debug(arg, "*", s, strlen(s));
}

/*
 * Tries every address of the destination in order.  0 connected, -1 not
 * (res says why).  *unresolved is set when the name led to no address at
 * all (the case for the gateway).
 */
static int
client_route(struct client_conn *c, const struct dial *d,
    struct client_result *res, int *unresolved)
{
	struct sockaddr_storage addrs[DNS_ADDR_MAX];
	struct dns_mx mx[DNS_MX_MAX];
	struct client_result one;
	struct addrinfo hints, *ai = NULL, *a;
	enum dns_status st;
	enum try_result t;
	char port[8], note[CLIENT_HOST_MAX + 64];
	size_t nmx, na, i, j, nbusted = 0, nrefused = 0;
	int tries = 0, r, n, any_temp_dns = 0, secure = 0;
	int implicit = d->implicit_tls || c->opts.tls == CLIENT_TLS_IMPLICIT;

	*unresolved = 0;
	memset(res, 0, sizeof(*res));
	if (d->kind == DIAL_HOST) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = d->literal ? AI_NUMERICHOST : 0;
		snprintf(port, sizeof(port), "%u", d->port);
		if ((r = getaddrinfo(d->host, port, &hints, &ai)) != 0) {
			if (r == EAI_NONAME
#ifdef EAI_NODATA
			    || r == EAI_NODATA
#endif
			    ) {
				*unresolved = 1;
				client_set(res, CLIENT_PH_CONNECT,
				    CLIENT_CAUSE_NO_HOST, 0, d->host,
				    "host %s not found", d->host);
			} else
				client_set(res, CLIENT_PH_CONNECT,
				    CLIENT_CAUSE_DNS, 1, d->host,
				    "cannot look up %s: %s", d->host, r ==
				    EAI_SYSTEM ? strerror(errno) :
				    gai_strerror(r));
			return -1;
		}
		tlsplan_domain(c->plan, d->host, 0, !d->literal,
		    client_plan_debug, c);
		if (tlsplan_host(c->plan, &c->opts, d->host, d->port,
		    res) == -1) {
			freeaddrinfo(ai);
			return -1;
		}
		for (a = ai; a != NULL && tries < CLIENT_TRIES_MAX;
		    a = a->ai_next) {
			struct sockaddr_storage ss;

			if (a->ai_addrlen > sizeof(ss))
				continue;
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, a->ai_addr, a->ai_addrlen);
			tries++;
			t = client_try_addr(c, &ss, d->host, d->literal,
			    implicit, &one);
			if (t == TRY_OK) {
				freeaddrinfo(ai);
				return 0;
			}
			client_merge(res, &one);
			if (t == TRY_STOP)
				break;
		}
		freeaddrinfo(ai);
		return -1;
	}

	st = dns_mx_secure(d->host, mx, DNS_MX_MAX, &nmx, &secure);
	switch (st) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		/* RFC 5321 5.1: no MX, so the domain is its own MX. */
		str_lcpy(mx[0].host, d->host, sizeof(mx[0].host));
		mx[0].pref = 0;
		nmx = 1;
		break;
	case DNS_NULLMX:
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NULL_MX, 0,
		    d->host, "%s accepts no mail (null MX, RFC 7505)", d->host);
		return -1;
	case DNS_NXDOMAIN:
		*unresolved = 1;
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NO_HOST, 0,
		    d->host, "no such domain: %s", d->host);
		return -1;
	case DNS_TEMPFAIL:
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_DNS, 1, d->host,
		    "DNS lookup of the MX of %s failed; will retry", d->host);
		return -1;
	}
	if ((nmx = client_mx_self(c, mx, nmx)) == 0) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_MX_LOOP, 0,
		    d->host,
		    "mail for %s loops back to myself (%s is its best MX "
		    "host)", d->host, c->opts.self);
		return -1;
	}
	/* RFC 7672 2.2.1: DANE only behind a validated MX answer. */
	tlsplan_domain(c->plan, d->host, 1, st == DNS_OK && secure,
	    client_plan_debug, c);
	for (i = 0; i < nmx && tries < CLIENT_TRIES_MAX; i++) {
		int busted = 0;

		for (j = 0; c->opts.busted_mx != NULL &&
		    c->opts.busted_mx[j] != NULL && j < CLIENT_BUSTED_MAX; j++)
			if (str_host_eq(c->opts.busted_mx[j], mx[i].host))
				busted = 1;
		if (busted) {
			n = snprintf(note, sizeof(note),
			    "skipping busted MX %s", mx[i].host);
			client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
			nbusted++;
			continue;
		}
		if (tlsplan_host(c->plan, &c->opts, mx[i].host, d->port,
		    &one) == -1) {
			client_debug(c, "*", one.text, strlen(one.text));
			client_merge(res, &one);
			nrefused++;
			continue;
		}
		st = dns_addrs(mx[i].host, d->port, addrs, DNS_ADDR_MAX, &na);
		if (st != DNS_OK) {
			n = snprintf(note, sizeof(note), "MX %s: %s",
			    mx[i].host, dns_status_str(st));
			client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
			if (st == DNS_TEMPFAIL)
				any_temp_dns = 1;
			continue;
		}
		for (j = 0; j < na && tries < CLIENT_TRIES_MAX; j++) {
			tries++;
			t = client_try_addr(c, &addrs[j], mx[i].host, 0,
			    implicit, &one);
			if (t == TRY_OK)
				return 0;
			client_merge(res, &one);
			if (t == TRY_STOP)
				return -1;
		}
	}
	if (tries > 0) {
		if (any_temp_dns && !res->temporary)
			client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_DNS, 1,
			    NULL,
			    "%s (and the DNS lookup of another MX host failed)",
			    res->text);
		return -1;
	}
	if (nrefused > 0)
		return -1;	/* res says why the policy refused them */
	if (any_temp_dns)
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_DNS, 1, d->host,
		    "DNS lookup of the mail hosts of %s failed; will retry",
		    d->host);
	else if (nbusted > 0)
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_BUSTED, 1,
		    d->host, "every usable MX host of %s is marked busted",
		    d->host);
	else {
		*unresolved = 1;
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NO_HOST, 0,
		    d->host, "no address for the mail hosts of %s", d->host);
	}
	return -1;
}

struct client_conn *
client_connect(const char *dest, const struct client_opts *opts,
    struct client_result *res)
{
	struct client_conn *c;
	struct client_result gres;
	struct dial d;
	char err[256], note[300];
	int unresolved, n;

	memset(res, 0, sizeof(*res));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NOMEM, 0, dest,
		    "out of memory");
		return NULL;
	}
	c->opts = *opts;
	c->fd = -1;
	if (c->opts.helo == NULL || c->opts.helo[0] == '\0')
		c->opts.helo = "localhost";
	if (c->opts.connect_timeout == 0)
		c->opts.connect_timeout = DEF_CONNECT_TIMEOUT;
	if (c->opts.command_timeout == 0)
		c->opts.command_timeout = DEF_COMMAND_TIMEOUT;
	if (c->opts.data_timeout == 0)
		c->opts.data_timeout = DEF_DATA_TIMEOUT;
	if (c->opts.auth_user != NULL && c->opts.auth_secret == NULL) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_CONFIG, 0, dest,
		    "AUTH as %s wanted, but no secret given",
		    c->opts.auth_user);
		free(c);
		return NULL;
	}
	if ((c->plan = tlsplan_new(&c->opts)) == NULL) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NOMEM, 0, dest,
		    "out of memory");
		free(c);
		return NULL;
	}
	if (dial_parse(dest, &d, err, sizeof(err)) == -1) {
		tlsplan_free(c->plan);
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_USAGE, 0, dest,
		    "bad destination \"%.100s\": %s", dest, err);
		free(c);
		return NULL;
	}
	if (client_route(c, &d, res, &unresolved) == 0)
		return c;
	if (unresolved && c->opts.gateway != NULL) {
		n = snprintf(note, sizeof(note), "%s; trying the gateway %s",
		    res->text, c->opts.gateway);
		client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
		if (dial_parse(c->opts.gateway, &d, err, sizeof(err)) == -1) {
			client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_USAGE,
			    0, c->opts.gateway, "bad gateway \"%.100s\": %s",
			    c->opts.gateway, err);
		} else if (client_route(c, &d, &gres, &unresolved) == 0)
			return c;
		else
			*res = gres;
	}
	client_quit(&c);
	return NULL;
}

const char *
client_peer(const struct client_conn *c)
{
	return c->peer;
}

const char *
client_tls_auth(const struct client_conn *c)
{
	return tlsplan_auth(c->plan, c->tls != NULL);
}

const char *
client_greeting(const struct client_conn *c)
{
	return c->greeting;
}

const char *
client_ehlo_reply(const struct client_conn *c)
{
	return c->ehlo;
}

gnutls_session_t
client_tls_session(const struct client_conn *c)
{
	return c->tls;
}

int
client_tls_active(const struct client_conn *c)
{
	return c->tls != NULL;
}

int
client_offers(const struct client_conn *c, const char *ext)
{
	static const struct {
		const char	*name;
		unsigned	 cap;
	} caps[] = {
		{ "PIPELINING", CAP_PIPELINING }, { "SIZE", CAP_SIZE },
		{ "8BITMIME", CAP_8BITMIME }, { "SMTPUTF8", CAP_SMTPUTF8 },
		{ "STARTTLS", CAP_STARTTLS }, { "AUTH", CAP_AUTH },
		{ "DSN", CAP_DSN }, { "REQUIRETLS", CAP_REQUIRETLS },
	};
	size_t i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (strcasecmp(ext, caps[i].name) == 0)
			return (c->caps & caps[i].cap) != 0;
	return 0;
}

int
client_usable(const struct client_conn *c)
{
	return c->io != NULL && !c->broken && (c->limits.mailmax == 0 ||
	    (unsigned)c->ntrans < c->limits.mailmax);
}

int
client_idle_ok(const struct client_conn *c)
{
	return client_usable(c) && lineio_pending(c->io) == 0 &&
	    net_poll_in(c->fd, 0) == 0;
}

void
client_quit(struct client_conn **cp)
{
	struct client_conn *c = *cp;

	if (c == NULL)
		return;
	client_close(c, 1);
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	if (c->tls_inited)
		gnutls_global_deinit();
	tlsplan_free(c->plan);
	free(c);
	*cp = NULL;
}

/* ---------------------------------------------------------------- */
/* LMTP (RFC 2033) */

struct client_conn *
client_connect_unix(const char *path, const struct client_opts *opts,
    struct client_result *res)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	struct client_conn *c;

	memset(res, 0, sizeof(*res));
	memset(&ss, 0, sizeof(ss));
	sun->sun_family = AF_UNIX;
	if (path[0] != '/' || str_lcpy(sun->sun_path, path,
	    sizeof(sun->sun_path)) >= sizeof(sun->sun_path)) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_USAGE, 0, path,
		    "bad socket path " "\"%.100s\": not absolute, or too long",
		    path);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		client_set(res, CLIENT_PH_CONNECT, CLIENT_CAUSE_NOMEM, 0, path,
		    "out of memory");
		return NULL;
	}
	c->opts = *opts;
	c->opts.tls = CLIENT_TLS_NONE;
	c->opts.auth_user = NULL;
	c->fd = -1;
	if (c->opts.helo == NULL || c->opts.helo[0] == '\0')
		c->opts.helo = "localhost";
	if (c->opts.connect_timeout == 0)
		c->opts.connect_timeout = DEF_CONNECT_TIMEOUT;
	if (c->opts.command_timeout == 0)
		c->opts.command_timeout = DEF_COMMAND_TIMEOUT;
	if (c->opts.data_timeout == 0)
		c->opts.data_timeout = DEF_DATA_TIMEOUT;
	if (client_try(c, &ss, path, 1, 0, res) == TRY_OK)
		return c;
	client_quit(&c);
	return NULL;
}

