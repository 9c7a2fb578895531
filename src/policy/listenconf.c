/*
 * The listener table: listen (strings and groups), tls.listen,
 * proxy.listen, proxy.tls_listen and -l in one list.  See listenconf.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lib/net.h"
#include "lib/str.h"
#include "policy.h"

static const char *const listener_keys[] = {
	"address", "name", "tls", "auth", "proxy", "milters", NULL
};
static const char *const listener_auth_keys[] = {
	"required", "cleartext", NULL
};

static int
line_of(const struct conf_ctx *cx, const config_setting_t *s)
{
	return (int)conf_line(cx->file, s);
}

int
listenconf_add(struct listen_table *t, const char *address,
    enum listen_tls tls, int proxy, const char *origin,
    const struct conf_ctx *cx, int line)
{
	struct listen_conf *l;
	char host[256], port[32];

	if (t->n >= LISTEN_TABLE_MAX)
		return conf_err_at(cx, line, "more than %d listeners",
		    LISTEN_TABLE_MAX);
	if (net_split_hostport(address, host, sizeof(host), port,
	    sizeof(port)) == -1)
		return conf_err_at(cx, line, "bad listen address "
		    "\"%.100s\" in %s (want addr:port, [v6]:port or :port)",
		    address, origin);
	l = &t->l[t->n];
	memset(l, 0, sizeof(*l));
	if (str_lcpy(l->address, address, sizeof(l->address)) >=
	    sizeof(l->address))
		return conf_err_at(cx, line, "listen address too long");
	l->tls = tls;
	l->tls_explicit = tls != LTLS_STARTTLS;
	l->auth = LAUTH_DEFAULT;
	l->cleartext = -1;
	l->proxy = proxy;
	l->origin = origin;
	l->line = line;
	t->n++;
	return 0;
}

/* auth = "required" | "optional" | "off", or { required; cleartext; } */
static int
listener_auth(struct listen_conf *l, const config_setting_t *a,
    const struct conf_ctx *cx)
{
	const char *v;
	int required = -1;

	if (config_setting_type(a) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(a);
		if (strcmp(v, "required") == 0)
			l->auth = LAUTH_REQUIRED;
		else if (strcmp(v, "optional") == 0)
			l->auth = LAUTH_OPTIONAL;
		else if (strcmp(v, "off") == 0)
			l->auth = LAUTH_OFF;
		else
			return conf_err(cx, a, "listener "
			    "auth must be \"required\", \"optional\", \"off\" "
			    "or { required = ...; cleartext = ...; }");
		return 0;
	}
	if (!config_setting_is_group(a))
		return conf_err(cx, a, "listener auth must "
		    "be a string or a group { required; cleartext; }");
	if (conf_check_keys(cx, a, listener_auth_keys,
	    "a listener's auth") == -1 ||
	    conf_get_bool(cx, a, "required", &required) == -1 ||
	    conf_get_bool(cx, a, "cleartext", &l->cleartext) == -1)
		return -1;
	if (required != -1)
		l->auth = required ? LAUTH_REQUIRED : LAUTH_OPTIONAL;
	return 0;
}

/*
 * milters = [ "dkim", "rspamd" ] or [] for none: the names are kept and
 * become indexes once the milters are read (listenconf_milters()).
 */
static int
listener_milters(struct listen_conf *l, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	char **v;
	size_t i, j, n;
	int line;

	if (config_setting_get_member(g, "milters") == NULL)
		return 0;
	l->milters_set = 1;
	if (conf_empty_list(g, "milters"))
		return 0;
	if (conf_get_strings(cx, g, "milters", &v, &n, MILTERS_MAX) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		line = line_of(cx, conf_entry(g, "milters", i));
		for (j = 0; j < i; j++)
			if (strcmp(v[j], v[i]) == 0)
				break;
		if (j < i || str_lcpy(l->milter_name[i], v[i],
		    sizeof(l->milter_name[i])) >= sizeof(l->milter_name[i])) {
			conf_err_at(cx, line, "listener %s: %s milter "
			    "\"%.40s\" in milters", l->address, j < i ?
			    "a second" : "no", v[i]);
			conf_free_strings(&v, n);
			return -1;
		}
		l->milter_line[i] = line;
	}
	l->nmilters = (int)n;
	conf_free_strings(&v, n);
	return 0;
}

/* One { address = ...; ... } entry of listen. */
static int
listener_group(struct listen_table *t, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	const config_setting_t *e;
	struct listen_conf *l;
	const char *v;

	if (conf_check_keys(cx, g, listener_keys, "a listener") == -1)
		return -1;
	if ((e = config_setting_get_member(g, "address")) == NULL ||
	    config_setting_type(e) != CONFIG_TYPE_STRING)
		return conf_err(cx, e != NULL ? e : g,
		    "a listener needs address = \"addr:port\"");
	if (listenconf_add(t, config_setting_get_string(e), LTLS_STARTTLS, 0,
	    "listen", cx, line_of(cx, g)) == -1)
		return -1;
	l = &t->l[t->n - 1];
	if ((e = config_setting_get_member(g, "name")) != NULL) {
		if (config_setting_type(e) != CONFIG_TYPE_STRING ||
		    (v = config_setting_get_string(e))[0] == '\0' ||
		    strlen(v) > LISTEN_NAME_MAX || strchr(v, ':') != NULL)
			return conf_err(cx, e, "a "
			    "listener's name is a string of 1 to %d "
			    "characters without ':'", LISTEN_NAME_MAX);
		str_lcpy(l->name, v, sizeof(l->name));
	}
	if ((e = config_setting_get_member(g, "tls")) != NULL) {
		v = config_setting_type(e) == CONFIG_TYPE_STRING ?
		    config_setting_get_string(e) : "";
		if (strcmp(v, "starttls") == 0)
			l->tls = LTLS_STARTTLS;
		else if (strcmp(v, "implicit") == 0)
			l->tls = LTLS_IMPLICIT;
		else if (strcmp(v, "none") == 0)
			l->tls = LTLS_NONE;
		else
			return conf_err(cx, e, "a "
			    "listener's tls must be \"starttls\", "
			    "\"implicit\" or \"none\"");
		l->tls_explicit = l->tls != LTLS_NONE;
	}
	if ((e = config_setting_get_member(g, "auth")) != NULL &&
	    listener_auth(l, e, cx) == -1)
		return -1;
	if (listener_milters(l, g, cx) == -1)
		return -1;
	return conf_get_bool(cx, g, "proxy", &l->proxy);
}

int
listenconf_load(struct listen_table *t, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	const config_setting_t *e;
	int i;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return listenconf_add(t, config_setting_get_string(s),
		    LTLS_STARTTLS, 0, "listen", cx, line_of(cx, s));
	/*
	 * A libconfig array holds scalars of one type only; a list ( ... )
	 * may mix strings and groups.
	 */
	if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
		return conf_err(cx, s, "listen must be a "
		    "string, a list of strings [ ... ], or a list ( ... ) of "
		    "strings and groups { address = ...; }");
	if (config_setting_length(s) > 16)
		return conf_err(cx, s, "more than %d "
		    "listen addresses", 16);
	for (i = 0; i < config_setting_length(s); i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			if (listenconf_add(t, config_setting_get_string(e),
			    LTLS_STARTTLS, 0, "listen", cx, line_of(cx,
			    e)) == -1)
				return -1;
		} else if (config_setting_is_group(e)) {
			if (listener_group(t, e, cx) == -1)
				return -1;
		} else
			return conf_err(cx, e, "listen "
			    "entries must be strings or groups "
			    "{ address = ...; }");
	}
	return 0;
}

int
listenconf_check(const struct listen_table *t,
    const struct listen_defaults *d, const struct conf_ctx *cx)
{
	const struct listen_conf *l;
	int i, j;

	for (i = 0; i < t->n; i++) {
		l = &t->l[i];
		if (l->tls_explicit && !d->have_certificate)
			return conf_err_at(cx, l->line, "listener %s: "
			    "tls = \"%s\" needs tls.certificate and tls.key",
			    l->address, l->tls == LTLS_IMPLICIT ? "implicit" :
			    "starttls");
		if (l->auth == LAUTH_REQUIRED && !d->have_secrets)
			return conf_err_at(cx, l->line, "listener %s: "
			    "AUTH required needs auth.secrets", l->address);
		if (l->proxy && !d->have_trusted)
			return conf_err_at(cx, l->line, "listener %s: "
			    "proxy needs proxy.trusted (the balancers' "
			    "addresses)", l->address);
		for (j = 0; j < i && l->name[0] != '\0'; j++)
			if (strcmp(t->l[j].name, l->name) == 0)
				return conf_err_at(cx, l->line, "two "
				    "listeners named \"%s\"", l->name);
	}
	return 0;
}

int
listenconf_milters(struct listen_table *t, const struct milter_conf *c,
    const struct conf_ctx *cx)
{
	struct listen_conf *l;
	int i, j;

	for (i = 0; i < t->n; i++) {
		l = &t->l[i];
		for (j = 0; j < l->nmilters; j++)
			if ((l->milter[j] = milterconf_find(c,
			    l->milter_name[j])) == -1)
				return conf_err_at(cx, l->milter_line[j],
				    "listener %s: no milter named \"%s\" "
				    "in milters", l->address,
				    l->milter_name[j]);
	}
	return 0;
}

int
listenconf_auth_required(const struct listen_conf *l,
    const struct listen_defaults *d)
{
	if (l->auth == LAUTH_DEFAULT)
		return d->auth_required;
	return l->auth == LAUTH_REQUIRED;
}

int
listenconf_auth_cleartext(const struct listen_conf *l,
    const struct listen_defaults *d)
{
	return l->cleartext == -1 ? d->auth_cleartext : l->cleartext;
}

/* "; milters: dkim, rspamd", "; milters: none", or all of them. */
static void
print_milters(const struct listen_conf *l, const struct listen_defaults *d,
    FILE *f)
{
	int i;

	if (!l->milters_set) {
		if (d->nmilters > 0)
			fprintf(f, "; milters: all %d of milters", d->nmilters);
		return;
	}
	fprintf(f, "; milters: %s", l->nmilters == 0 ? "none" : "");
	for (i = 0; i < l->nmilters; i++)
		fprintf(f, "%s%s", i > 0 ? ", " : "", l->milter_name[i]);
}

void
listenconf_print(const struct listen_table *t,
    const struct listen_defaults *d, FILE *f)
{
	const struct listen_conf *l;
	const char *tls, *auth;
	int i;

	if (t->n == 0)
		fprintf(f, "listen: none (one session on standard input and "
		    "output, unless systemd passes sockets)\n");
	for (i = 0; i < t->n; i++) {
		l = &t->l[i];
		if (l->tls == LTLS_IMPLICIT)
			tls = "implicit TLS";
		else if (l->tls == LTLS_NONE)
			tls = "no TLS";
		else
			tls = d->have_certificate ? "STARTTLS" :
			    "no TLS (no certificate)";
		if (!d->have_secrets)
			auth = "AUTH off (no secrets)";
		else if (l->auth == LAUTH_OFF)
			auth = "AUTH off";
		else if (listenconf_auth_required(l, d))
			auth = "AUTH required";
		else
			auth = "AUTH optional";
		fprintf(f, "listen: %s%s%s%s (%s): %s; %s", l->address,
		    l->name[0] ? " name \"" : "", l->name,
		    l->name[0] ? "\"" : "", l->origin, tls, auth);
		if (d->have_secrets && l->auth != LAUTH_OFF)
			fprintf(f, ", %s", l->tls == LTLS_IMPLICIT ?
			    "over TLS" : listenconf_auth_cleartext(l, d) ?
			    "cleartext allowed" : l->tls == LTLS_NONE ?
			    "never (no TLS here, cleartext refused)" :
			    "after STARTTLS only");
		fprintf(f, "%s", l->proxy ?
		    "; PROXY header first, from proxy.trusted" : "");
		print_milters(l, d, f);
		fputc('\n', f);
	}
}

int
listenconf_equal(const struct listen_table *a, const struct listen_table *b)
{
	const struct listen_conf *x, *y;
	int i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		x = &a->l[i];
		y = &b->l[i];
		if (strcmp(x->address, y->address) != 0 ||
		    strcmp(x->name, y->name) != 0 || x->tls != y->tls ||
		    x->auth != y->auth || x->cleartext != y->cleartext ||
		    x->proxy != y->proxy)
			return 0;
	}
	return 1;
}

void
policy_listen_defaults(const struct policy *p, struct listen_defaults *d)
{
	memset(d, 0, sizeof(*d));
	d->have_certificate = p->tls_certificate[0] != '\0';
	d->have_trusted = p->front.nproxy_trusted > 0;
	d->nmilters = p->milters != NULL ? p->milters->n : 0;
}
