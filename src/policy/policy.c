#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "lib/addr.h"
#include "lib/net.h"
#include "lib/str.h"
#include "policy.h"

/* Keys the file may hold at the top level and in limits { }. */
static const char *const top_keys[] = {
	"hostname", "defaultdomain", "listen", "spool", "reverse_lookup",
	"limits", NULL
};
static const char *const limit_keys[] = {
	"message_size", "recipients", "sessions", "sessions_per_ip", "errors",
	"command_timeout", "data_timeout", "shutdown_timeout", "line_length",
	NULL
};

static pthread_mutex_t	 current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct policy	*current;

static void	policy_defaults(struct policy *);
static int	default_hostname(char *, size_t);
static int	check_keys(const config_setting_t *, const char *const *,
		    const char *, char *, size_t);
static int	get_uint(const config_setting_t *, const char *, unsigned int,
		    unsigned int, unsigned int *, const char *, char *, size_t);
static int	get_string(const config_setting_t *, const char *,
		    const char **, const char *, char *, size_t);
static int	get_bool(const config_setting_t *, const char *, int *,
		    const char *, char *, size_t);
static int	seterr(char *, size_t, const char *, const config_setting_t *,
		    const char *, ...) __attribute__((format(printf, 5, 6)));
static void	policy_free(struct policy *);

static void
policy_defaults(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->refs = 1;
	p->reverse_lookup = 1;
	p->message_size = DEF_MESSAGE_SIZE;
	p->recipients = DEF_RECIPIENTS;
	p->sessions = DEF_SESSIONS;
	p->sessions_per_ip = DEF_SESSIONS_PER_IP;
	p->errors = DEF_ERRORS;
	p->command_timeout = DEF_COMMAND_TIMEOUT;
	p->data_timeout = DEF_DATA_TIMEOUT;
	p->shutdown_timeout = DEF_SHUTDOWN_TIMEOUT;
	p->line_length = DEF_LINE_LENGTH;
	str_lcpy(p->spool, "/var/spool/smtpd", sizeof(p->spool));
}

/* The host's fully-qualified name; the short name if that is all there is. */
static int
default_hostname(char *buf, size_t len)
{
	struct addrinfo hints, *res = NULL;
	char host[256];

	if (gethostname(host, sizeof(host)) == -1)
		return -1;
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
	return 0;
}

static int
seterr(char *err, size_t errlen, const char *file,
    const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s != NULL)
		snprintf(err, errlen, "%s:%u: %s", file,
		    config_setting_source_line(s), msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return -1;
}

static int
check_keys(const config_setting_t *group, const char *const *known,
    const char *file, char *err, size_t errlen)
{
	int i, j, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(c);

		for (j = 0; known[j] != NULL; j++)
			if (strcmp(known[j], name) == 0)
				break;
		if (known[j] == NULL)
			return seterr(err, errlen, file, c,
			    "unknown setting \"%s\"", name);
	}
	return 0;
}

static int
get_uint(const config_setting_t *g, const char *name, unsigned int min,
    unsigned int max, unsigned int *out, const char *file, char *err,
    size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return seterr(err, errlen, file, s, "%s must be a whole number",
		    name);
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max)
		return seterr(err, errlen, file, s,
		    "%s must be between %u and %u", name, min, max);
	*out = (unsigned int)v;
	return 0;
}

static int
get_string(const config_setting_t *g, const char *name, const char **out,
    const char *file, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return seterr(err, errlen, file, s, "%s must be a string", name);
	*out = config_setting_get_string(s);
	return 0;
}

static int
get_bool(const config_setting_t *g, const char *name, int *out,
    const char *file, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return seterr(err, errlen, file, s,
		    "%s must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

static int
add_listen(struct policy *p, const char *addr, const char *file,
    const config_setting_t *s, char *err, size_t errlen)
{
	char host[256], port[32];

	if (p->nlisten >= POLICY_LISTEN_MAX)
		return seterr(err, errlen, file, s,
		    "more than %d listen addresses", POLICY_LISTEN_MAX);
	if (net_split_hostport(addr, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return seterr(err, errlen, file, s,
		    "bad listen address \"%.100s\" (want addr:port, [v6]:port "
		    "or :port)", addr);
	if ((p->listen[p->nlisten] = strdup(addr)) == NULL)
		return seterr(err, errlen, file, s, "out of memory");
	p->nlisten++;
	return 0;
}

struct policy *
policy_load(const char *path, int missing_ok,
    const struct policy_overrides *ov, char *err, size_t errlen)
{
	struct policy *p;
	config_t cf;
	config_setting_t *root, *g, *s;
	const char *v;
	unsigned int u;
	int have_file = 1, i;

	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	policy_defaults(p);
	str_lcpy(p->conffile, path, sizeof(p->conffile));
	config_init(&cf);

	if (access(path, F_OK) == -1 && errno == ENOENT && missing_ok)
		have_file = 0;
	else if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno ? errno : EIO));
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cf) ? config_error_file(&cf) : path,
			    config_error_line(&cf), config_error_text(&cf));
		goto fail;
	}

	if (have_file) {
		root = config_root_setting(&cf);
		if (check_keys(root, top_keys, path, err, errlen) == -1)
			goto fail;
		v = NULL;
		if (get_string(root, "defaultdomain", &v, path, err, errlen) == -1 ||
		    get_string(root, "hostname", &v, path, err, errlen) == -1)
			goto fail;
		if (v != NULL) {
			s = config_setting_get_member(root, "hostname");
			if (s == NULL)
				s = config_setting_get_member(root, "defaultdomain");
			if (!addr_valid_domain(v, strlen(v), 0)) {
				seterr(err, errlen, path, s,
				    "hostname \"%.100s\" is not a valid domain", v);
				goto fail;
			}
			str_lcpy(p->hostname, v, sizeof(p->hostname));
		}
		v = NULL;
		if (get_string(root, "spool", &v, path, err, errlen) == -1)
			goto fail;
		if (v != NULL) {
			if (*v == '\0' ||
			    str_lcpy(p->spool, v, sizeof(p->spool)) >= sizeof(p->spool)) {
				seterr(err, errlen, path,
				    config_setting_get_member(root, "spool"),
				    "spool must be a directory path");
				goto fail;
			}
		}
		if (get_bool(root, "reverse_lookup", &p->reverse_lookup, path,
		    err, errlen) == -1)
			goto fail;
		if ((s = config_setting_get_member(root, "listen")) != NULL) {
			if (config_setting_type(s) == CONFIG_TYPE_STRING) {
				if (add_listen(p, config_setting_get_string(s),
				    path, s, err, errlen) == -1)
					goto fail;
			} else if (config_setting_is_aggregate(s)) {
				for (i = 0; i < config_setting_length(s); i++) {
					config_setting_t *e =
					    config_setting_get_elem(s, (unsigned)i);

					if (config_setting_type(e) != CONFIG_TYPE_STRING) {
						seterr(err, errlen, path, e,
						    "listen entries must be strings");
						goto fail;
					}
					if (add_listen(p, config_setting_get_string(e),
					    path, e, err, errlen) == -1)
						goto fail;
				}
			} else {
				seterr(err, errlen, path, s,
				    "listen must be a string or a list of strings");
				goto fail;
			}
		}
		if ((g = config_setting_get_member(root, "limits")) != NULL) {
			if (!config_setting_is_group(g)) {
				seterr(err, errlen, path, g,
				    "limits must be a group { ... }");
				goto fail;
			}
			if (check_keys(g, limit_keys, path, err, errlen) == -1)
				goto fail;
			u = (unsigned int)(p->message_size > 0xffffffffu ?
			    0xffffffffu : p->message_size);
			if (get_uint(g, "message_size", 0, 0x7fffffffu, &u, path,
			    err, errlen) == -1)
				goto fail;
			p->message_size = u;
			if (get_uint(g, "recipients", MIN_RECIPIENTS, 100000,
			    &p->recipients, path, err, errlen) == -1 ||
			    get_uint(g, "sessions", 1, 100000, &p->sessions,
			    path, err, errlen) == -1 ||
			    get_uint(g, "sessions_per_ip", 1, 100000,
			    &p->sessions_per_ip, path, err, errlen) == -1 ||
			    get_uint(g, "errors", 1, 1000, &p->errors, path, err,
			    errlen) == -1 ||
			    get_uint(g, "command_timeout", 1, 3600,
			    &p->command_timeout, path, err, errlen) == -1 ||
			    get_uint(g, "data_timeout", 1, 3600,
			    &p->data_timeout, path, err, errlen) == -1 ||
			    get_uint(g, "shutdown_timeout", 0, 3600,
			    &p->shutdown_timeout, path, err, errlen) == -1)
				goto fail;
			u = (unsigned int)p->line_length;
			if (get_uint(g, "line_length", 0, 1000000, &u, path, err,
			    errlen) == -1)
				goto fail;
			if (u != 0 && u < 998) {
				seterr(err, errlen, path,
				    config_setting_get_member(g, "line_length"),
				    "line_length must be 0 (any) or at least 998 "
				    "(RFC 5322 2.1.1)");
				goto fail;
			}
			p->line_length = u;
		}
	}

	if (ov != NULL && ov->hostname != NULL) {
		if (!addr_valid_domain(ov->hostname, strlen(ov->hostname), 0)) {
			snprintf(err, errlen, "-h %.100s: not a valid domain",
			    ov->hostname);
			goto fail;
		}
		str_lcpy(p->hostname, ov->hostname, sizeof(p->hostname));
	}
	if (ov != NULL && ov->nlisten > 0) {
		for (i = 0; i < p->nlisten; i++)
			free(p->listen[i]);
		p->nlisten = 0;
		for (i = 0; i < ov->nlisten; i++)
			if (add_listen(p, ov->listen[i], "-l", NULL, err,
			    errlen) == -1)
				goto fail;
	}
	if (p->hostname[0] == '\0' &&
	    default_hostname(p->hostname, sizeof(p->hostname)) == -1)
		str_lcpy(p->hostname, "localhost", sizeof(p->hostname));
	config_destroy(&cf);
	return p;
fail:
	config_destroy(&cf);
	policy_free(p);
	return NULL;
}

void
policy_print(const struct policy *p, FILE *f)
{
	int i;

	fprintf(f, "config file: %s\n", p->conffile);
	fprintf(f, "hostname: %s\n", p->hostname);
	if (p->nlisten == 0)
		fprintf(f, "listen: none (one session on standard input and output)\n");
	for (i = 0; i < p->nlisten; i++)
		fprintf(f, "listen: %s\n", p->listen[i]);
	fprintf(f, "spool: %s\n", p->spool);
	fprintf(f, "reverse DNS lookups of clients: %s\n",
	    p->reverse_lookup ? "on" : "off");
	if (p->message_size)
		fprintf(f, "largest message: %zu bytes\n", p->message_size);
	else
		fprintf(f, "largest message: no limit\n");
	fprintf(f, "recipients per message: %u\n", p->recipients);
	fprintf(f, "sessions: %u at once, %u per client address\n",
	    p->sessions, p->sessions_per_ip);
	fprintf(f, "errors before disconnect: %u\n", p->errors);
	fprintf(f, "timeouts: %u s per command, %u s for message data, "
	    "%u s to finish sessions at shutdown\n", p->command_timeout,
	    p->data_timeout, p->shutdown_timeout);
	if (p->line_length)
		fprintf(f, "longest text line: %zu octets\n", p->line_length);
	else
		fprintf(f, "longest text line: any length accepted\n");
}

static void
policy_free(struct policy *p)
{
	int i;

	for (i = 0; i < p->nlisten; i++)
		free(p->listen[i]);
	free(p);
}

struct policy *
policy_ref(struct policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
policy_unref(struct policy **pp)
{
	struct policy *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		policy_free(p);
}

struct policy *
policy_current(void)
{
	struct policy *p;

	pthread_mutex_lock(&current_mu);
	p = current ? policy_ref(current) : NULL;
	pthread_mutex_unlock(&current_mu);
	return p;
}

void
policy_install(struct policy *p)
{
	struct policy *old;

	pthread_mutex_lock(&current_mu);
	old = current;
	current = p;
	pthread_mutex_unlock(&current_mu);
	policy_unref(&old);
}
