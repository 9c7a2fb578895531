/*
 * Policy delegation: the policy_services of smtpd.conf, asked over the
 * Postfix SMTPD access policy protocol.  See delegate.h and smtpd.conf(5).
 *
 * Each service keeps up to DELEGATE_POOL_MAX idle connections; a session
 * thread takes one (or connects), asks, and gives it back.  A connection
 * taken from the pool may have been closed by the service meanwhile: a
 * request on it that fails before any reply byte is sent once more on a
 * fresh connection.  Anything else that goes wrong (no connection, no
 * reply in time, a reply that is not the protocol) gives the service's
 * default_action, and the connection is closed.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netdb.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/net.h"
#include "delegate.h"

#define REQUEST_MAX	16384	/* bytes of one request */
#define REPLY_MAX	4096	/* bytes of one reply, all lines */
#define REPLY_ATTRS_MAX	32	/* name=value lines in one reply */
#define VALUE_MAX	1000	/* bytes of one attribute value sent */
#define TEXT_MAX	400	/* bytes of a reply text passed on */

struct delegate_service {
	char		 name[300];	/* the address as configured */
	int		 unix_socket;
	char		 host[256];
	char		 port[32];
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned int	 stages;		/* DELEGATE_RCPT, _EOM */
	unsigned int	 timeout;		/* seconds for a reply */
	unsigned int	 connect_timeout;
	unsigned int	 max_idle;		/* seconds */
	int		 defer_on_error;	/* default_action = "defer" */
	int		 check_trusted;		/* trusted clients too */

	pthread_mutex_t	 mu;
	int		 idle[DELEGATE_POOL_MAX];
	time_t		 idle_since[DELEGATE_POOL_MAX];
	int		 nidle;
};

static const char *const service_keys[] = {
	"address", "stage", "timeout", "connect_timeout", "max_idle",
	"default_action", "check_trusted", NULL
};

static int
parse_address(struct delegate_service *sv, const char *a)
{
	if (strncmp(a, "unix:", 5) == 0) {
		sv->unix_socket = 1;
		return a[5] == '/' && str_lcpy(sv->path, a + 5,
		    sizeof(sv->path)) < sizeof(sv->path) ? 0 : -1;
	}
	if (strncmp(a, "inet:", 5) == 0)
		a += 5;
	return net_split_service(a, sv->host, sizeof(sv->host), sv->port,
	    sizeof(sv->port));
}

static int
load_service(struct delegate_conf *c, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	struct delegate_service *sv;
	const char *addr = NULL, *stage = "rcpt", *action = "defer";

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return conf_err(cx, g, "policy_services entries "
		    "must be groups: { address = \"inet:127.0.0.1:10023\"; }");
	if (conf_check_keys(cx, g, service_keys, NULL) == -1)
		return -1;
	if (c->nsvc >= DELEGATE_SERVICES_MAX)
		return conf_err(cx, g, "more than %d policy "
		    "services", DELEGATE_SERVICES_MAX);
	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return conf_err(cx, g, "out of memory");
	c->svc[c->nsvc++] = sv;
	pthread_mutex_init(&sv->mu, NULL);
	sv->timeout = DEF_DELEGATE_TIMEOUT;
	sv->connect_timeout = DEF_DELEGATE_CONNECT;
	sv->max_idle = DEF_DELEGATE_IDLE;
	if (conf_get_string(cx, g, "address", &addr) == -1 ||
	    conf_get_string(cx, g, "stage", &stage) == -1 ||
	    conf_get_string(cx, g, "default_action", &action) == -1 ||
	    conf_get_duration(cx, g, "timeout", 1, 3600, &sv->timeout) == -1 ||
	    conf_get_duration(cx, g, "connect_timeout", 1, 3600,
	    &sv->connect_timeout) == -1 ||
	    conf_get_duration(cx, g, "max_idle", 1, 3600,
	    &sv->max_idle) == -1 ||
	    conf_get_bool(cx, g, "check_trusted", &sv->check_trusted) == -1)
		return -1;
	if (addr == NULL)
		return conf_err(cx, g, "a policy service needs an "
		    "address");
	str_lcpy(sv->name, addr, sizeof(sv->name));
	if (parse_address(sv, addr) == -1)
		return conf_err(cx, config_setting_get_member(g,
		    "address"), "bad policy service address \"%.100s\" (want "
		    "inet:host:port or unix:/path)", addr);
	if (strcmp(stage, "rcpt") == 0)
		sv->stages = DELEGATE_RCPT;
	else if (strcmp(stage, "data") == 0 ||
	    strcmp(stage, "end-of-message") == 0)
		sv->stages = DELEGATE_EOM;
	else if (strcmp(stage, "both") == 0)
		sv->stages = DELEGATE_RCPT | DELEGATE_EOM;
	else
		return conf_err(cx, config_setting_get_member(g,
		    "stage"), "stage must be \"rcpt\", \"data\" or \"both\"");
	if (strcasecmp(action, "defer") == 0)
		sv->defer_on_error = 1;
	else if (strcasecmp(action, "dunno") != 0)
		return conf_err(cx, config_setting_get_member(g,
		    "default_action"), "default_action must be \"defer\" or "
		    "\"dunno\"");
	return 0;
}

int
delegate_load(struct delegate_conf **out, const config_setting_t *root,
    const struct conf_ctx *cx)
{
	config_setting_t *s;
	struct delegate_conf *c;
	int i;

	*out = NULL;
	if ((s = config_setting_get_member(root, "policy_services")) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_GROUP)
		return conf_err(cx, s, "policy_services must be a "
		    "list of groups: ( { address = \"inet:host:port\"; } )");
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return conf_err(cx, s, "out of memory");
	if (config_setting_type(s) == CONFIG_TYPE_GROUP) {
		if (load_service(c, s, cx) == -1)
			goto bad;
	} else
		for (i = 0; i < config_setting_length(s); i++)
			if (load_service(c, config_setting_get_elem(s,
			    (unsigned)i), cx) == -1)
				goto bad;
	*out = c;
	return 0;
bad:
	delegate_free(&c);
	return -1;
}

void
delegate_free(struct delegate_conf **cp)
{
	struct delegate_conf *c = *cp;
	int i, j;

	if (c == NULL)
		return;
	*cp = NULL;
	for (i = 0; i < c->nsvc; i++) {
		for (j = 0; j < c->svc[i]->nidle; j++)
			close(c->svc[i]->idle[j]);
		pthread_mutex_destroy(&c->svc[i]->mu);
		free(c->svc[i]);
	}
	free(c);
}

void
delegate_print(const struct delegate_conf *c, FILE *f)
{
	const struct delegate_service *sv;
	int i;

	if (c == NULL) {
		fprintf(f, "policy services: none\n");
		return;
	}
	for (i = 0; i < c->nsvc; i++) {
		sv = c->svc[i];
		fprintf(f, "policy service %s: asked at %s%s%s, reply within "
		    "%u s (connect %u s), when it fails: %s%s\n", sv->name,
		    sv->stages & DELEGATE_RCPT ? "RCPT" : "",
		    sv->stages == (DELEGATE_RCPT | DELEGATE_EOM) ? " and " : "",
		    sv->stages & DELEGATE_EOM ? "end of data" : "",
		    sv->timeout, sv->connect_timeout,
		    sv->defer_on_error ? "defer (451 4.3.0)" : "dunno",
		    sv->check_trusted ? "; trusted clients too" : "");
	}
}

static int
service_connect(struct delegate_service *sv)
{
	return net_connect(sv->unix_socket ? sv->path : NULL, sv->host,
	    sv->port, net_now_ms() + (long long)sv->connect_timeout * 1000);
}

/* An idle connection young enough to use, or -1. */
static int
pool_take(struct delegate_service *sv)
{
	time_t now = time(NULL);
	int fd = -1;

	pthread_mutex_lock(&sv->mu);
	while (sv->nidle > 0 && fd == -1) {
		sv->nidle--;
		fd = sv->idle[sv->nidle];
		if (now - sv->idle_since[sv->nidle] > (time_t)sv->max_idle) {
			close(fd);
			fd = -1;
		}
	}
	pthread_mutex_unlock(&sv->mu);
	return fd;
}

/* The service closed one: the others were opened before, close them. */
static void
pool_drain(struct delegate_service *sv)
{
	pthread_mutex_lock(&sv->mu);
	while (sv->nidle > 0)
		close(sv->idle[--sv->nidle]);
	pthread_mutex_unlock(&sv->mu);
}

static void
pool_give(struct delegate_service *sv, int fd)
{
	pthread_mutex_lock(&sv->mu);
	if (sv->nidle < DELEGATE_POOL_MAX) {
		sv->idle[sv->nidle] = fd;
		sv->idle_since[sv->nidle] = time(NULL);
		sv->nidle++;
		fd = -1;
	}
	pthread_mutex_unlock(&sv->mu);
	if (fd != -1)
		close(fd);
}

/*
 * Reads one reply (lines up to an empty line) into buf.  0; -1 with *got
 * telling whether any byte came.  Bytes after the empty line are not
 * the protocol: the caller must not reuse the connection (*extra).
 */
static int
read_reply(int fd, char *buf, size_t len, long long deadline, size_t *got,
    int *extra)
{
	ssize_t r;
	int done;

	*got = 0;
	*extra = 0;
	for (;;) {
		if (*got >= len - 1) {
			errno = EMSGSIZE;
			return -1;
		}
		r = recv(fd, buf + *got, len - 1 - *got, 0);
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (r == -1) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    net_wait(fd, POLLIN, deadline) == 1)
				continue;
			return -1;
		}
		*got += (size_t)r;
		buf[*got] = '\0';
		if ((done = delegate_reply_end(buf, *got, extra)) == -1) {
			errno = EPROTO;
			return -1;
		}
		if (done)
			return 0;
	}
}

int
delegate_reply_end(char *buf, size_t got, int *extra)
{
	char *end = NULL;

	if (memchr(buf, '\0', got) != NULL)
		return -1;
	/* The reply ends at its first empty line. */
	if (buf[0] == '\n')
		end = buf;
	else if ((end = strstr(buf, "\n\n")) != NULL)
		end++;
	if (end == NULL)
		return 0;
	*extra = end[1] != '\0';
	end[1] = '\0';
	return 1;
}

int
delegate_reply_action(char *buf, char *act, size_t actlen)
{
	char *line, *next;
	int nattrs = 0;

	act[0] = '\0';
	for (line = buf; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (*line == '\0')
			break;
		if (++nattrs > REPLY_ATTRS_MAX || strchr(line, '=') == NULL)
			return -1;
		if (strncmp(line, "action=", 7) == 0)
			str_lcpy(act, line + 7, actlen);
	}
	return act[0] == '\0' ? -1 : 0;
}

/* One attribute; a value loses its control characters and is bounded. */
static void
attr(struct str *r, const char *name, const char *value)
{
	size_t i;

	(void)str_appends(r, name);
	(void)str_appendc(r, '=');
	for (i = 0; value != NULL && value[i] != '\0' && i < VALUE_MAX; i++)
		(void)str_appendc(r, (unsigned char)value[i] < 0x20 ||
		    value[i] == 0x7f ? '?' : value[i]);
	(void)str_appendc(r, '\n');
}

static void
attr_num(struct str *r, const char *name, long long n)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", n);
	attr(r, name, buf);
}

static void
build_request(struct str *r, struct policy_session *ps, const char *rcpt,
    int eom)
{
	struct policy_facts f;
	char instance[64];
	const char *empty = "";

	memset(&f, 0, sizeof(f));
	f.protocol = f.client_addr = f.client_name = f.reverse_name = empty;
	f.helo = f.sasl_method = f.sasl_username = f.tls_version = empty;
	f.tls_cipher = f.ccert_subject = f.ccert_issuer = empty;
	f.ccert_fingerprint = f.server_addr = f.rcpt = f.queue_id = empty;
	if (ps->describe != NULL)
		ps->describe(ps->describe_arg, &f);
	/* One value per transaction, as policy services cache on it. */
	snprintf(instance, sizeof(instance), "%s.%u", ps->id ? ps->id : "0",
	    ps->transaction);
	attr(r, "request", "smtpd_access_policy");
	attr(r, "protocol_state", eom ? "END-OF-MESSAGE" : "RCPT");
	attr(r, "protocol_name", f.protocol);
	attr(r, "client_address", f.client_addr);
	attr(r, "client_name", f.client_name[0] ? f.client_name : "unknown");
	attr(r, "reverse_client_name", f.reverse_name[0] ? f.reverse_name :
	    "unknown");
	attr(r, "helo_name", f.helo);
	attr(r, "sender", ps->sender);
	attr(r, "recipient", eom ? f.rcpt : rcpt);
	attr_num(r, "recipient_count", eom ? (long long)f.nrcpts : 0);
	attr(r, "queue_id", f.queue_id);
	attr(r, "instance", instance);
	attr_num(r, "size", f.size > 0 ? f.size : 0);
	attr(r, "etrn_domain", "");
	attr(r, "stress", "");
	attr(r, "sasl_method", f.sasl_method);
	attr(r, "sasl_username", f.sasl_username);
	attr(r, "sasl_sender", "");
	attr(r, "ccert_subject", f.ccert_subject);
	attr(r, "ccert_issuer", f.ccert_issuer);
	attr(r, "ccert_fingerprint", f.ccert_fingerprint);
	attr(r, "ccert_pubkey_fingerprint", "");
	attr(r, "encryption_protocol", f.tls_version);
	attr(r, "encryption_cipher", f.tls_cipher);
	attr_num(r, "encryption_keysize", f.tls_bits);
	attr(r, "server_address", f.server_addr);
	attr_num(r, "server_port", f.server_port);
	(void)str_appendc(r, '\n');
}

/*
 * Sends the request and reads the action into act.  0, or -1 (logged)
 * when the service could not be asked or did not answer the protocol.
 */
static int
ask(struct delegate_service *sv, const struct str *req, char *act,
    size_t actlen, const char *id)
{
	char buf[REPLY_MAX + 1];
	long long deadline;
	size_t got;
	int fd, pooled, tries, extra;

	act[0] = '\0';
	for (tries = 0; tries < 2; tries++) {
		pooled = 1;
		if ((fd = pool_take(sv)) == -1) {
			pooled = 0;
			if ((fd = service_connect(sv)) == -1) {
				log_err("%s policy service %s: cannot connect: "
				    "%s", id, sv->name, strerror(errno));
				return -1;
			}
		}
		deadline = net_now_ms() + (long long)sv->timeout * 1000;
		got = 0;	/* a failed send read nothing */
		if (net_send_all(fd, req->s, req->len, deadline) == 0 &&
		    read_reply(fd, buf, sizeof(buf), deadline, &got,
		    &extra) == 0)
			break;
		close(fd);
		fd = -1;
		/* A pooled connection the service had closed: once more. */
		if (pooled && got == 0 && errno != ETIMEDOUT) {
			pool_drain(sv);
			continue;
		}
		log_err("%s policy service %s: %s", id, sv->name,
		    errno == ETIMEDOUT ? "no reply in time" :
		    errno == EMSGSIZE ? "reply too long" : strerror(errno));
		return -1;
	}
	if (fd == -1)
		return -1;
	if (delegate_reply_action(buf, act, actlen) == -1) {
		close(fd);
		log_err("%s policy service %s: not a policy reply", id,
		    sv->name);
		return -1;
	}
	if (extra)
		close(fd);
	else
		pool_give(sv, fd);
	return 0;
}

/* Reply text from a service: printable, bounded, never empty. */
static void
clean_text(char *dst, size_t len, const char *src, const char *dflt)
{
	size_t i, n = 0;

	while (*src == ' ' || *src == '\t')
		src++;
	if (*src == '\0')
		src = dflt;
	for (i = 0; src[i] != '\0' && n + 1 < len && n < TEXT_MAX; i++)
		dst[n++] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    '?' : src[i];
	dst[n] = '\0';
}

/* "4xx text" or "5xx x.y.z text"; -1 if it is not a reply. */
static enum verdict_kind
numeric(const char *act, struct verdict *v)
{
	char text[TEXT_MAX + 1], status[REPLY_STATUS_LEN + 1];
	const char *p = act + 3;
	size_t n;
	int code;

	if (!isdigit((unsigned char)act[0]) ||
	    !isdigit((unsigned char)act[1]) ||
	    !isdigit((unsigned char)act[2]) || (act[3] != ' ' &&
	    act[3] != '\0') || (act[0] != '4' && act[0] != '5'))
		return (enum verdict_kind)-1;
	code = (act[0] - '0') * 100 + (act[1] - '0') * 10 + (act[2] - '0');
	while (*p == ' ')
		p++;
	/* An enhanced status code of the same class, when given. */
	snprintf(status, sizeof(status), "%c.7.1", act[0]);
	n = strspn(p, "0123456789.");
	if (n >= 5 && n < sizeof(status) && (p[n] == ' ' || p[n] == '\0')) {
		memcpy(status, p, n);
		status[n] = '\0';
		if (reply_status_fits(status, code))
			p += n;
		else
			snprintf(status, sizeof(status), "%c.7.1", act[0]);
	}
	clean_text(text, sizeof(text), p, code >= 500 ? "Access denied" :
	    "Try again later");
	return verdict_set(v, act[0] == '5' ? VERDICT_REJECT : VERDICT_DEFER,
	    code, status, "%s", text);
}

/*
 * Adds one header line (from PREPEND) to the transaction's list.  -1 only
 * when out of memory (a bad or surplus line is logged and left out).
 */
static int
prepend(struct policy_session *ps, const char *line, const char *svc)
{
	const char *colon = strchr(line, ':'), *p;
	size_t n = strlen(line);

	for (p = line; p < colon; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p > '~')
			break;
	if (colon == NULL || colon == line || p != colon) {
		log_info("%s policy service %s: PREPEND of a bad header "
		    "ignored", ps->id, svc);
		return 0;
	}
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' && *p != '\t')
			return 0;
	if (ps->prependlen + n + 2 > POLICY_PREPEND_MAX) {
		log_info("%s policy service %s: too many header lines to "
		    "add, one ignored", ps->id, svc);
		return 0;
	}
	if (ps->prepend == NULL &&
	    (ps->prepend = malloc(POLICY_PREPEND_MAX)) == NULL) {
		log_err("%s policy service %s: PREPEND: out of memory",
		    ps->id, svc);
		return -1;
	}
	memcpy(ps->prepend + ps->prependlen, line, n);
	memcpy(ps->prepend + ps->prependlen + n, "\r\n", 2);
	ps->prependlen += n + 2;
	return 0;
}

/*
 * What an action means here.  DEFER_IF_PERMIT and DEFER_IF_REJECT are
 * conditional on the rest of the checks; this module runs after the
 * relay and rule checks that could refuse, so DEFER_IF_PERMIT defers
 * and DEFER_IF_REJECT does nothing.  FILTER, REDIRECT and BCC change
 * where mail goes, which the queue decides by its routes: logged only.
 */
enum verdict_kind
delegate_apply(struct policy_session *ps, const char *svc, const char *act,
    struct verdict *v)
{
	char text[TEXT_MAX + 1];
	size_t wl = strcspn(act, " \t");
	const char *arg = act + wl;
	enum verdict_kind k;

#define IS(w)	(wl == sizeof(w) - 1 && strncasecmp(act, w, wl) == 0)
	if ((int)(k = numeric(act, v)) != -1)
		return k;
	if (IS("OK") || IS("DUNNO") || IS("DEFER_IF_REJECT")) {
		if (IS("OK"))
			return verdict_set(v, VERDICT_ACCEPT, 0, "", "ok");
		return VERDICT_CONTINUE;
	}
	if (IS("REJECT")) {
		clean_text(text, sizeof(text), arg, "Access denied");
		return verdict_set(v, VERDICT_REJECT, 554, "5.7.1", "%s", text);
	}
	if (IS("DEFER") || IS("DEFER_IF_PERMIT")) {
		clean_text(text, sizeof(text), arg, "Try again later");
		return verdict_set(v, VERDICT_DEFER, 450, "4.7.1", "%s", text);
	}
	if (IS("PREPEND")) {
		clean_text(text, sizeof(text), arg, "");
		if (prepend(ps, text, svc) == -1)
			return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
			    "Out of memory, try again later");
		return VERDICT_CONTINUE;
	}
	if (IS("HOLD")) {
		log_info("%s policy service %s: hold%s", ps->id, svc, arg);
		ps->hold = 1;
		return VERDICT_CONTINUE;
	}
	if (IS("DISCARD")) {
		log_info("%s policy service %s: discard%s", ps->id, svc,
		    arg);
		ps->discard = 1;
		return verdict_set(v, VERDICT_ACCEPT, 0, "", "discard");
	}
	if (IS("WARN") || IS("INFO") || IS("FILTER") || IS("REDIRECT") ||
	    IS("BCC")) {
		clean_text(text, sizeof(text), act, "");
		log_info("%s policy service %s: %s%s", ps->id, svc, text,
		    IS("WARN") || IS("INFO") ? "" : " (not done here)");
		return VERDICT_CONTINUE;
	}
#undef IS
	return (enum verdict_kind)-1;
}

static enum verdict_kind
run(struct policy_session *ps, const char *rcpt, int stage,
    struct verdict *v)
{
	const struct delegate_conf *c = ps->pol->delegate;
	struct delegate_service *sv;
	char act[REPLY_MAX + 1], shown[120];
	enum verdict_kind k;
	struct str req;
	int i;

	if (c == NULL)
		return VERDICT_CONTINUE;
	for (i = 0; i < c->nsvc; i++) {
		sv = c->svc[i];
		if (!(sv->stages & stage) ||
		    (ps->trusted && !sv->check_trusted))
			continue;
		str_init(&req, REQUEST_MAX);
		build_request(&req, ps, rcpt, stage == DELEGATE_EOM);
		if (ask(sv, &req, act, sizeof(act), ps->id ? ps->id : "-") ==
		    -1)
			k = (enum verdict_kind)-1;
		else if ((int)(k = delegate_apply(ps, sv->name, act, v)) ==
		    -1) {
			str_printable(shown, sizeof(shown), act, strlen(act));
			log_err("%s policy service %s: unknown action \"%s\"",
			    ps->id, sv->name, shown);
		}
		str_free(&req);
		if ((int)k == -1) {
			if (!sv->defer_on_error)
				continue;
			return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
			    "Policy service unavailable, try again later");
		}
		if (k != VERDICT_CONTINUE)
			return k;
	}
	return VERDICT_CONTINUE;
}

enum verdict_kind
delegate_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	return run(ps, rcpt, DELEGATE_RCPT, v);
}

enum verdict_kind
delegate_data_end(struct policy_session *ps, struct verdict *v)
{
	return run(ps, "", DELEGATE_EOM, v);
}

void
delegate_tags(struct policy_session *ps, struct str *tags)
{
	if (ps->prependlen > ps->prepended &&
	    str_append(tags, ps->prepend + ps->prepended, ps->prependlen -
	    ps->prepended) == 0)
		ps->prepended = ps->prependlen;
}

const char *
policy_late_headers(struct policy_session *ps, size_t *len)
{
	const char *p = ps->prepend != NULL ? ps->prepend + ps->prepended : "";

	*len = ps->prependlen - ps->prepended;
	ps->prepended = ps->prependlen;
	return p;
}
