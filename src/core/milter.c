/*
 * The milter protocol client.  See milter.h.
 *
 * A packet is a 32-bit length in network order, a command byte and its
 * data; strings in the data end in NUL.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/str.h"
#include "policy/milterconf.h"
#include "milter.h"

/* Commands (MTA to milter). */
#define C_ABORT		'A'
#define C_BODY		'B'
#define C_CONNECT	'C'
#define C_MACRO		'D'
#define C_BODYEOB	'E'
#define C_HELO		'H'
#define C_HEADER	'L'
#define C_MAIL		'M'
#define C_EOH		'N'
#define C_OPTNEG	'O'
#define C_QUIT		'Q'
#define C_RCPT		'R'
#define C_DATA		'T'

/* Replies and changes (milter to MTA). */
#define R_ADDRCPT	'+'
#define R_DELRCPT	'-'
#define R_ADDRCPT_PAR	'2'
#define R_SHUTDOWN	'4'
#define R_ACCEPT	'a'
#define R_REPLBODY	'b'
#define R_CONTINUE	'c'
#define R_DISCARD	'd'
#define R_CHGFROM	'e'
#define R_CONN_FAIL	'f'
#define R_ADDHEADER	'h'
#define R_INSHEADER	'i'
#define R_SETSYMLIST	'l'
#define R_CHGHEADER	'm'
#define R_PROGRESS	'p'
#define R_QUARANTINE	'q'
#define R_REJECT	'r'
#define R_SKIP		's'
#define R_TEMPFAIL	't'
#define R_REPLYCODE	'y'

/* Actions a milter may take (all offered; milter.h says which are done). */
#define A_ALL		0x1ff

/* Protocol steps: stages the milter may leave out or not answer. */
#define P_NOCONNECT	0x000001
#define P_NOHELO	0x000002
#define P_NOMAIL	0x000004
#define P_NORCPT	0x000008
#define P_NOBODY	0x000010
#define P_NOHDRS	0x000020
#define P_NOEOH		0x000040
#define P_NR_HDR	0x000080
#define P_NOUNKNOWN	0x000100
#define P_NODATA	0x000200
#define P_SKIP		0x000400
#define P_NR_CONN	0x001000
#define P_NR_HELO	0x002000
#define P_NR_MAIL	0x004000
#define P_NR_RCPT	0x008000
#define P_NR_DATA	0x010000
#define P_NR_UNKN	0x020000
#define P_NR_EOH	0x040000
#define P_NR_BODY	0x080000
#define P_HDR_LEADSPC	0x100000
/* All of them but RCPT_REJ (0x800): refused recipients are not shown. */
#define P_OFFERED	0x1ff7ff

#define PROGRESS_MAX	1000	/* "still working" answers to one command */
#define CHANGES_MAX	1000	/* change requests at the end of a message */
#define ADDED_MAX	(64 * 1024)	/* header bytes milters may add */
#define HEADER_MAX	(256 * 1024)	/* header passed on as fields */

struct milter {
	const struct milter_def	*d;
	int		 fd;		/* -1: not connected */
	uint32_t	 actions;	/* negotiated */
	uint32_t	 pflags;
	int		 conn_done;	/* accepted the session: no more */
	int		 msg_done;	/* decided on this message */
	int		 skip_body;
	int		 in_tx;		/* MAIL sent, no end of message yet */
};

struct milter_session {
	struct policy_session	*ps;
	struct milter	 m[MILTERS_MAX];
	int		 n;
	int		 opened;
	struct verdict	 conn_v;	/* the session is refused */
	struct verdict	 msg_v;		/* the message is refused */
	int		 discard;	/* of the message */
	int		 quarantine;
	char		 queue_id[SPOOL_ID_LEN + 1];
	char		 sender[512];
	const char	*rcpt;		/* while RCPT is asked about */

	/* What the tap has seen of the message. */
	struct str	 hdr;
	int		 in_body;
	char		 chunk[MILTER_CHUNK];
	size_t		 chunklen;
	datain_tap_fn	 next;
	void		*next_arg;
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when fd is ready, 0 at the deadline (errno ETIMEDOUT), -1. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int r;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0) {
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
milter_packet(struct str *out, char cmd, const void *p, size_t n)
{
	uint32_t len;

	if (n > MILTER_PACKET_MAX)
		return -1;
	len = htonl((uint32_t)n + 1);
	if (str_append(out, &len, 4) == -1 || str_appendc(out, cmd) == -1)
		return -1;
	return n == 0 ? 0 : str_append(out, p, n);
}

int
milter_replycode(const char *p, size_t n, struct verdict *v)
{
	char line[512], status[8] = "";
	const char *nl, *t;
	size_t len, i;
	int code = -1;

	memset(v, 0, sizeof(*v));
	while (n > 0 && (p[n - 1] == '\0' || p[n - 1] == '\r' ||
	    p[n - 1] == '\n'))
		n--;
	while (n > 0) {
		nl = memchr(p, '\n', n);
		len = nl != NULL ? (size_t)(nl - p) : n;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len < 3 || len >= sizeof(line))
			return -1;
		memcpy(line, p, len);
		line[len] = '\0';
		for (i = 0; i < 3; i++)
			if (line[i] < '0' || line[i] > '9')
				return -1;
		if (code == -1)
			code = atoi(line);
		else if (atoi(line) != code)
			return -1;
		if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
			return -1;
		t = line[3] != '\0' ? line + 4 : line + 3;
		/* An enhanced status code of the same class, once. */
		if (t[0] == line[0] && t[1] == '.') {
			len = strcspn(t, " ");
			if (status[0] == '\0' && len < sizeof(status)) {
				memcpy(status, t, len);
				status[len] = '\0';
			}
			t += len;
			t += strspn(t, " ");
		}
		for (i = 0; t[i] != '\0'; i++)
			if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
				return -1;
		if (v->text[0] != '\0' && str_lcat(v->text, "\n",
		    sizeof(v->text)) >= sizeof(v->text))
			return -1;
		if (str_lcat(v->text, t, sizeof(v->text)) >= sizeof(v->text))
			return -1;
		if (nl == NULL)
			break;
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	if (code < 400 || code > 599)
		return -1;
	v->kind = code < 500 ? VERDICT_DEFER : VERDICT_REJECT;
	v->code = code;
	str_lcpy(v->status, status[0] ? status : code < 500 ? "4.7.1" :
	    "5.7.1", sizeof(v->status));
	if (v->text[0] == '\0')
		str_lcpy(v->text, "Command refused by a content filter",
		    sizeof(v->text));
	return 0;
}

static void
set(struct verdict *v, enum verdict_kind k, int code, const char *status,
    const char *text)
{
	v->kind = k;
	v->code = code;
	str_lcpy(v->status, status, sizeof(v->status));
	str_lcpy(v->text, text, sizeof(v->text));
}

/* The milter did not answer as it should: its default action. */
static void
broken(struct milter_session *s, struct milter *m, const char *what)
{
	int e = errno;

	log_err("%s milter %s: %s%s%s; default action %s", s->ps->id,
	    m->d->address, what, e != 0 ? ": " : "", e != 0 ? strerror(e) :
	    "", m->d->accept_on_fail ? "accept" : "tempfail");
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
	m->conn_done = 1;
	if (!m->d->accept_on_fail && s->conn_v.kind == VERDICT_CONTINUE)
		set(&s->conn_v, VERDICT_DEFER, 451, "4.7.1", "Service "
		    "unavailable (content filter), try again later");
}

static int
send_all(int fd, const char *p, size_t n, long long deadline)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w == -1 && errno == EINTR)
			continue;
		else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) != 1)
				return -1;
		} else
			return -1;
	}
	return 0;
}

static int
recv_all(int fd, char *p, size_t n, long long deadline)
{
	ssize_t r;

	while (n > 0) {
		r = recv(fd, p, n, 0);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		} else if (r == 0) {
			errno = ECONNRESET;
			return -1;
		} else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(fd, POLLIN, deadline) != 1)
				return -1;
		} else
			return -1;
	}
	return 0;
}

/* Sends one packet; -1 when the milter is now broken. */
static int
put(struct milter_session *s, struct milter *m, char cmd, const void *p,
    size_t n)
{
	struct str out;
	int rc;

	str_init(&out, MILTER_PACKET_MAX + 8);
	errno = 0;
	rc = milter_packet(&out, cmd, p, n);
	if (rc == 0)
		rc = send_all(m->fd, out.s, out.len, now_ms() +
		    (long long)m->d->timeout * 1000);
	str_free(&out);
	if (rc == -1)
		broken(s, m, "cannot send");
	return rc;
}

/*
 * Reads one packet into *buf (malloc'd, NUL added), skipping progress
 * reports.  The command, or -1 when the milter is now broken.
 */
static int
get(struct milter_session *s, struct milter *m, char **buf, size_t *len)
{
	long long deadline = now_ms() + (long long)m->d->timeout * 1000;
	uint32_t nl;
	size_t n;
	char *p;
	int i;

	*buf = NULL;
	for (i = 0; i < PROGRESS_MAX; i++) {
		errno = 0;
		if (recv_all(m->fd, (char *)&nl, 4, deadline) == -1) {
			broken(s, m, errno == ETIMEDOUT ? "no reply in time" :
			    "cannot read a reply");
			return -1;
		}
		n = ntohl(nl);
		if (n == 0 || n > MILTER_PACKET_MAX) {
			errno = 0;
			broken(s, m, "reply of a bad length");
			return -1;
		}
		if ((p = malloc(n + 1)) == NULL) {
			broken(s, m, "reply");
			return -1;
		}
		if (recv_all(m->fd, p, n, deadline) == -1) {
			free(p);
			broken(s, m, errno == ETIMEDOUT ? "no reply in time" :
			    "cannot read a reply");
			return -1;
		}
		p[n] = '\0';
		if (p[0] != R_PROGRESS) {
			*buf = p;
			*len = n - 1;
			return (unsigned char)p[0];
		}
		free(p);
		deadline = now_ms() + (long long)m->d->timeout * 1000;
	}
	errno = 0;
	broken(s, m, "too many progress reports");
	return -1;
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
		if ((errno != EINPROGRESS && errno != EAGAIN) ||
		    wait_fd(fd, POLLOUT, deadline) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
			goto bad;
		if (e != 0) {
			errno = e;
			goto bad;
		}
	}
	return fd;
bad:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int
dial(const struct milter_def *d)
{
	long long deadline = now_ms() + (long long)d->connect_timeout * 1000;
	struct addrinfo hints, *res, *ai;
	struct sockaddr_un sun;
	int fd = -1, e = ECONNREFUSED;

	if (d->unix_socket) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		str_lcpy(sun.sun_path, d->path, sizeof(sun.sun_path));
		return connect_to((struct sockaddr *)&sun, sizeof(sun),
		    deadline);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(d->host, d->port, &hints, &res) != 0) {
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

/* Option negotiation.  0, or -1 when the milter is now broken. */
static int
negotiate(struct milter_session *s, struct milter *m)
{
	uint32_t o[3];
	char *p;
	size_t n;
	int c;

	o[0] = htonl(MILTER_VERSION);
	o[1] = htonl(A_ALL);
	o[2] = htonl(P_OFFERED);
	if (put(s, m, C_OPTNEG, o, sizeof(o)) == -1)
		return -1;
	if ((c = get(s, m, &p, &n)) == -1)
		return -1;
	/* Macro lists that may follow are not needed: ours are fixed. */
	if (c != C_OPTNEG || n < 12) {
		free(p);
		errno = 0;
		broken(s, m, "bad option negotiation");
		return -1;
	}
	memcpy(o, p + 1, sizeof(o));
	free(p);
	m->actions = ntohl(o[1]);
	m->pflags = ntohl(o[2]);
	if (ntohl(o[0]) < 2 || (m->actions & ~(uint32_t)A_ALL) != 0 ||
	    (m->pflags & ~(uint32_t)P_OFFERED) != 0) {
		errno = 0;
		broken(s, m, "asks for a version, actions or steps not "
		    "offered");
		return -1;
	}
	return 0;
}

/* Name and value pairs, NUL-terminated, after the stage's command. */
static void
macro(struct str *b, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	(void)str_append(b, name, strlen(name) + 1);
	(void)str_append(b, value, strlen(value) + 1);
}

/* The macros a stage defines, sent before the command. */
static int
macros(struct milter_session *s, struct milter *m, char stage)
{
	struct policy_facts f;
	char num[16], addr[NI_MAXHOST + 4];
	struct str b;
	int rc;

	memset(&f, 0, sizeof(f));
	if (s->ps->describe != NULL)
		s->ps->describe(s->ps->describe_arg, &f);
	str_init(&b, 16384);
	(void)str_appendc(&b, stage);
	switch (stage) {
	case C_CONNECT:
		macro(&b, "j", s->ps->pol->hostname);
		macro(&b, "{daemon_name}", "smtpd");
		macro(&b, "v", PACKAGE_NAME " " PACKAGE_VERSION);
		macro(&b, "{client_addr}", f.client_addr);
		macro(&b, "{client_name}", f.client_name != NULL &&
		    f.client_name[0] ? f.client_name : "unknown");
		macro(&b, "{client_ptr}", f.reverse_name);
		macro(&b, "{if_addr}", f.server_addr);
		snprintf(addr, sizeof(addr), "%s [%s]", f.client_name != NULL &&
		    f.client_name[0] ? f.client_name : "unknown",
		    f.client_addr != NULL ? f.client_addr : "");
		macro(&b, "_", addr);
		break;
	case C_HELO:
		macro(&b, "{tls_version}", f.tls_version);
		macro(&b, "{cipher}", f.tls_cipher);
		if (f.tls_version != NULL) {
			snprintf(num, sizeof(num), "%u", f.tls_bits);
			macro(&b, "{cipher_bits}", num);
		}
		macro(&b, "{cert_subject}", f.ccert_subject);
		macro(&b, "{cert_issuer}", f.ccert_issuer);
		break;
	case C_MAIL:
		macro(&b, "{mail_addr}", s->sender);
		macro(&b, "{auth_type}", f.sasl_method);
		macro(&b, "{auth_authen}", f.sasl_username);
		macro(&b, "{tls_version}", f.tls_version);
		break;
	case C_RCPT:
		macro(&b, "{rcpt_addr}", s->rcpt);
		break;
	case C_DATA:
	case C_EOH:
	case C_BODYEOB:
		macro(&b, "i", s->queue_id);
		break;
	}
	rc = put(s, m, C_MACRO, b.s, b.len);
	str_free(&b);
	return rc;
}

/* The milter's answer to one stage, applied; 0, or -1 if it broke. */
static int
answer(struct milter_session *s, struct milter *m, int c, const char *p,
    size_t n, int conn, struct verdict *rcpt_v)
{
	struct verdict v;
	struct verdict *dst = rcpt_v != NULL ? rcpt_v : conn ? &s->conn_v :
	    &s->msg_v;

	switch (c) {
	case R_CONTINUE:
		return 0;
	case R_SKIP:
		m->skip_body = 1;
		return 0;
	case R_ACCEPT:
		if (conn)
			m->conn_done = 1;
		else
			m->msg_done = 1;
		return 0;
	case R_DISCARD:
		if (!conn) {
			s->discard = 1;
			m->msg_done = 1;
		}
		log_info("%s milter %s: discard", s->ps->id, m->d->address);
		return 0;
	case R_REJECT:
		set(&v, VERDICT_REJECT, 550, "5.7.1", "Refused by a content "
		    "filter");
		break;
	case R_TEMPFAIL:
		set(&v, VERDICT_DEFER, 451, "4.7.1", "Delayed by a content "
		    "filter, try again later");
		break;
	case R_REPLYCODE:
		if (milter_replycode(p, n, &v) == 0)
			break;
		/* FALLTHROUGH */
	default:
		errno = 0;
		broken(s, m, "reply not in the protocol");
		return -1;
	}
	log_info("%s milter %s: %d %s %.200s", s->ps->id, m->d->address,
	    v.code, v.status, v.text);
	if (dst->kind == VERDICT_CONTINUE)
		*dst = v;
	/* A refused recipient does not end the message. */
	if (!conn && rcpt_v == NULL)
		m->msg_done = 1;
	return 0;
}

/* Is m to be told about this stage of the message? */
static int
live(const struct milter *m)
{
	return m->fd != -1 && !m->conn_done && !m->msg_done;
}

/*
 * One stage to every milter that wants it: its macros, the command and,
 * unless the milter said it does not answer, the reply.
 */
static void
stage(struct milter_session *s, char cmd, const void *p, size_t n,
    uint32_t skip, uint32_t noreply, int conn, struct verdict *rcpt_v)
{
	struct milter *m;
	char *buf;
	size_t len;
	int i, c;

	for (i = 0; i < s->n; i++) {
		m = &s->m[i];
		if (s->conn_v.kind != VERDICT_CONTINUE ||
		    s->msg_v.kind != VERDICT_CONTINUE ||
		    (rcpt_v != NULL && rcpt_v->kind != VERDICT_CONTINUE))
			return;
		if (!live(m) || (m->pflags & skip) != 0)
			continue;
		if (macros(s, m, cmd) == -1 || put(s, m, cmd, p, n) == -1)
			continue;
		if ((m->pflags & noreply) != 0)
			continue;
		if ((c = get(s, m, &buf, &len)) == -1)
			continue;
		(void)answer(s, m, c, buf + 1, len, conn, rcpt_v);
		free(buf);
	}
}

/* What a refused stage answers; the message's verdict also ends it. */
static enum verdict_kind
outcome(struct milter_session *s, struct verdict *v)
{
	if (s->conn_v.kind != VERDICT_CONTINUE)
		*v = s->conn_v;
	else if (s->msg_v.kind != VERDICT_CONTINUE)
		*v = s->msg_v;
	else
		return VERDICT_CONTINUE;
	return v->kind;
}

static void
open_all(struct milter_session *s)
{
	struct sockaddr_storage *ss = &s->ps->peer;
	struct policy_facts f;
	struct milter *m;
	struct str b;
	char host[NI_MAXHOST];
	uint16_t port = 0;
	int i;

	s->opened = 1;
	for (i = 0; i < s->n; i++) {
		m = &s->m[i];
		if ((m->fd = dial(m->d)) == -1) {
			broken(s, m, "cannot connect");
			continue;
		}
		(void)negotiate(s, m);
	}
	memset(&f, 0, sizeof(f));
	if (s->ps->describe != NULL)
		s->ps->describe(s->ps->describe_arg, &f);
	str_init(&b, 4096);
	snprintf(host, sizeof(host), "%s", f.client_name != NULL &&
	    f.client_name[0] ? f.client_name : f.client_addr != NULL ?
	    f.client_addr : "localhost");
	(void)str_append(&b, host, strlen(host) + 1);
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
		port = ss->ss_family == AF_INET ?
		    ((struct sockaddr_in *)ss)->sin_port :
		    ((struct sockaddr_in6 *)ss)->sin6_port;
		(void)str_appendc(&b, ss->ss_family == AF_INET ? '4' : '6');
		(void)str_append(&b, &port, 2);
		(void)str_append(&b, f.client_addr, strlen(f.client_addr) + 1);
	} else
		(void)str_appendc(&b, 'U');
	stage(s, C_CONNECT, b.s, b.len, P_NOCONNECT, P_NR_CONN, 1, NULL);
	str_free(&b);
}

enum verdict_kind
milter_helo(struct milter_session **mp, struct policy_session *ps,
    const char *helo, struct verdict *v)
{
	const struct milter_conf *c = ps->pol->milters;
	struct milter_session *s = *mp;
	int i;

	if (s == NULL) {
		if (c == NULL || c->n == 0)
			return VERDICT_CONTINUE;
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			set(v, VERDICT_DEFER, 451, "4.3.0", "Out of memory, "
			    "try again later");
			return VERDICT_DEFER;
		}
		s->ps = ps;
		s->n = c->n;
		for (i = 0; i < s->n; i++) {
			s->m[i].d = &c->m[i];
			s->m[i].fd = -1;
		}
		str_init(&s->hdr, HEADER_MAX);
		*mp = s;
	}
	if (!s->opened)
		open_all(s);
	stage(s, C_HELO, helo, strlen(helo) + 1, P_NOHELO, P_NR_HELO, 1, NULL);
	return outcome(s, v);
}

enum verdict_kind
milter_mail(struct milter_session *s, const char *sender, struct verdict *v)
{
	struct str b;
	int i;

	if (s == NULL)
		return VERDICT_CONTINUE;
	str_lcpy(s->sender, sender, sizeof(s->sender));
	str_init(&b, 1024);
	(void)str_appendf(&b, "<%s>", sender);
	(void)str_appendc(&b, '\0');
	for (i = 0; i < s->n; i++)
		s->m[i].in_tx = s->m[i].fd != -1 && !s->m[i].conn_done;
	stage(s, C_MAIL, b.s, b.len, P_NOMAIL, P_NR_MAIL, 0, NULL);
	str_free(&b);
	if (outcome(s, v) == VERDICT_CONTINUE)
		return VERDICT_CONTINUE;
	milter_abort(s);
	return v->kind;
}

enum verdict_kind
milter_rcpt(struct milter_session *s, const char *rcpt, struct verdict *v)
{
	struct str b;

	if (s == NULL)
		return VERDICT_CONTINUE;
	memset(v, 0, sizeof(*v));
	str_init(&b, 1024);
	(void)str_appendf(&b, "<%s>", rcpt);
	(void)str_appendc(&b, '\0');
	s->rcpt = rcpt;
	stage(s, C_RCPT, b.s, b.len, P_NORCPT, P_NR_RCPT, 0, v);
	s->rcpt = NULL;
	str_free(&b);
	if (v->kind != VERDICT_CONTINUE)
		return v->kind;
	return outcome(s, v);
}

/* The header as fields: name NUL value NUL, each to every milter. */
static void
send_header(struct milter_session *s)
{
	const char *p = s->hdr.s, *end = p + s->hdr.len, *line, *colon, *q, *qe;
	struct str f;
	int i;

	str_init(&f, HEADER_MAX);
	while (p != NULL && p < end && !(p[0] == '\r' || p[0] == '\n')) {
		line = p;
		/* A field runs to a line that does not start with WSP. */
		for (;;) {
			p = memchr(p, '\n', (size_t)(end - p));
			if (p == NULL) {
				p = end;
				break;
			}
			p++;
			if (p >= end || (*p != ' ' && *p != '\t'))
				break;
		}
		if ((colon = memchr(line, ':', (size_t)(p - line))) == NULL)
			continue;
		str_clear(&f);
		(void)str_append(&f, line, (size_t)(colon - line));
		(void)str_appendc(&f, '\0');
		colon++;
		/*
		 * The value: folds as LF, no final line end, no space after
		 * the colon (put back for HDR_LEADSPC below).
		 */
		q = colon;
		qe = p;
		while (qe > q && (qe[-1] == '\n' || qe[-1] == '\r'))
			qe--;
		if (q < qe && *q == ' ')
			q++;
		for (; q < qe; q++)
			if (*q != '\r')
				(void)str_appendc(&f, *q);
		(void)str_appendc(&f, '\0');
		for (i = 0; i < s->n; i++) {
			struct milter *m = &s->m[i];
			char *buf;
			size_t len;
			int c;

			if (s->msg_v.kind != VERDICT_CONTINUE ||
			    s->conn_v.kind != VERDICT_CONTINUE)
				break;
			if (!live(m) || (m->pflags & P_NOHDRS) != 0)
				continue;
			if ((m->pflags & P_HDR_LEADSPC) != 0 &&
			    colon < p && *colon == ' ') {
				struct str g;
				size_t nl = strlen(f.s) + 1;

				str_init(&g, HEADER_MAX + 1);
				(void)str_append(&g, f.s, nl);
				(void)str_appendc(&g, ' ');
				(void)str_append(&g, f.s + nl, f.len - nl);
				c = put(s, m, C_HEADER, g.s, g.len);
				str_free(&g);
			} else
				c = put(s, m, C_HEADER, f.s, f.len);
			if (c == -1 || (m->pflags & P_NR_HDR) != 0)
				continue;
			if ((c = get(s, m, &buf, &len)) == -1)
				continue;
			(void)answer(s, m, c, buf + 1, len, 0, NULL);
			free(buf);
		}
	}
	str_free(&f);
	stage(s, C_EOH, NULL, 0, P_NOEOH, P_NR_EOH, 0, NULL);
}

static void
send_chunk(struct milter_session *s)
{
	struct milter *m;
	char *buf;
	size_t len;
	int i, c;

	for (i = 0; i < s->n && s->chunklen > 0; i++) {
		m = &s->m[i];
		if (s->msg_v.kind != VERDICT_CONTINUE ||
		    s->conn_v.kind != VERDICT_CONTINUE)
			break;
		if (!live(m) || m->skip_body || (m->pflags & P_NOBODY) != 0)
			continue;
		if (put(s, m, C_BODY, s->chunk, s->chunklen) == -1 ||
		    (m->pflags & P_NR_BODY) != 0)
			continue;
		if ((c = get(s, m, &buf, &len)) == -1)
			continue;
		if (c == R_SKIP && (m->pflags & P_SKIP) == 0)
			c = R_CONTINUE;
		(void)answer(s, m, c, buf + 1, len, 0, NULL);
		free(buf);
	}
	s->chunklen = 0;
}

/* The datain tap: header fields, then body chunks. */
static void
feed(void *arg, const char *p, size_t n)
{
	struct milter_session *s = arg;
	size_t take;

	if (s->next != NULL)
		s->next(s->next_arg, p, n);
	while (n > 0 && !s->in_body) {
		if (str_appendc(&s->hdr, *p) == -1)
			s->in_body = 1;	/* too long: the rest is body */
		else {
			p++;
			n--;
		}
		if ((s->hdr.len == 2 && memcmp(s->hdr.s, "\r\n", 2) == 0) ||
		    (s->hdr.len >= 4 && memcmp(s->hdr.s + s->hdr.len - 4,
		    "\r\n\r\n", 4) == 0))
			s->in_body = 1;
		if (s->in_body)
			send_header(s);
	}
	while (n > 0) {
		take = sizeof(s->chunk) - s->chunklen;
		if (take > n)
			take = n;
		memcpy(s->chunk + s->chunklen, p, take);
		s->chunklen += take;
		p += take;
		n -= take;
		if (s->chunklen == sizeof(s->chunk))
			send_chunk(s);
	}
}

void
milter_data(struct milter_session *s, struct datain *d, const char *id)
{
	if (s == NULL)
		return;
	str_lcpy(s->queue_id, id, sizeof(s->queue_id));
	str_clear(&s->hdr);
	s->in_body = 0;
	s->chunklen = 0;
	stage(s, C_DATA, NULL, 0, P_NODATA, P_NR_DATA, 0, NULL);
	s->next = d->tap;
	s->next_arg = d->tap_arg;
	datain_tap(d, feed, s);
}

/* A header field a milter adds: "Name: value" with CRLF folds. */
static void
add_field(struct milter_session *s, struct milter *m, struct str *adds,
    const char *p, size_t n)
{
	const char *name = p, *value, *q;
	size_t nl;

	if ((m->actions & 0x01) == 0) {
		log_err("%s milter %s: adds a header field without having "
		    "said so; not added", s->ps->id, m->d->address);
		return;
	}
	nl = strnlen(p, n);
	if (nl == 0 || nl + 1 >= n) {
		log_err("%s milter %s: header field to add is malformed; not "
		    "added", s->ps->id, m->d->address);
		return;
	}
	value = p + nl + 1;
	for (q = name; *q != '\0'; q++)
		if ((unsigned char)*q <= 0x20 || *q == ':' || *q == 0x7f)
			goto bad;
	for (q = value; q < p + n && *q != '\0'; q++)
		if (*q == '\r' || (*q == '\n' && q[1] != ' ' && q[1] != '\t'))
			goto bad;
	if (str_appendf(adds, "%s:%s", name, value[0] == ' ' ||
	    value[0] == '\t' ? "" : " ") == -1)
		goto full;
	for (q = value; q < p + n && *q != '\0'; q++)
		if ((*q == '\n' ? str_append(adds, "\r\n", 2) :
		    str_appendc(adds, *q)) == -1)
			goto full;
	if (str_append(adds, "\r\n", 2) == -1)
		goto full;
	log_info("%s milter %s: header field %.100s added", s->ps->id,
	    m->d->address, name);
	return;
bad:
	log_err("%s milter %s: header field to add is malformed; not added",
	    s->ps->id, m->d->address);
	return;
full:
	log_err("%s milter %s: header fields to add exceed %d bytes; not "
	    "all added", s->ps->id, m->d->address, ADDED_MAX);
}

/* The changes asked for at the end of the message, then its verdict. */
static void
eom_one(struct milter_session *s, struct milter *m, struct str *adds)
{
	const char *what;
	char *buf;
	size_t len, nl;
	int c, i;

	if (macros(s, m, C_BODYEOB) == -1 || put(s, m, C_BODYEOB, NULL,
	    0) == -1)
		return;
	for (i = 0; i < CHANGES_MAX; i++) {
		if ((c = get(s, m, &buf, &len)) == -1)
			return;
		what = NULL;
		switch (c) {
		case R_ADDHEADER:
			add_field(s, m, adds, buf + 1, len);
			break;
		case R_INSHEADER:
			/* An index, then the field: put on top anyway. */
			if (len > 4)
				add_field(s, m, adds, buf + 5, len - 4);
			break;
		case R_QUARANTINE:
			if ((m->actions & 0x20) == 0) {
				what = "quarantine without having said so";
				break;
			}
			nl = strnlen(buf + 1, len);
			log_info("%s milter %s: quarantine: %.*s", s->ps->id,
			    m->d->address, (int)(nl > 200 ? 200 : nl),
			    buf + 1);
			s->quarantine = 1;
			break;
		case R_CHGHEADER:
			what = "a header field changed or deleted";
			break;
		case R_REPLBODY:
			what = "the body replaced";
			break;
		case R_ADDRCPT:
		case R_ADDRCPT_PAR:
			what = "a recipient added";
			break;
		case R_DELRCPT:
			what = "a recipient removed";
			break;
		case R_CHGFROM:
			what = "the sender changed";
			break;
		case R_SETSYMLIST:
		case R_SHUTDOWN:
		case R_CONN_FAIL:
		case C_OPTNEG:
			c = -2;	/* not an answer here */
			/* FALLTHROUGH */
		default:
			(void)answer(s, m, c, buf + 1, len, 0, NULL);
			free(buf);
			return;
		}
		if (what != NULL)
			log_warn("%s milter %s: asked for %s: not supported, "
			    "not done", s->ps->id, m->d->address, what);
		free(buf);
	}
	errno = 0;
	broken(s, m, "too many changes");
}

int
milter_eom(struct milter_session *s, struct spool_msg *msg, size_t *added,
    struct verdict *v)
{
	struct str adds;
	int i, rc = 0;

	memset(v, 0, sizeof(*v));
	if (s == NULL)
		return 0;
	if (!s->in_body) {
		s->in_body = 1;
		send_header(s);
	}
	send_chunk(s);
	str_init(&adds, ADDED_MAX);
	for (i = 0; i < s->n; i++) {
		if (s->msg_v.kind != VERDICT_CONTINUE ||
		    s->conn_v.kind != VERDICT_CONTINUE)
			break;
		if (live(&s->m[i]))
			eom_one(s, &s->m[i], &adds);
	}
	/* After the end of a message the milters await MAIL, no abort. */
	for (i = 0; i < s->n; i++)
		s->m[i].in_tx = 0;
	if (outcome(s, v) == VERDICT_CONTINUE && !s->discard) {
		if (adds.len > 0) {
			if ((rc = spool_insert(msg, adds.s, adds.len)) == 0)
				*added += adds.len;
		}
		if (rc == 0 && s->quarantine && (rc = spool_hold(msg)) == 0)
			s->ps->hold = 1;
	}
	if (s->discard)
		s->ps->discard = 1;
	str_free(&adds);
	return rc;
}

void
milter_abort(struct milter_session *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		if (s->m[i].fd != -1 && !s->m[i].conn_done && s->m[i].in_tx)
			(void)put(s, &s->m[i], C_ABORT, NULL, 0);
		s->m[i].in_tx = 0;
		s->m[i].msg_done = 0;
		s->m[i].skip_body = 0;
	}
	memset(&s->msg_v, 0, sizeof(s->msg_v));
	s->discard = 0;
	s->quarantine = 0;
	s->queue_id[0] = '\0';
	s->sender[0] = '\0';
	str_clear(&s->hdr);
	s->in_body = 0;
	s->chunklen = 0;
}

void
milter_close(struct milter_session **sp)
{
	struct milter_session *s = *sp;
	int i;

	if (s == NULL)
		return;
	*sp = NULL;
	for (i = 0; i < s->n; i++)
		if (s->m[i].fd != -1) {
			(void)put(s, &s->m[i], C_QUIT, NULL, 0);
			if (s->m[i].fd != -1)
				close(s->m[i].fd);
		}
	str_free(&s->hdr);
	free(s);
}
