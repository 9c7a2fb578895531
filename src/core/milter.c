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
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/net.h"
#include "milter_int.h"

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
	char line[512], status[REPLY_STATUS_LEN + 1] = "";
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
		if (v->reply.text[0] != '\0' && str_lcat(v->reply.text, "\n",
		    sizeof(v->reply.text)) >= sizeof(v->reply.text))
			return -1;
		if (str_lcat(v->reply.text, t, sizeof(v->reply.text)) >=
		    sizeof(v->reply.text))
			return -1;
		if (nl == NULL)
			break;
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	if (code < 400 || code > 599)
		return -1;
	v->kind = code < 500 ? VERDICT_DEFER : VERDICT_REJECT;
	v->reply.code = code;
	/* A malformed status is the filter's mistake: the class default. */
	str_lcpy(v->reply.status, reply_status_fits(status, code) ? status :
	    code < 500 ? "4.7.1" : "5.7.1", sizeof(v->reply.status));
	if (v->reply.text[0] == '\0')
		str_lcpy(v->reply.text, "Command refused by a content filter",
		    sizeof(v->reply.text));
	return 0;
}

/* The milter did not answer as it should: its default action. */
void
milter_broken(struct milter_session *s, struct milter *m, const char *what)
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
		(void)verdict_set(&s->conn_v, VERDICT_DEFER, 451, "4.7.1",
		    "Service unavailable (content filter), try again later");
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
			if (net_wait(fd, POLLIN, deadline) != 1)
				return -1;
		} else
			return -1;
	}
	return 0;
}

/* Sends one packet; -1 when the milter is now broken. */
int
milter_put(struct milter_session *s, struct milter *m, char cmd,
    const void *p, size_t n)
{
	struct str out;
	int rc;

	str_init(&out, MILTER_PACKET_MAX + 8);
	errno = 0;
	rc = milter_packet(&out, cmd, p, n);
	if (rc == 0)
		rc = net_send_all(m->fd, out.s, out.len, net_now_ms() +
		    (long long)m->d->timeout * 1000);
	str_free(&out);
	if (rc == -1)
		milter_broken(s, m, "cannot send");
	return rc;
}

/*
 * Reads one packet into *buf (malloc'd, NUL added), skipping progress
 * reports.  The command, or -1 when the milter is now broken.
 */
int
milter_get(struct milter_session *s, struct milter *m, char **buf,
    size_t *len)
{
	return milter_get_within(s, m, buf, len, m->d->timeout);
}

int
milter_get_within(struct milter_session *s, struct milter *m, char **buf,
    size_t *len, unsigned int secs)
{
	long long deadline = net_now_ms() + (long long)secs * 1000;
	uint32_t nl;
	size_t n;
	char *p;
	int i;

	*buf = NULL;
	for (i = 0; i < PROGRESS_MAX; i++) {
		errno = 0;
		if (recv_all(m->fd, (char *)&nl, 4, deadline) == -1) {
			milter_broken(s, m, errno == ETIMEDOUT ?
			    "no reply in time" : "cannot read a reply");
			return -1;
		}
		n = ntohl(nl);
		if (n == 0 || n > MILTER_PACKET_MAX) {
			errno = 0;
			milter_broken(s, m, "reply of a bad length");
			return -1;
		}
		if ((p = malloc(n + 1)) == NULL) {
			milter_broken(s, m, "reply");
			return -1;
		}
		if (recv_all(m->fd, p, n, deadline) == -1) {
			free(p);
			milter_broken(s, m, errno == ETIMEDOUT ?
			    "no reply in time" : "cannot read a reply");
			return -1;
		}
		p[n] = '\0';
		if (p[0] != R_PROGRESS) {
			*buf = p;
			*len = n - 1;
			return (unsigned char)p[0];
		}
		free(p);
		deadline = net_now_ms() + (long long)secs * 1000;
	}
	errno = 0;
	milter_broken(s, m, "too many progress reports");
	return -1;
}

static int
dial(const struct milter_def *d)
{
	int fd, on = 1;

	fd = net_connect(d->unix_socket ? d->path : NULL, d->host, d->port,
	    net_now_ms() + (long long)d->connect_timeout * 1000);
	/*
	 * The macros and the command they go with are two packets, two
	 * writes: with Nagle's algorithm the second waits for the milter's
	 * delayed ACK (up to 40 ms), at every stage of every message.
	 */
	if (fd != -1 && !d->unix_socket &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_warn("milter %s: TCP_NODELAY: %s", d->address,
		    strerror(errno));
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
	if (milter_put(s, m, C_OPTNEG, o, sizeof(o)) == -1)
		return -1;
	if ((c = milter_get(s, m, &p, &n)) == -1)
		return -1;
	/* Macro lists that may follow are not needed: ours are fixed. */
	if (c != C_OPTNEG || n < 12) {
		free(p);
		errno = 0;
		milter_broken(s, m, "bad option negotiation");
		return -1;
	}
	memcpy(o, p + 1, sizeof(o));
	free(p);
	m->actions = ntohl(o[1]);
	m->pflags = ntohl(o[2]);
	if (ntohl(o[0]) < 2 || (m->actions & ~(uint32_t)A_ALL) != 0 ||
	    (m->pflags & ~(uint32_t)P_OFFERED) != 0) {
		errno = 0;
		milter_broken(s, m, "asks for a version, actions or steps not "
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
int
milter_macros(struct milter_session *s, struct milter *m, char stage)
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
	rc = milter_put(s, m, C_MACRO, b.s, b.len);
	str_free(&b);
	return rc;
}

/* The milter's answer to one stage, applied; 0, or -1 if it broke. */
int
milter_answer(struct milter_session *s, struct milter *m, int c,
    const char *p, size_t n, int conn, struct verdict *rcpt_v)
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
		(void)verdict_set(&v, VERDICT_REJECT, 550, "5.7.1",
		    "Refused by a content filter");
		break;
	case R_TEMPFAIL:
		(void)verdict_set(&v, VERDICT_DEFER, 451, "4.7.1",
		    "Delayed by a content filter, try again later");
		break;
	case R_REPLYCODE:
		if (milter_replycode(p, n, &v) == 0)
			break;
		/* FALLTHROUGH */
	default:
		errno = 0;
		milter_broken(s, m, "reply not in the protocol");
		return -1;
	}
	log_info("%s milter %s: %d %s %.200s", s->ps->id, m->d->address,
	    v.reply.code, v.reply.status, v.reply.text);
	if (dst->kind == VERDICT_CONTINUE)
		*dst = v;
	/* A refused recipient does not end the message. */
	if (!conn && rcpt_v == NULL)
		m->msg_done = 1;
	return 0;
}

/* Is m to be told about this stage of the message? */
int
milter_live(const struct milter *m)
{
	return m->fd != -1 && !m->conn_done && !m->msg_done;
}

/*
 * One stage to every milter that wants it: its macros, the command and,
 * unless the milter said it does not answer, the reply.
 */
void
milter_stage(struct milter_session *s, char cmd, const void *p, size_t n,
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
		if (!milter_live(m) || (m->pflags & skip) != 0)
			continue;
		if (milter_macros(s, m, cmd) == -1 ||
		    milter_put(s, m, cmd, p, n) == -1)
			continue;
		if ((m->pflags & noreply) != 0)
			continue;
		if ((c = milter_get(s, m, &buf, &len)) == -1)
			continue;
		(void)milter_answer(s, m, c, buf + 1, len, conn, rcpt_v);
		free(buf);
	}
}

/* What a refused stage answers; the message's verdict also ends it. */
enum verdict_kind
milter_outcome(struct milter_session *s, struct verdict *v)
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
	const char *addr;
	uint16_t port = 0;
	int i;

	s->opened = 1;
	for (i = 0; i < s->n; i++) {
		m = &s->m[i];
		if ((m->fd = dial(m->d)) == -1) {
			milter_broken(s, m, "cannot connect");
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
		addr = f.client_addr != NULL ? f.client_addr : "";
		(void)str_append(&b, addr, strlen(addr) + 1);
	} else
		(void)str_appendc(&b, 'U');
	milter_stage(s, C_CONNECT, b.s, b.len, P_NOCONNECT, P_NR_CONN, 1, NULL);
	str_free(&b);
}

enum verdict_kind
milter_helo(struct milter_session **mp, struct policy_session *ps,
    const struct listen_conf *l, const char *helo, struct verdict *v)
{
	const struct milter_conf *c = ps->pol->milters;
	struct milter_session *s = *mp;
	int i, own = l != NULL && l->milters_set;

	if (s == NULL) {
		if (c == NULL || c->n == 0 || (own && l->nmilters == 0))
			return VERDICT_CONTINUE;
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			(void)verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
			    "Out of memory, try again later");
			return VERDICT_DEFER;
		}
		s->ps = ps;
		s->n = own ? l->nmilters : c->n;
		for (i = 0; i < s->n; i++) {
			s->m[i].d = &c->m[own ? l->milter[i] : i];
			s->m[i].fd = -1;
		}
		str_init(&s->hdr, HEADER_MAX);
		*mp = s;
	}
	if (!s->opened)
		open_all(s);
	milter_stage(s, C_HELO, helo, strlen(helo) + 1, P_NOHELO, P_NR_HELO, 1,
	    NULL);
	return milter_outcome(s, v);
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
	milter_stage(s, C_MAIL, b.s, b.len, P_NOMAIL, P_NR_MAIL, 0, NULL);
	str_free(&b);
	if (milter_outcome(s, v) == VERDICT_CONTINUE)
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
	milter_stage(s, C_RCPT, b.s, b.len, P_NORCPT, P_NR_RCPT, 0, v);
	s->rcpt = NULL;
	str_free(&b);
	if (v->kind != VERDICT_CONTINUE)
		return v->kind;
	return milter_outcome(s, v);
}

void
milter_abort(struct milter_session *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		if (s->m[i].fd != -1 && !s->m[i].conn_done && s->m[i].in_tx)
			(void)milter_put(s, &s->m[i], C_ABORT, NULL, 0);
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
			(void)milter_put(s, &s->m[i], C_QUIT, NULL, 0);
			if (s->m[i].fd != -1)
				close(s->m[i].fd);
		}
	str_free(&s->hdr);
	free(s);
}
