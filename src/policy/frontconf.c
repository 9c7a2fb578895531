/*
 * The proxy { } and metrics { } sections of smtpd.conf.  See frontconf.h.
 */
#include "config.h"

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
listeners(const config_setting_t *g, const char *key, const char *name,
    char **dst, int *ndst, const struct conf_ctx *cx)
{
	char host[256], port[32], **v;
	size_t i, n;

	if (conf_empty_list(g, key))
		return 0;
	if (conf_get_strings(cx, g, key, &v, &n, FRONT_LISTEN_MAX) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (net_split_hostport(v[i], host, sizeof(host), port,
		    sizeof(port)) == -1) {
			conf_err(cx, conf_entry(g, key, i), "bad listen address "
			    "\"%.100s\" in %s (want addr:port, [v6]:port or "
			    ":port)", v[i], name);
			conf_free_strings(&v, n);
			return -1;
		}
		/* The array keeps its own copies: take this one over. */
		dst[(*ndst)++] = v[i];
		v[i] = NULL;
	}
	conf_free_strings(&v, n);
	return 0;
}

static int
load_proxy(struct front_conf *fc, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	const char *why;
	char **v;
	size_t i, n;

	if (!config_setting_is_group(g))
		return conf_err(cx, g,
		    "proxy must be a group { ... }");
	if (conf_check_keys(cx, g, proxy_keys, NULL) == -1 ||
	    listeners(g, "listen", "proxy.listen", fc->proxy_listen,
	    &fc->nproxy_listen, cx) == -1 ||
	    listeners(g, "tls_listen", "proxy.tls_listen",
	    fc->proxy_tls_listen, &fc->nproxy_tls_listen, cx) == -1)
		return -1;
	v = NULL;
	n = 0;
	if (!conf_empty_list(g, "trusted") && conf_get_strings(cx, g,
	    "trusted", &v, &n, FRONT_TRUSTED_MAX) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (cidr_parse(v[i], &fc->proxy_trusted[i], &why) == -1) {
			conf_err(cx, conf_entry(g, "trusted", i),
			    "proxy.trusted: \"%.100s\": %s", v[i], why);
			conf_free_strings(&v, n);
			return -1;
		}
	conf_free_strings(&v, n);
	fc->nproxy_trusted = n;
	if (conf_get_duration(cx, g, "timeout", 1, 60,
	    &fc->proxy_timeout) == -1)
		return -1;
	if (fc->nproxy_listen + fc->nproxy_tls_listen > 0 &&
	    fc->nproxy_trusted == 0)
		return conf_err(cx, g, "proxy.listen needs "
		    "proxy.trusted: the balancers' addresses");
	return 0;
}

static int
load_metrics(struct front_conf *fc, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	const config_setting_t *s;
	const char *v;
	char host[256], port[32];

	if (!config_setting_is_group(g))
		return conf_err(cx, g,
		    "metrics must be a group { ... }");
	if (conf_check_keys(cx, g, metrics_keys, NULL) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "listen")) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(cx, s,
		    "metrics.listen must be a string");
	v = config_setting_get_string(s);
	if (net_split_hostport(v, host, sizeof(host), port,
	    sizeof(port)) == -1 || strlen(v) >= sizeof(fc->metrics_listen))
		return conf_err(cx, s, "bad metrics.listen address "
		    "\"%.100s\" (want addr:port or [v6]:port)", v);
	memcpy(fc->metrics_listen, v, strlen(v) + 1);
	return 0;
}

int
frontconf_load(struct front_conf *fc, const config_setting_t *root,
    const struct conf_ctx *cx)
{
	const config_setting_t *g;

	fc->proxy_timeout = DEF_PROXY_TIMEOUT;
	if (root == NULL)
		return 0;
	if ((g = config_setting_get_member(root, "proxy")) != NULL &&
	    load_proxy(fc, g, cx) == -1)
		return -1;
	if ((g = config_setting_get_member(root, "metrics")) != NULL &&
	    load_metrics(fc, g, cx) == -1)
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
