/*
 * The proxy { } and metrics { } sections of smtpd.conf.  See frontconf.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/net.h"
#include "frontconf.h"

static const char *const proxy_keys[] = {
	"listen", "tls_listen", "trusted", "timeout", NULL
};
static const char *const metrics_keys[] = { "listen", NULL };

static int
fail(char *err, size_t errlen, const char *file, const config_setting_t *s,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: %s", file,
	    s != NULL ? config_setting_source_line(s) : 0, msg);
	return -1;
}

static int
known_keys(const config_setting_t *g, const char *const *known,
    const char *file, char *err, size_t errlen)
{
	int i, j;

	for (i = 0; i < config_setting_length(g); i++) {
		config_setting_t *c = config_setting_get_elem(g, (unsigned)i);

		for (j = 0; known[j] != NULL; j++)
			if (strcmp(known[j], config_setting_name(c)) == 0)
				break;
		if (known[j] == NULL)
			return fail(err, errlen, file, c,
			    "unknown setting \"%s\"", config_setting_name(c));
	}
	return 0;
}

/* The strings of a list (or a lone string), in order, into out[]. */
static int
strings(const config_setting_t *s, const char *name, const char **out,
    int max, int *n, const char *file, char *err, size_t errlen)
{
	int i, len;

	*n = 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		out[(*n)++] = config_setting_get_string(s);
		return 0;
	}
	if (!config_setting_is_aggregate(s))
		return fail(err, errlen, file, s,
		    "%s must be a string or a list of strings", name);
	len = config_setting_length(s);
	if (len > max)
		return fail(err, errlen, file, s, "more than %d entries in %s",
		    max, name);
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail(err, errlen, file, e,
			    "%s entries must be strings", name);
		out[(*n)++] = config_setting_get_string(e);
	}
	return 0;
}

static int
listeners(const config_setting_t *g, const char *key, const char *name,
    char **dst, int *ndst, const char *file, char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v[FRONT_LISTEN_MAX];
	char host[256], port[32];
	int i, n;

	if (s == NULL)
		return 0;
	if (strings(s, name, v, FRONT_LISTEN_MAX, &n, file, err,
	    errlen) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (net_split_hostport(v[i], host, sizeof(host), port,
		    sizeof(port)) == -1)
			return fail(err, errlen, file, s, "bad listen address "
			    "\"%.100s\" in %s (want addr:port, [v6]:port or "
			    ":port)", v[i], name);
		if ((dst[*ndst] = strdup(v[i])) == NULL)
			return fail(err, errlen, file, s, "out of memory");
		(*ndst)++;
	}
	return 0;
}

static int
load_proxy(struct front_conf *fc, const config_setting_t *g,
    const char *file, char *err, size_t errlen)
{
	const config_setting_t *s;
	const char *v[FRONT_TRUSTED_MAX], *why;
	int i, n;
	long long t;

	if (!config_setting_is_group(g))
		return fail(err, errlen, file, g,
		    "proxy must be a group { ... }");
	if (known_keys(g, proxy_keys, file, err, errlen) == -1 ||
	    listeners(g, "listen", "proxy.listen", fc->proxy_listen,
	    &fc->nproxy_listen, file, err, errlen) == -1 ||
	    listeners(g, "tls_listen", "proxy.tls_listen",
	    fc->proxy_tls_listen, &fc->nproxy_tls_listen, file, err,
	    errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "trusted")) != NULL) {
		if (strings(s, "proxy.trusted", v, FRONT_TRUSTED_MAX, &n, file,
		    err, errlen) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (cidr_parse(v[i], &fc->proxy_trusted[i], &why) == -1)
				return fail(err, errlen, file, s,
				    "proxy.trusted: \"%.100s\": %s", v[i], why);
		fc->nproxy_trusted = (size_t)n;
	}
	if ((s = config_setting_get_member(g, "timeout")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_INT &&
		    config_setting_type(s) != CONFIG_TYPE_INT64)
			return fail(err, errlen, file, s,
			    "proxy.timeout must be a whole number");
		t = config_setting_get_int64(s);
		if (t < 1 || t > 60)
			return fail(err, errlen, file, s,
			    "proxy.timeout must be between 1 and 60");
		fc->proxy_timeout = (unsigned int)t;
	}
	if (fc->nproxy_listen + fc->nproxy_tls_listen > 0 &&
	    fc->nproxy_trusted == 0)
		return fail(err, errlen, file, g, "proxy.listen needs "
		    "proxy.trusted: the balancers' addresses");
	return 0;
}

static int
load_metrics(struct front_conf *fc, const config_setting_t *g,
    const char *file, char *err, size_t errlen)
{
	const config_setting_t *s;
	const char *v;
	char host[256], port[32];

	if (!config_setting_is_group(g))
		return fail(err, errlen, file, g,
		    "metrics must be a group { ... }");
	if (known_keys(g, metrics_keys, file, err, errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "listen")) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(err, errlen, file, s,
		    "metrics.listen must be a string");
	v = config_setting_get_string(s);
	if (net_split_hostport(v, host, sizeof(host), port,
	    sizeof(port)) == -1 || strlen(v) >= sizeof(fc->metrics_listen))
		return fail(err, errlen, file, s, "bad metrics.listen address "
		    "\"%.100s\" (want addr:port or [v6]:port)", v);
	memcpy(fc->metrics_listen, v, strlen(v) + 1);
	return 0;
}

int
frontconf_load(struct front_conf *fc, const config_setting_t *root,
    const char *file, char *err, size_t errlen)
{
	const config_setting_t *g;

	fc->proxy_timeout = DEF_PROXY_TIMEOUT;
	if (root == NULL)
		return 0;
	if ((g = config_setting_get_member(root, "proxy")) != NULL &&
	    load_proxy(fc, g, file, err, errlen) == -1)
		return -1;
	if ((g = config_setting_get_member(root, "metrics")) != NULL &&
	    load_metrics(fc, g, file, err, errlen) == -1)
		return -1;
	return 0;
}

void
frontconf_free(struct front_conf *fc)
{
	int i;

	for (i = 0; i < fc->nproxy_listen; i++)
		free(fc->proxy_listen[i]);
	for (i = 0; i < fc->nproxy_tls_listen; i++)
		free(fc->proxy_tls_listen[i]);
	fc->nproxy_listen = fc->nproxy_tls_listen = 0;
}

void
frontconf_print(const struct front_conf *fc, FILE *f)
{
	char net[64];
	size_t j;

	/* The proxy listeners are printed with the others (listenconf.c). */
	for (j = 0; j < fc->nproxy_trusted; j++) {
		cidr_format(&fc->proxy_trusted[j], net, sizeof(net));
		fprintf(f, "PROXY headers taken from: %s\n", net);
	}
	if (fc->nproxy_trusted > 0)
		fprintf(f, "PROXY header timeout: %u s\n", fc->proxy_timeout);
	if (fc->metrics_listen[0] != '\0')
		fprintf(f, "metrics: http://%s/metrics\n", fc->metrics_listen);
}
