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
#include <sysexits.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "client.h"
#include "clientext.h"
#include "dial.h"
#include "pin.h"
#include "reply.h"
#include "tlspolicy.h"
#include "lib/dns.h"
#include "lib/lineio.h"
#include "lib/net.h"

#define CLIENT_LINE_MAX		4096	/* a reply line (RFC: 512) */
#define CLIENT_CMD_MAX		16384	/* a command line */
#define CLIENT_PIPE_GROUP	64	/* commands per pipelined write */
#define CLIENT_CHUNK		65536	/* message data sent at once */
#define CLIENT_TRIES_MAX	32	/* addresses tried per connect */
#define CLIENT_QUIT_WAIT	10	/* seconds to wait for QUIT's reply */
#define CLIENT_AUTH_LIST_MAX	256
#define CLIENT_EHLO_KEEP	2048	/* EHLO reply kept for smtp -p */

#define DEF_CONNECT_TIMEOUT	30	/* seconds */
#define DEF_COMMAND_TIMEOUT	300	/* RFC 5321 4.5.3.2: 5 minutes */
#define DEF_DATA_TIMEOUT	600	/* RFC 5321 4.5.3.2.6: 10 minutes */

#define CAP_PIPELINING	0x01
#define CAP_SIZE	0x02
#define CAP_8BITMIME	0x04
#define CAP_SMTPUTF8	0x08
#define CAP_STARTTLS	0x10
#define CAP_AUTH	0x20
#define CAP_DSN		0x40
#define CAP_REQUIRETLS	0x80

struct client_conn {
	struct client_opts	 opts;
	int			 fd;
	struct lineio		*io;
	gnutls_session_t	 tls;
	gnutls_certificate_credentials_t cred;
	int			 tls_inited;
	int			 literal;	/* host is an address */
	char			 host[CLIENT_HOST_MAX];	/* dialled */
	char			 addr[NET_ADDRSTR_MAX];
	/* "name [address]" */
	char			 peer[CLIENT_HOST_MAX];
	unsigned		 caps;
	unsigned long long	 size_max;
	struct clientext_limits	 limits;	/* RFC 9422 */
	char			 greeting[CLIENT_TEXT_MAX];
	char			 ehlo[CLIENT_EHLO_KEEP];	/* the last EHLO
							   reply's lines */
	char			 auth[CLIENT_AUTH_LIST_MAX];
	int			 ntrans;	/* transactions begun */
	int			 broken;	/* no more commands */
	int			 tls_failed;	/* the last try's STARTTLS
						   handshake failed */
	int			 cleartext;	/* this try skips STARTTLS */
	/* The first bytes the TLS layer read: a plain SMTP greeting there
	 * means the server does not speak TLS on connect. */
	char			 tls_first[4];
	size_t			 tls_seen;
	struct tlsplan		*plan;		/* TLS policy per host */
};

/* One connection attempt's verdict. */
enum try_result {
	TRY_OK,		/* ready for MAIL */
	TRY_NEXT,	/* failed here; another address may work */
	TRY_STOP,	/* failed in a way no other address changes */
};

static void	client_set(struct client_result *, int, int, const char *,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 6, 7)));
static void	client_set_reply(struct client_result *, const char *,
		    enum client_phase, const struct client_reply *,
		    const char *, ...)
		    __attribute__((format(printf, 5, 6)));
static void	client_debug(const struct client_conn *, const char *,
		    const char *, size_t);
static int	client_cmd(struct client_conn *, const char *, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
static int	client_reply(struct client_conn *, struct client_reply *,
		    struct str *, unsigned);
static void	client_parse_caps(struct client_conn *, const struct str *);
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
static enum try_result client_ehlo(struct client_conn *,
		    struct client_result *);
static enum try_result client_tls_start(struct client_conn *, int,
		    struct client_result *);
static enum try_result client_auth(struct client_conn *,
		    struct client_result *);
static int	client_route(struct client_conn *, const struct dial *,
		    struct client_result *, int *);
static int	client_host_eq(const char *, const char *);
static void	client_plan_debug(void *, const char *);
static int	client_b64(const void *, size_t, struct str *);
static int	client_send_data(struct client_conn *, struct client_msg *,
		    char *, size_t);
static int	client_lmtp_replies(struct client_conn *,
		    struct client_msg *, struct client_result *);
static void	client_merge(struct client_result *,
		    const struct client_result *);

/* ---------------------------------------------------------------- */
/* Reply classification */

int
client_severity(int exit_status)
{
	if (exit_status == EX_OK)
		return 0;
	if (exit_status == EX_TEMPFAIL)
		return 1;
	return 2;
}

int
client_classify(int code, const char *status, enum client_phase ph)
{
	int subject = -1, detail = -1;

	if (code >= 200 && code < 300)
		return EX_OK;
	/* 354 answers DATA; any other 3xx is out of turn (AUTH's 334 is
	 * read by the AUTH code itself). */
	if (code >= 300 && code < 400)
		return ph == CLIENT_PH_DATA ? EX_OK : EX_PROTOCOL;
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code > 599)
		return EX_PROTOCOL;
	/* RFC 4954's replies: authentication required (530), mechanism
	 * too weak (534), credentials refused (535), encryption needed
	 * (538). */
	if (ph == CLIENT_PH_AUTH || code == 530 || code == 534 ||
	    code == 535 || code == 538)
		return EX_NOPERM;
	if (status != NULL && status[0] == '5' &&
	    sscanf(status, "5.%d.%d", &subject, &detail) == 2) {
		/* The sender's address or mailbox refused: the message
		 * cannot go as it is, whoever it is for. */
		if (ph == CLIENT_PH_MAIL && (subject == 1 || subject == 2))
			return EX_DATAERR;
		switch (subject) {
		case 1:	/* addressing */
			if (detail == 1 || detail == 3 || detail == 6)
				return ph == CLIENT_PH_MAIL ? EX_DATAERR :
				    EX_NOUSER;
			if (detail == 2 || detail == 10)
				return EX_NOHOST;
			if (detail == 7 || detail == 8)
				return EX_DATAERR;
			break;
		case 2:	/* mailbox */
			if (detail == 1)
				return EX_NOUSER;
			if (detail == 3)
				return EX_DATAERR;
			break;
		case 3:	/* mail system */
			if (detail == 4)
				return EX_DATAERR;
			break;
		case 4:	/* network and routing */
			if (detail == 4)
				return EX_NOHOST;
			break;
		case 5:	/* protocol */
			return EX_PROTOCOL;
		case 6:	/* content */
			return EX_DATAERR;
		case 7:	/* security and policy */
			if (detail == 8)
				return EX_NOPERM;
			return EX_UNAVAILABLE;
		}
	}
	switch (ph) {
	case CLIENT_PH_RCPT:
		if (code == 550 || code == 551 || code == 553 || code == 501)
			return EX_NOUSER;
		break;
	case CLIENT_PH_MAIL:
		if (code == 552 || code == 553 || code == 501 || code == 555)
			return EX_DATAERR;
		break;
	case CLIENT_PH_DATA:
	case CLIENT_PH_DOT:
		if (code == 552 || code == 554 || code == 550)
			return EX_DATAERR;
		break;
	default:
		break;
	}
	if (code == 500 || code == 501 || code == 502 || code == 503 ||
	    code == 504)
		return EX_PROTOCOL;
	return EX_UNAVAILABLE;
}

/* ---------------------------------------------------------------- */
/* Results and the transcript */

static void
client_set(struct client_result *res, int ex, int code, const char *status,
    const char *host, const char *fmt, ...)
{
	va_list ap;

	res->exit_status = ex;
	res->code = code;
	res->permanent = ex != EX_OK && ex != EX_TEMPFAIL;
	res->hint = CLIENT_HINT_NONE;
	res->peer_pin[0] = '\0';
	str_lcpy(res->status, status != NULL ? status : "",
	    sizeof(res->status));
	if (host != NULL)
		str_lcpy(res->host, host, sizeof(res->host));
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/* "what: 550 5.1.1 text" from a reply. */
static void
client_set_reply(struct client_result *res, const char *host,
    enum client_phase ph, const struct client_reply *r, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	client_set(res, client_classify(r->code, r->status, ph), r->code,
	    r->status, host, "%s: %d %s", what, r->code, r->text);
}

/*
 * Keeps in *acc the result that should be reported after several
 * attempts: any temporary failure makes the whole temporary (another try
 * later may reach that host); otherwise the latest.
 */
static void
client_merge(struct client_result *acc, const struct client_result *r)
{
	if (acc->exit_status == EX_TEMPFAIL && r->exit_status != EX_TEMPFAIL)
		return;
	*acc = *r;
}

static void
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
static int
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
static int
client_reply(struct client_conn *c, struct client_reply *r, struct str *lines,
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

/* The EHLO reply's extensions (RFC 5321 4.1.1.1). */
static void
client_parse_caps(struct client_conn *c, const struct str *lines)
{
	const char *p = str_cstr(lines), *nl, *kw;
	char word[32];
	size_t n, wl;
	int first = 1;

	c->caps = 0;
	c->size_max = 0;
	memset(&c->limits, 0, sizeof(c->limits));
	c->auth[0] = '\0';
	for (; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		n = (size_t)(nl - p);
		if (first) {
			first = 0;	/* the greeting line */
			continue;
		}
		for (wl = 0; wl < n && p[wl] != ' ' && p[wl] != '=' &&
		    wl + 1 < sizeof(word); wl++)
			word[wl] = (char)toupper((unsigned char)p[wl]);
		word[wl] = '\0';
		kw = p + wl;
		if (strcmp(word, "PIPELINING") == 0)
			c->caps |= CAP_PIPELINING;
		else if (strcmp(word, "8BITMIME") == 0)
			c->caps |= CAP_8BITMIME;
		else if (strcmp(word, "SMTPUTF8") == 0)
			c->caps |= CAP_SMTPUTF8;
		else if (strcmp(word, "STARTTLS") == 0)
			c->caps |= CAP_STARTTLS;
		else if (strcmp(word, "DSN") == 0)
			c->caps |= CAP_DSN;
		else if (strcmp(word, "REQUIRETLS") == 0)
			c->caps |= CAP_REQUIRETLS;
		else if (strcmp(word, "LIMITS") == 0 && kw < nl)
			clientext_limits_parse(kw + 1, (size_t)(nl - kw - 1),
			    &c->limits);
		else if (strcmp(word, "SIZE") == 0) {
			c->caps |= CAP_SIZE;
			if (kw < nl && *kw == ' ')
				c->size_max = strtoull(kw + 1, NULL, 10);
		} else if (strcmp(word, "AUTH") == 0 && kw < nl) {
			/* Also the old "AUTH=LOGIN PLAIN" form. */
			size_t have = strlen(c->auth);
			size_t add = (size_t)(nl - kw - 1);

			c->caps |= CAP_AUTH;
			if (have + add + 2 < sizeof(c->auth)) {
				if (have > 0)
					c->auth[have++] = ' ';
				memcpy(c->auth + have, kw + 1, add);
				c->auth[have + add] = '\0';
			}
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
	struct client_reply r;

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

static enum try_result
client_ehlo(struct client_conn *c, struct client_result *res)
{
	struct client_reply r;
	struct str lines;
	int rc;

	const char *verb = c->opts.lmtp ? "LHLO" : "EHLO";

	str_init(&lines, 65536);
	if (client_cmd(c, NULL, "%s %s", verb, c->opts.helo) == -1 ||
	    (rc = client_reply(c, &r, &lines, c->opts.command_timeout)) == -1) {
		str_free(&lines);
		client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
		    "%s: connection lost: %s", verb, strerror(errno));
		return TRY_NEXT;
	}
	if (rc == -2) {
		str_free(&lines);
		client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
		    "%s: the reply is not SMTP", verb);
		return TRY_NEXT;
	}
	if (r.code / 100 == 2) {
		client_parse_caps(c, &lines);
		str_lcpy(c->ehlo, str_cstr(&lines), sizeof(c->ehlo));
		str_free(&lines);
		return TRY_OK;
	}
	str_free(&lines);
	/* RFC 2033 4.1: LMTP has no HELO to fall back to. */
	if (r.code / 100 == 5 && !c->broken && !c->opts.lmtp) {
		/* An old server: RFC 5321 3.2. */
		c->caps = 0;
		c->ehlo[0] = '\0';
		if (client_cmd(c, NULL, "HELO %s", c->opts.helo) == -1 ||
		    (rc = client_reply(c, &r, NULL,
		    c->opts.command_timeout)) == -1) {
			client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
			    "HELO: connection lost: %s", strerror(errno));
			return TRY_NEXT;
		}
		if (rc == 0 && r.code / 100 == 2)
			return TRY_OK;
		if (rc == -2) {
			client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
			    "HELO: the reply is not SMTP");
			return TRY_NEXT;
		}
		client_set_reply(res, c->peer, CLIENT_PH_EHLO, &r, "HELO %s",
		    c->opts.helo);
		return TRY_NEXT;
	}
	client_set_reply(res, c->peer, CLIENT_PH_EHLO, &r, "%s %s", verb,
	    c->opts.helo);
	return TRY_NEXT;
}

/*
 * The TLS layer's reads, noting the first bytes (see tls_first); writes
 * stay GnuTLS's own on the descriptor.
 */
static ssize_t
client_tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct client_conn *c = p;
	ssize_t n;
	size_t k;

	n = recv(c->fd, buf, len, 0);
	if (n > 0 && c->tls_seen < sizeof(c->tls_first)) {
		k = sizeof(c->tls_first) - c->tls_seen;
		if ((size_t)n < k)
			k = (size_t)n;
		memcpy(c->tls_first + c->tls_seen, buf, k);
		c->tls_seen += k;
	}
	return n;
}

static int
client_tls_wait(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct client_conn *c = p;
	struct pollfd pfd;
	int r;

	pfd.fd = c->fd;
	pfd.events = POLLIN;
	do {
		r = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 :
		    ms > INT_MAX ? INT_MAX : (int)ms);
	} while (r == -1 && errno == EINTR);
	return r;
}

/* 1 if what the TLS layer read first looks like an SMTP reply. */
static int
client_tls_got_smtp(const struct client_conn *c)
{
	const char *b = c->tls_first;

	return c->tls_seen == sizeof(c->tls_first) && b[0] >= '2' &&
	    b[0] <= '5' && isdigit((unsigned char)b[1]) &&
	    isdigit((unsigned char)b[2]) && (b[3] == ' ' || b[3] == '-');
}

static enum try_result
client_tls_start(struct client_conn *c, int implicit,
    struct client_result *res)
{
	const struct client_opts *o = &c->opts;
	const gnutls_datum_t *certs;
	gnutls_datum_t out;
	unsigned int ncerts, status;
	char have[PIN_HAVE_MAX], *desc;
	int r, verify = o->tls_verify && o->tls_pin == NULL, tries;

	if (!c->tls_inited) {
		if ((r = gnutls_global_init()) < 0) {
			client_set(res, EX_SOFTWARE, 0, NULL, c->peer,
			    "TLS: %s", gnutls_strerror(r));
			return TRY_STOP;
		}
		c->tls_inited = 1;
	}
	if (c->cred == NULL) {
		r = gnutls_certificate_allocate_credentials(&c->cred);
		if (r < 0) {
			client_set(res, EX_SOFTWARE, 0, NULL, c->peer,
			    "TLS: %s", gnutls_strerror(r));
			return TRY_STOP;
		}
		if ((verify || tlsplan_wants_trust(c->plan)) && (r =
		    gnutls_certificate_set_x509_system_trust(c->cred)) < 0) {
			client_set(res, EX_CONFIG, 0, NULL, c->peer,
			    "TLS: cannot load the system trust store: %s",
			    gnutls_strerror(r));
			return TRY_STOP;
		}
		if (o->tls_cafile != NULL && (r =
		    gnutls_certificate_set_x509_trust_file(c->cred,
		    o->tls_cafile, GNUTLS_X509_FMT_PEM)) <= 0) {
			client_set(res, EX_CONFIG, 0, NULL, c->peer,
			    "TLS: cannot load CA file %s: %s", o->tls_cafile,
			    r == 0 ? "no certificates in it" :
			    gnutls_strerror(r));
			return TRY_STOP;
		}
	}
	if ((r = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)) < 0 ||
	    (r = gnutls_set_default_priority(c->tls)) < 0 ||
	    (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
	    c->cred)) < 0 ||
	    (!c->literal && (r = gnutls_server_name_set(c->tls,
	    GNUTLS_NAME_DNS, c->host, strlen(c->host))) < 0)) {
		client_set(res, EX_SOFTWARE, 0, NULL, c->peer, "TLS: %s",
		    gnutls_strerror(r));
		return TRY_STOP;
	}
	if (verify)
		gnutls_session_set_verify_cert(c->tls, c->host, 0);
	gnutls_transport_set_ptr2(c->tls, c, (gnutls_transport_ptr_t)
	    (intptr_t)c->fd);
	gnutls_transport_set_pull_function(c->tls, client_tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, client_tls_wait);
	c->tls_seen = 0;
	gnutls_handshake_set_timeout(c->tls, o->command_timeout * 1000);
	lineio_set_timeout(c->io, (int)o->command_timeout * 1000);
	tries = 0;
	do {
		r = gnutls_handshake(c->tls);
	} while (r < 0 && !gnutls_error_is_fatal(r) && ++tries < 1000);
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		status = gnutls_session_get_verify_cert_status(c->tls);
		desc = NULL;
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &out, 0) == 0)
			desc = (char *)out.data;
		client_set(res, EX_UNAVAILABLE, 0, "5.7.0", c->peer,
		    "TLS: certificate of %s not accepted: %s", c->host,
		    desc != NULL ? desc : "verification failed");
		gnutls_free(desc);
		tlsplan_fail(c->plan, c->host, c->addr, "validation-failure",
		    res->text);
		certs = gnutls_certificate_get_peers(c->tls, &ncerts);
		if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
			res->hint = CLIENT_HINT_UNKNOWN_CA;
			if (certs != NULL && ncerts > 0 &&
			    pin_spki(certs[0].data, certs[0].size,
			    res->peer_pin, sizeof(res->peer_pin)) == -1)
				res->peer_pin[0] = '\0';
		}
		c->broken = 1;
		return TRY_NEXT;
	}
	if (r < 0) {
		int temp = r == GNUTLS_E_PULL_ERROR ||
		    r == GNUTLS_E_PUSH_ERROR ||
		    r == GNUTLS_E_PREMATURE_TERMINATION ||
		    r == GNUTLS_E_TIMEDOUT || r == GNUTLS_E_AGAIN;

		client_set(res, temp ? EX_TEMPFAIL : EX_PROTOCOL, 0, NULL,
		    c->peer, "TLS handshake failed: %s", gnutls_strerror(r));
		tlsplan_fail(c->plan, c->host, c->addr, "validation-failure",
		    res->text);
		if (implicit && client_tls_got_smtp(c)) {
			snprintf(res->text, sizeof(res->text), "TLS handshake "
			    "failed: the server greeted in plain text "
			    "(\"%.3s\")", c->tls_first);
			res->hint = CLIENT_HINT_PLAIN_SMTP;
		}
		c->broken = 1;
		return TRY_NEXT;
	}
	if (o->tls_pin != NULL) {
		certs = gnutls_certificate_get_peers(c->tls, &ncerts);
		r = certs == NULL || ncerts == 0 ? -1 :
		    pin_check(o->tls_pin, certs[0].data, certs[0].size, have,
		    sizeof(have));
		if (r == -1) {
			client_set(res, EX_UNAVAILABLE, 0, "5.7.0", c->peer,
			    "TLS: no certificate to check against the pin");
			c->broken = 1;
			return TRY_NEXT;
		}
		if (r == 0) {
			client_set(res, EX_UNAVAILABLE, 0, "5.7.0", c->peer,
			    "TLS: certificate of %s has %s, not the pinned one",
			    c->host, have);
			c->broken = 1;
			return TRY_NEXT;
		}
	}
	if (tlsplan_check(c->plan, c->tls, c->host, c->addr, c->peer,
	    res) == -1) {
		c->broken = 1;
		return TRY_NEXT;
	}
	lineio_set_tls(c->io, c->tls);
	if (c->opts.debug && (desc = gnutls_session_get_desc(c->tls)) != NULL) {
		char note[256];
		const char *how = tlsplan_auth(c->plan, 1);
		int n = snprintf(note, sizeof(note), "TLS %s%s%s", desc,
		    verify ? ", certificate verified" :
		    o->tls_pin != NULL ? ", certificate matches the pin" :
		    how[0] == 'u' ? ", certificate not checked" :
		    ", certificate authenticated by ", verify ||
		    o->tls_pin != NULL || how[0] == 'u' ? "" : how);

		client_debug(c, "*", note, n > 0 ? (size_t)n : 0);
		gnutls_free(desc);
	}
	return TRY_OK;
}

/* ---------------------------------------------------------------- */
/* AUTH (RFC 4954) */

int
client_pick_mech(const char *offered, int tls, int cleartext_ok, int xoauth2,
    enum client_auth_mech forced)
{
	static const struct {
		const char		*name;
		enum client_auth_mech	 mech;
	} mechs[] = {
		{ "PLAIN", CLIENT_AUTH_PLAIN },
		{ "LOGIN", CLIENT_AUTH_LOGIN },
		{ "CRAM-MD5", CLIENT_AUTH_CRAM_MD5 },
		{ "XOAUTH2", CLIENT_AUTH_XOAUTH2 },
	};
	/* Best first: under TLS the one-round-trip PLAIN; in the clear
	 * only CRAM-MD5, which does not reveal the password. */
	static const enum client_auth_mech tls_order[] = { CLIENT_AUTH_PLAIN,
	    CLIENT_AUTH_CRAM_MD5, CLIENT_AUTH_LOGIN };
	static const enum client_auth_mech clear_order[] = {
	    CLIENT_AUTH_CRAM_MD5, CLIENT_AUTH_PLAIN, CLIENT_AUTH_LOGIN };
	int have[5] = { 0 }, safe = tls || cleartext_ok;
	const char *p = offered;
	size_t i, n;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
			if (strlen(mechs[i].name) == n &&
			    strncasecmp(p, mechs[i].name, n) == 0)
				have[mechs[i].mech] = 1;
		p += n;
	}
	if (xoauth2)
		return have[CLIENT_AUTH_XOAUTH2] && safe ? CLIENT_AUTH_XOAUTH2 :
		    -1;
	if (forced != CLIENT_AUTH_AUTO) {
		if (forced == CLIENT_AUTH_XOAUTH2 || !have[forced])
			return -1;
		return forced == CLIENT_AUTH_CRAM_MD5 || safe ? (int)forced :
		    -1;
	}
	for (i = 0; i < 3; i++) {
		enum client_auth_mech m = tls ? tls_order[i] : clear_order[i];

		if (have[m] && (m == CLIENT_AUTH_CRAM_MD5 || safe))
			return (int)m;
	}
	return -1;
}

/* Appends base64 of p to out.  0 or -1. */
static int
client_b64(const void *p, size_t n, struct str *out)
{
	gnutls_datum_t in, enc;
	int r;

	in.data = (unsigned char *)(uintptr_t)p;
	in.size = (unsigned int)n;
	if (gnutls_base64_encode2(&in, &enc) < 0)
		return -1;
	r = str_append(out, enc.data, enc.size);
	str_wipe(enc.data, enc.size);
	gnutls_free(enc.data);
	return r;
}

/* Sends one AUTH step (a base64 line or a command) and reads the reply. */
static int
client_auth_step(struct client_conn *c, const char *shown, const char *line,
    struct client_reply *r)
{
	if (client_cmd(c, shown, "%s", line) == -1)
		return -1;
	return client_reply(c, r, NULL, c->opts.command_timeout);
}

static enum try_result
client_auth(struct client_conn *c, struct client_result *res)
{
	static const char *names[] = { "", "PLAIN", "LOGIN", "CRAM-MD5",
	    "XOAUTH2" };
	const struct client_opts *o = &c->opts;
	struct client_reply r;
	struct str buf, line;
	gnutls_datum_t chal_in, chal;
	unsigned char digest[16];
	char hex[33];
	int mech, rc = -1, tls = c->tls != NULL;
	size_t i;

	if (!(c->caps & CAP_AUTH) || c->auth[0] == '\0') {
		client_set(res, EX_NOPERM, 0, "5.7.0", c->peer,
		    "AUTH: the server does not offer authentication%s",
		    tls || o->tls == CLIENT_TLS_NONE ? "" :
		    " (before TLS)");
		return TRY_STOP;
	}
	mech = client_pick_mech(c->auth, tls, o->auth_cleartext_ok,
	    o->auth_xoauth2, o->auth_mech);
	if (mech < 0) {
		client_set(res, EX_NOPERM, 0, "5.7.0", c->peer,
		    "AUTH: no usable mechanism; the server offers \"%s\"%s",
		    c->auth, !tls && !o->auth_cleartext_ok ?
		    " (PLAIN, LOGIN and XOAUTH2 need TLS unless cleartext "
		    "authentication is allowed)" : "");
		return TRY_STOP;
	}
	str_init(&buf, CLIENT_CMD_MAX);
	str_init(&line, CLIENT_CMD_MAX);
	switch (mech) {
	case CLIENT_AUTH_PLAIN:
		/* RFC 4616: authzid NUL authcid NUL passwd */
		if (str_appendc(&buf, '\0') == 0 &&
		    str_appends(&buf, o->auth_user) == 0 &&
		    str_appendc(&buf, '\0') == 0 &&
		    str_appends(&buf, o->auth_secret) == 0 &&
		    str_appends(&line, "AUTH PLAIN ") == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "AUTH PLAIN ********", line.s,
			    &r);
		break;
	case CLIENT_AUTH_LOGIN:
		rc = client_auth_step(c, NULL, "AUTH LOGIN", &r);
		if (rc == 0 && r.code == 334 &&
		    client_b64(o->auth_user, strlen(o->auth_user), &line) == 0)
			rc = client_auth_step(c, NULL, line.s, &r);
		str_clear(&line);
		if (rc == 0 && r.code == 334 &&
		    client_b64(o->auth_secret, strlen(o->auth_secret),
		    &line) == 0)
			rc = client_auth_step(c, "********", line.s, &r);
		break;
	case CLIENT_AUTH_CRAM_MD5:
		rc = client_auth_step(c, NULL, "AUTH CRAM-MD5", &r);
		if (rc != 0 || r.code != 334)
			break;
		chal_in.data = (unsigned char *)r.text;
		chal_in.size = (unsigned int)strlen(r.text);
		if (gnutls_base64_decode2(&chal_in, &chal) < 0) {
			(void)client_auth_step(c, NULL, "*", &r);
			client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
			    "AUTH CRAM-MD5: the challenge is not base64");
			str_free(&buf);
			str_free(&line);
			return TRY_STOP;
		}
		/* RFC 2195: user SP hex(HMAC-MD5(secret, challenge)) */
		rc = gnutls_hmac_fast(GNUTLS_MAC_MD5, o->auth_secret,
		    strlen(o->auth_secret), chal.data, chal.size, digest);
		gnutls_free(chal.data);
		if (rc < 0) {
			(void)client_auth_step(c, NULL, "*", &r);
			client_set(res, EX_SOFTWARE, 0, NULL, c->peer,
			    "AUTH CRAM-MD5: %s", gnutls_strerror(rc));
			str_free(&buf);
			str_free(&line);
			return TRY_STOP;
		}
		for (i = 0; i < sizeof(digest); i++)
			snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x",
			    digest[i]);
		rc = -1;
		if (str_appendf(&buf, "%s %s", o->auth_user, hex) == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "********", line.s, &r);
		str_wipe(digest, sizeof(digest));
		break;
	case CLIENT_AUTH_XOAUTH2:
		if (str_appendf(&buf, "user=%s\001auth=Bearer %s\001\001",
		    o->auth_user, o->auth_secret) == 0 &&
		    str_appends(&line, "AUTH XOAUTH2 ") == 0 &&
		    client_b64(buf.s, buf.len, &line) == 0)
			rc = client_auth_step(c, "AUTH XOAUTH2 ********",
			    line.s, &r);
		/* A 334 carries the error details; answer with an empty
		 * line to get the final reply. */
		if (rc == 0 && r.code == 334)
			rc = client_auth_step(c, NULL, "", &r);
		break;
	}
	if (buf.s != NULL)
		str_wipe(buf.s, buf.len);
	if (line.s != NULL)
		str_wipe(line.s, line.len);
	str_free(&buf);
	str_free(&line);
	if (rc == -1) {
		client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
		    "AUTH %s: connection lost: %s", names[mech],
		    strerror(errno));
		return TRY_STOP;
	}
	if (rc == -2) {
		client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
		    "AUTH %s: the reply is not SMTP", names[mech]);
		return TRY_STOP;
	}
	if (r.code == 235)
		return TRY_OK;
	if (r.code == 334) {
		/* The server wants more than the mechanism has: cancel. */
		(void)client_auth_step(c, NULL, "*", &r);
		client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
		    "AUTH %s: unexpected challenge", names[mech]);
		return TRY_STOP;
	}
	client_set_reply(res, c->peer, CLIENT_PH_AUTH, &r,
	    "AUTH %s as %s refused", names[mech], o->auth_user);
	return TRY_STOP;
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
	struct client_reply r;
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
		client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
		    "connect to %s port %d: %s", c->peer, port, err);
		return TRY_NEXT;
	}
	if ((c->io = lineio_new(c->fd, c->fd, CLIENT_LINE_MAX)) == NULL) {
		client_set(res, EX_OSERR, 0, NULL, c->peer, "out of memory");
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

			client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
			    "no greeting: %s", strerror(e));
			/* Silence, or a hang-up: the server may be
			 * waiting for a TLS handshake. */
			if (!implicit_tls && (e == ETIMEDOUT ||
			    e == ECONNRESET))
				res->hint = CLIENT_HINT_IMPLICIT_TLS;
		}
		else if (rc == -2 || r.code / 100 == 2)
			client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
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
				client_set(res, EX_UNAVAILABLE, 0, "5.7.10",
				    c->peer, "the server does not offer "
				    "STARTTLS, and TLS is required");
				client_close(c, 1);
				return TRY_NEXT;
			}
		} else {
			if (client_cmd(c, NULL, "STARTTLS") == -1 ||
			    (rc = client_reply(c, &r, NULL,
			    o->command_timeout)) == -1) {
				client_set(res, EX_TEMPFAIL, 0, NULL, c->peer,
				    "STARTTLS: connection lost: %s",
				    strerror(errno));
				client_close(c, 0);
				return TRY_NEXT;
			}
			if (rc == -2) {
				client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
				    "STARTTLS: the reply is not SMTP");
				client_close(c, 0);
				return TRY_NEXT;
			}
			if (r.code != 220) {
				client_set_reply(res, c->peer,
				    CLIENT_PH_STARTTLS, &r, "STARTTLS");
				if (o->tls == CLIENT_TLS_REQUIRE ||
				    r.code == 421) {
					if (res->exit_status != EX_TEMPFAIL)
						res->exit_status =
						    EX_UNAVAILABLE;
					client_close(c, 1);
					return TRY_NEXT;
				}
				/* Opportunistic: carry on in the clear. */
				goto tls_done;
			}
			/* RFC 3207 5: nothing may come before the handshake. */
			if (lineio_pending(c->io) > 0) {
				client_set(res, EX_PROTOCOL, 0, NULL, c->peer,
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
		if (client_host_eq(mx[i].host, c->opts.self))
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

static int
client_host_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
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
	res->exit_status = -1;
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
				client_set(res, EX_NOHOST, 0, "5.1.2", d->host,
				    "host %s not found", d->host);
			} else
				client_set(res, EX_TEMPFAIL, 0, "4.4.3",
				    d->host, "cannot look up %s: %s", d->host,
				    r == EAI_SYSTEM ? strerror(errno) :
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
		client_set(res, EX_NOHOST, 556, "5.1.10", d->host,
		    "%s accepts no mail (null MX, RFC 7505)", d->host);
		return -1;
	case DNS_NXDOMAIN:
		*unresolved = 1;
		client_set(res, EX_NOHOST, 0, "5.1.2", d->host,
		    "no such domain: %s", d->host);
		return -1;
	case DNS_TEMPFAIL:
		client_set(res, EX_TEMPFAIL, 0, "4.4.3", d->host,
		    "DNS lookup of the MX of %s failed; will retry", d->host);
		return -1;
	}
	if ((nmx = client_mx_self(c, mx, nmx)) == 0) {
		client_set(res, EX_UNAVAILABLE, 0, "5.4.6", d->host,
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
			if (client_host_eq(c->opts.busted_mx[j], mx[i].host))
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
		if (any_temp_dns && res->exit_status != EX_TEMPFAIL)
			client_set(res, EX_TEMPFAIL, 0, "4.4.3", NULL,
			    "%s (and the DNS lookup of another MX host failed)",
			    res->text);
		return -1;
	}
	if (nrefused > 0)
		return -1;	/* res says why the policy refused them */
	if (any_temp_dns)
		client_set(res, EX_TEMPFAIL, 0, "4.4.3", d->host,
		    "DNS lookup of the mail hosts of %s failed; will retry",
		    d->host);
	else if (nbusted > 0)
		client_set(res, EX_TEMPFAIL, 0, "4.4.1", d->host,
		    "every usable MX host of %s is marked busted", d->host);
	else {
		*unresolved = 1;
		client_set(res, EX_NOHOST, 0, "5.1.2", d->host,
		    "no address for the mail hosts of %s", d->host);
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
		client_set(res, EX_OSERR, 0, NULL, dest, "out of memory");
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
		client_set(res, EX_CONFIG, 0, NULL, dest,
		    "AUTH as %s wanted, but no secret given",
		    c->opts.auth_user);
		free(c);
		return NULL;
	}
	if ((c->plan = tlsplan_new(&c->opts)) == NULL) {
		client_set(res, EX_OSERR, 0, NULL, dest, "out of memory");
		free(c);
		return NULL;
	}
	if (dial_parse(dest, &d, err, sizeof(err)) == -1) {
		tlsplan_free(c->plan);
		client_set(res, EX_USAGE, 0, NULL, dest,
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
			client_set(res, EX_USAGE, 0, NULL, c->opts.gateway,
			    "bad gateway \"%.100s\": %s", c->opts.gateway, err);
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
/* Sending */

void
client_stuff_init(struct client_stuffer *st)
{
	st->bol = 1;
	st->cr = 0;
}

int
client_stuff(struct client_stuffer *st, const char *in, size_t len,
    struct str *out)
{
	size_t i = 0, run;

	while (i < len) {
		if (st->cr) {
			/* The CR before was a line end; LF completes it. */
			st->cr = 0;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		if (st->bol && in[i] == '.' && str_appendc(out, '.') == -1)
			return -1;
		st->bol = 0;
		for (run = i; run < len && in[run] != '\r' && in[run] != '\n';
		    run++)
			;
		if (str_append(out, in + i, run - i) == -1)
			return -1;
		i = run;
		if (i < len) {
			if (str_append(out, "\r\n", 2) == -1)
				return -1;
			st->cr = in[i] == '\r';
			st->bol = 1;
			i++;
		}
	}
	return 0;
}

int
client_stuff_end(struct client_stuffer *st, struct str *out)
{
	if (!st->bol && str_append(out, "\r\n", 2) == -1)
		return -1;
	st->bol = 1;
	return str_append(out, ".\r\n", 3);
}

/* Sends the message and the final dot.  0, -1 I/O error, -2 local read
 * error (err says which). */
static int
client_send_data(struct client_conn *c, struct client_msg *m, char *err,
    size_t errlen)
{
	struct client_stuffer st;
	struct str out;
	char *buf = NULL, note[64];
	unsigned long long total = 0;
	size_t off = 0, n;
	ssize_t rd;
	int r = 0, k;

	str_init(&out, 2 * CLIENT_CHUNK + 8);
	client_stuff_init(&st);
	lineio_set_timeout(c->io, (int)c->opts.command_timeout * 1000);
	if (m->fd != -1 && (buf = malloc(CLIENT_CHUNK)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -2;
	}
	for (;;) {
		if (m->fd != -1) {
			if (m->data_pread) {
				rd = pread(m->fd, buf, CLIENT_CHUNK,
				    m->data_off + (off_t)total);
			} else
				rd = read(m->fd, buf, CLIENT_CHUNK);
			if (rd == -1 && errno == EINTR)
				continue;
			if (rd == -1) {
				snprintf(err, errlen, "reading the message: %s",
				    strerror(errno));
				r = -2;
				break;
			}
			if (rd == 0)
				break;
			r = client_stuff(&st, buf, (size_t)rd, &out);
			total += (unsigned long long)rd;
		} else {
			if (off == m->datalen)
				break;
			n = m->datalen - off < CLIENT_CHUNK ?
			    m->datalen - off : CLIENT_CHUNK;
			r = client_stuff(&st, m->data + off, n, &out);
			off += n;
			total += n;
		}
		if (r == -1 || (out.len >= CLIENT_CHUNK &&
		    (r = lineio_write(c->io, out.s, out.len)) == -1))
			break;
		if (out.len >= CLIENT_CHUNK)
			str_clear(&out);
	}
	/* The last block carries the final dot: one write, no stall. */
	if (r == 0 && (client_stuff_end(&st, &out) == -1 ||
	    lineio_write(c->io, out.s, out.len) == -1 ||
	    lineio_flush(c->io) == -1))
		r = -1;
	free(buf);
	str_free(&out);
	if (r == 0) {
		k = snprintf(note, sizeof(note), "(%llu bytes of message)",
		    total);
		client_debug(c, "->", note, k > 0 ? (size_t)k : 0);
		client_debug(c, "->", ".", 1);
	}
	if (r == -1)
		c->broken = 1;
	return r;
}

/* Gives a recipient the outcome of a reply. */
static void
client_rcpt_set(struct client_rcpt *rc, const struct client_reply *r,
    enum client_phase ph)
{
	rc->code = r->code;
	str_lcpy(rc->status, r->status, sizeof(rc->status));
	str_lcpy(rc->text, r->text, sizeof(rc->text));
	rc->exit_status = client_classify(r->code, r->status, ph);
}

static void
client_rcpt_fail(struct client_rcpt *rc, int ex, const char *text)
{
	rc->code = 0;
	rc->status[0] = '\0';
	str_lcpy(rc->text, text, sizeof(rc->text));
	rc->exit_status = ex;
}

static int
client_transaction(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	enum { CMD_RSET, CMD_MAIL, CMD_RCPT, CMD_DATA };
	struct client_reply r, mail_r;
	struct str params;
	struct stat sb;
	char err[256];
	long long size = -1;
	off_t pos;
	size_t i, ncmd, sent, done, group, accepted = 0, worst_i = 0;
	int rset, mail_ok = 0, rc, worst = -1, lost = 0;
	int data_code = 0;
	struct client_reply data_r;

	memset(res, 0, sizeof(*res));
	str_lcpy(res->host, c->peer, sizeof(res->host));
	for (i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].code = 0;
		m->rcpts[i].status[0] = '\0';
		m->rcpts[i].text[0] = '\0';
		m->rcpts[i].exit_status = EX_TEMPFAIL;
	}
	if (m->nrcpts == 0) {
		client_set(res, EX_USAGE, 0, NULL, NULL, "no recipients");
		return res->exit_status;
	}
	if (c->io == NULL || c->broken) {
		client_set(res, EX_TEMPFAIL, 0, "4.4.2", NULL,
		    "the connection to %s is lost", c->peer);
		goto allfail;
	}
	if (m->smtputf8 && !(c->caps & CAP_SMTPUTF8)) {
		/* RFC 6531 3.4: no downgrade; say so. */
		client_set(res, EX_DATAERR, 0, "5.6.7", NULL,
		    "the message needs SMTPUTF8 (RFC 6531), which %s does "
		    "not offer",
		    c->peer);
		goto allfail;
	}
	if (m->requiretls && !clientext_requiretls_ok(c->tls != NULL,
	    client_tls_auth(c), c->opts.tls_pin != NULL,
	    (c->caps & CAP_REQUIRETLS) != 0, err, sizeof(err))) {
		/* RFC 8689 4.2.1: no delivery on lesser terms. */
		client_set(res, EX_UNAVAILABLE, 0, "5.7.30", NULL,
		    "REQUIRETLS support required: %s: %s", c->peer, err);
		goto allfail;
	}
	if (m->fd != -1) {
		pos = m->data_pread ? m->data_off : lseek(m->fd, 0, SEEK_CUR);
		if (fstat(m->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    pos != (off_t)-1 && pos <= sb.st_size)
			size = (long long)(sb.st_size - pos);
	} else
		size = (long long)m->datalen;
	if ((c->caps & CAP_SIZE) && c->size_max > 0 && size >= 0 &&
	    (unsigned long long)size > c->size_max) {
		/* RFC 1870: no point sending what will be refused. */
		client_set(res, EX_DATAERR, 552, "5.3.4", NULL,
		    "the message (%lld bytes) is larger than %s accepts "
		    "(SIZE %llu)", size, c->peer, c->size_max);
		goto allfail;
	}

	str_init(&params, 1024);
	if ((c->caps & CAP_SIZE) && size >= 0)
		(void)str_appendf(&params, " SIZE=%lld", size);
	if (m->eightbit && (c->caps & CAP_8BITMIME))
		(void)str_appends(&params, " BODY=8BITMIME");
	if (m->smtputf8)
		(void)str_appends(&params, " SMTPUTF8");
	if (m->requiretls)
		(void)str_appends(&params, " REQUIRETLS");
	if ((c->caps & CAP_DSN) && m->ret != NULL)
		(void)str_appendf(&params, " RET=%s", m->ret);
	if ((c->caps & CAP_DSN) && m->envid != NULL)
		(void)str_appendf(&params, " ENVID=%s", m->envid);

	/* Commands in order: [RSET] MAIL RCPT... DATA. */
	rset = c->ntrans > 0;
	c->ntrans++;
	ncmd = (size_t)rset + 1 + m->nrcpts + 1;
	group = (c->caps & CAP_PIPELINING) ? CLIENT_PIPE_GROUP : 1;
	memset(&mail_r, 0, sizeof(mail_r));
	memset(&data_r, 0, sizeof(data_r));
	for (sent = done = 0; done < ncmd && !lost; ) {
		/* Queue a group (RFC 2920: DATA ends it). */
		while (sent < ncmd && sent - done < group) {
			size_t k = sent - (size_t)rset;

			if (rset && sent == 0)
				rc = client_cmd(c, NULL, "RSET");
			else if (k == 0)
				rc = client_cmd(c, NULL, "MAIL FROM:<%s>%s",
				    m->sender, str_cstr(&params));
			else if (k <= m->nrcpts) {
				const struct client_rcpt *rp = &m->rcpts[k - 1];

				if (!mail_ok && group == 1)
					break;	/* not worth asking */
				rc = client_cmd(c, NULL, "RCPT TO:<%s>%s%s%s%s",
				    rp->addr,
				    (c->caps & CAP_DSN) && rp->notify ?
				    " NOTIFY=" : "",
				    (c->caps & CAP_DSN) && rp->notify ?
				    rp->notify : "",
				    (c->caps & CAP_DSN) && rp->orcpt ?
				    " ORCPT=" : "",
				    (c->caps & CAP_DSN) && rp->orcpt ?
				    rp->orcpt : "");
			} else {
				if (group == 1 && (!mail_ok || accepted == 0))
					break;
				rc = client_cmd(c, NULL, "DATA");
			}
			if (rc == -1) {
				client_set(res, EX_TEMPFAIL, 0, NULL, NULL,
				    "connection lost: %s", strerror(errno));
				lost = 1;
				break;
			}
			sent++;
		}
		if (sent == done)
			break;	/* nothing more worth sending */
		/* Read the group's replies. */
		for (; done < sent && !lost; done++) {
			size_t k = done - (size_t)rset;

			rc = client_reply(c, &r, NULL,
			    c->opts.command_timeout);
			if (rc != 0) {
				lost = 1;
				client_set(res, rc == -2 ? EX_PROTOCOL :
				    EX_TEMPFAIL, 0, NULL, NULL, "%s",
				    rc == -2 ? "the reply is not SMTP" :
				    "connection lost");
				if (rc == -1)
					snprintf(res->text, sizeof(res->text),
					    "connection lost: %s",
					    strerror(errno));
				break;
			}
			if (rset && done == 0) {
				if (r.code / 100 != 2) {
					client_set_reply(res, NULL,
					    CLIENT_PH_MAIL, &r, "RSET");
					res->exit_status = EX_TEMPFAIL;
					c->broken = 1;
					lost = 1;
				}
			} else if (k == 0) {
				mail_r = r;
				mail_ok = r.code / 100 == 2;
			} else if (k <= m->nrcpts) {
				struct client_rcpt *rp = &m->rcpts[k - 1];

				if (!mail_ok)
					client_rcpt_set(rp, &mail_r,
					    CLIENT_PH_MAIL);
				else {
					client_rcpt_set(rp, &r, CLIENT_PH_RCPT);
					if (r.code / 100 == 2)
						accepted++;
				}
			} else {
				data_r = r;
				data_code = r.code;
			}
		}
	}
	str_free(&params);

	if (lost) {
		if (res->exit_status == EX_OK && res->text[0] == '\0')
			client_set(res, EX_TEMPFAIL, 0, NULL, NULL,
			    "connection lost while sending commands");
		/* Whatever was not settled is lost with the connection. */
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].code == 0 ||
			    m->rcpts[i].code / 100 == 2)
				client_rcpt_fail(&m->rcpts[i],
				    res->exit_status, res->text);
		goto summary;
	}
	if (data_code == 354 && (!mail_ok || accepted == 0)) {
		/* RFC 2920 3.1: a 354 must be answered; send nothing. */
		if (lineio_write(c->io, ".\r\n", 3) == -1 ||
		    client_reply(c, &r, NULL, c->opts.data_timeout) != 0)
			c->broken = 1;
	}
	if (!mail_ok) {
		/* Without pipelining the RCPTs were never sent. */
		for (i = 0; i < m->nrcpts; i++)
			client_rcpt_set(&m->rcpts[i], &mail_r, CLIENT_PH_MAIL);
		client_set_reply(res, c->peer, CLIENT_PH_MAIL, &mail_r,
		    "MAIL FROM:<%s> refused", m->sender);
		return res->exit_status;
	}
	if (accepted == 0)
		goto summary;
	if (data_code != 354) {
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].code / 100 == 2) {
				client_rcpt_set(&m->rcpts[i], &data_r,
				    CLIENT_PH_DATA);
				/* 2xx to DATA is no invitation to send. */
				if (m->rcpts[i].exit_status == EX_OK)
					m->rcpts[i].exit_status = EX_PROTOCOL;
			}
		goto summary;
	}
	rc = client_send_data(c, m, err, sizeof(err));
	if (rc == -2) {
		/* We cannot end the data cleanly: drop the connection so
		 * the server discards what it got. */
		c->broken = 1;
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].code / 100 == 2)
				client_rcpt_fail(&m->rcpts[i], EX_IOERR, err);
		client_set(res, EX_IOERR, 0, NULL, NULL, "%s", err);
		return EX_IOERR;
	}
	if (rc == 0 && c->opts.lmtp) {
		/* Who got the message is settled per recipient. */
		(void)client_lmtp_replies(c, m, res);
		goto summary;
	}
	if (rc == 0)
		rc = client_reply(c, &r, NULL, c->opts.data_timeout);
	if (rc != 0) {
		snprintf(err, sizeof(err), "%s after the message data%s%s",
		    rc == -2 ? "garbled reply" : "connection lost",
		    rc == -1 ? ": " : "", rc == -1 ? strerror(errno) : "");
		for (i = 0; i < m->nrcpts; i++)
			if (m->rcpts[i].code / 100 == 2)
				client_rcpt_fail(&m->rcpts[i],
				    rc == -2 ? EX_PROTOCOL : EX_TEMPFAIL, err);
		goto summary;
	}
	for (i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].code / 100 == 2)
			client_rcpt_set(&m->rcpts[i], &r, CLIENT_PH_DOT);
	if (r.code / 100 == 2)
		client_set(res, EX_OK, r.code, r.status, c->peer,
		    "sent: %d %s", r.code, r.text);

summary:
	/* The worst recipient decides (permanent over temporary). */
	for (i = 0; i < m->nrcpts; i++) {
		int sev = client_severity(m->rcpts[i].exit_status);

		if (worst == -1 || sev > client_severity(worst)) {
			worst = m->rcpts[i].exit_status;
			worst_i = i;
		}
	}
	if (worst != EX_OK) {
		struct client_rcpt *rp = &m->rcpts[worst_i];

		if (rp->code != 0)
			client_set(res, worst, rp->code, rp->status, c->peer,
			    "<%s>: %d %s", rp->addr, rp->code, rp->text);
		else
			client_set(res, worst, 0, NULL, c->peer, "<%s>: %s",
			    rp->addr, rp->text);
	}
	return res->exit_status;

allfail:
	for (i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].code = res->code;
		str_lcpy(m->rcpts[i].status, res->status,
		    sizeof(m->rcpts[i].status));
		str_lcpy(m->rcpts[i].text, res->text,
		    sizeof(m->rcpts[i].text));
		m->rcpts[i].exit_status = res->exit_status;
	}
	return res->exit_status;
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
		client_set(res, EX_USAGE, 0, NULL, path, "bad socket path "
		    "\"%.100s\": not absolute, or too long", path);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		client_set(res, EX_OSERR, 0, NULL, path, "out of memory");
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

/*
 * RFC 2033 4.2: after the data, one reply for each recipient that RCPT
 * accepted, in RCPT order.  0 when all came; -1 when the connection
 * failed on the way (those left get that failure, res says it).
 */
static int
client_lmtp_replies(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	struct client_reply r;
	char err[256];
	size_t i, j;
	int rc;

	for (i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].code / 100 != 2)
			continue;
		rc = client_reply(c, &r, NULL, c->opts.data_timeout);
		if (rc != 0) {
			snprintf(err, sizeof(err), "%s after the message "
			    "data%s%s", rc == -2 ? "garbled reply" :
			    "connection lost", rc == -1 ? ": " : "",
			    rc == -1 ? strerror(errno) : "");
			c->broken = 1;
			for (j = i; j < m->nrcpts; j++)
				if (m->rcpts[j].code / 100 == 2)
					client_rcpt_fail(&m->rcpts[j],
					    rc == -2 ? EX_PROTOCOL :
					    EX_TEMPFAIL, err);
			client_set(res, rc == -2 ? EX_PROTOCOL : EX_TEMPFAIL,
			    0, NULL, c->peer, "%s", err);
			return -1;
		}
		client_rcpt_set(&m->rcpts[i], &r, CLIENT_PH_DOT);
		if (r.code / 100 == 2)
			client_set(res, EX_OK, r.code, r.status, c->peer,
			    "sent: %d %s", r.code, r.text);
	}
	return 0;
}

/* Gives recipients rcpts[from..to) the outcome r, never tried. */
static void
client_rcpts_fail(struct client_msg *m, size_t from,
    const struct client_result *r)
{
	size_t i;

	for (i = from; i < m->nrcpts; i++) {
		m->rcpts[i].code = 0;
		str_lcpy(m->rcpts[i].status, r->status,
		    sizeof(m->rcpts[i].status));
		str_lcpy(m->rcpts[i].text, r->text, sizeof(m->rcpts[i].text));
		m->rcpts[i].exit_status = r->exit_status;
	}
}

/*
 * RFC 9422: a server's RCPTMAX is met by splitting the recipients over
 * transactions, each with the whole message; the worst outcome decides.
 */
int
client_send(struct client_conn *c, struct client_msg *m,
    struct client_result *res)
{
	struct client_msg part;
	struct client_result r;
	size_t off, n, max = c->limits.rcptmax;
	off_t start = -1;
	int worst = -1, stop = 0;

	if (max == 0 || m->nrcpts <= max)
		return client_transaction(c, m, res);
	/* Data read from a descriptor must be read again from its start;
	 * one that cannot seek goes in one piece, as before LIMITS. */
	if (m->fd != -1 && !m->data_pread &&
	    (start = lseek(m->fd, 0, SEEK_CUR)) == -1)
		return client_transaction(c, m, res);
	memset(res, 0, sizeof(*res));
	for (off = 0; off < m->nrcpts && !stop; off += n) {
		n = m->nrcpts - off < max ? m->nrcpts - off : max;
		part = *m;
		part.rcpts = m->rcpts + off;
		part.nrcpts = n;
		if (off > 0 && !client_usable(c)) {
			/* MAILMAX reached, or the connection is gone: the
			 * rest wait for another connection. */
			client_set(&r, EX_TEMPFAIL, 0, "4.5.3", c->peer,
			    "%s takes no more transactions on this "
			    "connection (LIMITS)", c->peer);
			client_rcpts_fail(m, off, &r);
			stop = 1;
		} else if (start != -1 && lseek(m->fd, start, SEEK_SET) ==
		    -1) {
			client_set(&r, EX_IOERR, 0, NULL, NULL,
			    "rewinding the message: %s", strerror(errno));
			client_rcpts_fail(m, off, &r);
			stop = 1;
		} else
			(void)client_transaction(c, &part, &r);
		/* The worst decides; among successes, the last. */
		if (worst == -1 || client_severity(r.exit_status) >
		    client_severity(worst) || (r.exit_status == EX_OK &&
		    worst == EX_OK)) {
			worst = r.exit_status;
			*res = r;
		}
	}
	return res->exit_status;
}
