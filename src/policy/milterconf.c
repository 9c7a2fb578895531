/*
 * The milters list of smtpd.conf.  See milterconf.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/net.h"
#include "lib/str.h"
#include "milterconf.h"

static const char *const milter_keys[] = {
	"address", "name", "timeout", "connect_timeout", "eom_timeout",
	"default_action", NULL
};

/* "inet:host:port", "inet:[v6]:port", "inet:port@host" or "unix:/path". */
static int
parse_address(struct milter_def *d, const char *a)
{
	const char *at;
	size_t hl;

	if (strncmp(a, "unix:", 5) == 0 || strncmp(a, "local:", 6) == 0) {
		a = strchr(a, ':') + 1;
		d->unix_socket = 1;
		return a[0] == '/' && str_lcpy(d->path, a, sizeof(d->path)) <
		    sizeof(d->path) ? 0 : -1;
	}
	if (strncmp(a, "inet:", 5) == 0 || strncmp(a, "inet6:", 6) == 0)
		a = strchr(a, ':') + 1;
	else
		return -1;
	if ((at = strchr(a, '@')) != NULL) {
		/* Sendmail's form: port@host. */
		hl = (size_t)(at - a);
		if (hl == 0 || hl >= sizeof(d->port) || at[1] == '\0' ||
		    str_lcpy(d->host, at + 1, sizeof(d->host)) >=
		    sizeof(d->host))
			return -1;
		memcpy(d->port, a, hl);
		d->port[hl] = '\0';
		return 0;
	}
	return net_split_service(a, d->host, sizeof(d->host), d->port,
	    sizeof(d->port));
}

/* A name a listener's milters list can use: 1 to 32 of [A-Za-z0-9_-]. */
static int
valid_name(const char *v)
{
	size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

	return n > 0 && n <= MILTER_NAME_MAX && v[n] == '\0';
}

static int
load_one(struct milter_def *d, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	config_setting_t *s;
	const char *v;
	int i, j;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return conf_err(cx, g, "milters entries must be "
		    "groups: { address = \"inet:127.0.0.1:8891\"; }");
	for (i = 0; i < config_setting_length(g); i++) {
		const char *n = config_setting_name(
		    config_setting_get_elem(g, (unsigned)i));

		for (j = 0; milter_keys[j] != NULL; j++)
			if (strcmp(n, milter_keys[j]) == 0)
				break;
		if (milter_keys[j] == NULL)
			return conf_err(cx, g, "milters: unknown "
			    "setting %s", n);
	}
	d->timeout = DEF_MILTER_TIMEOUT;
	d->connect_timeout = DEF_MILTER_CONNECT;
	d->eom_timeout = 0;	/* unset: see below */
	if ((s = config_setting_get_member(g, "address")) == NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(cx, g, "milters: address = "
		    "\"inet:host:port\" or \"unix:/path\" is needed");
	v = config_setting_get_string(s);
	if (str_lcpy(d->address, v, sizeof(d->address)) >=
	    sizeof(d->address) || parse_address(d, v) == -1)
		return conf_err(cx, s, "milters: bad address %.100s "
		    "(inet:host:port, inet:[v6]:port or unix:/path)", v);
	if ((s = config_setting_get_member(g, "default_action")) != NULL) {
		v = config_setting_type(s) == CONFIG_TYPE_STRING ?
		    config_setting_get_string(s) : "";
		if (strcmp(v, "accept") == 0)
			d->accept_on_fail = 1;
		else if (strcmp(v, "tempfail") != 0)
			return conf_err(cx, s, "milters: "
			    "default_action must be \"tempfail\" or "
			    "\"accept\"");
	}
	v = NULL;
	if (conf_get_string(cx, g, "name", &v) == -1)
		return -1;
	if (v != NULL && !valid_name(v))
		return conf_err(cx, config_setting_get_member(g, "name"),
		    "milters: name must be 1 to %d letters, digits, '-' or "
		    "'_'", MILTER_NAME_MAX);
	if (v != NULL)
		str_lcpy(d->name, v, sizeof(d->name));
	if (conf_get_duration(cx, g, "timeout", 1, 3600, &d->timeout) == -1 ||
	    conf_get_duration(cx, g, "connect_timeout", 1, 3600,
	    &d->connect_timeout) == -1 ||
	    conf_get_duration(cx, g, "eom_timeout", 1, 3600,
	    &d->eom_timeout) == -1)
		return -1;
	/* Never shorter than a command's wait unless asked for. */
	if (d->eom_timeout == 0)
		d->eom_timeout = d->timeout > DEF_MILTER_EOM ? d->timeout :
		    DEF_MILTER_EOM;
	return 0;
}

int
milterconf_load(struct milter_conf **out, const config_setting_t *root,
    const struct conf_ctx *cx)
{
	config_setting_t *s, *g;
	struct milter_conf *c;
	int i, n;

	*out = NULL;
	if ((s = config_setting_get_member(root, "milters")) == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return conf_err(cx, s, "milters must be a list of "
		    "groups: ( { address = \"inet:127.0.0.1:8891\"; } )");
	if ((n = config_setting_length(s)) == 0)
		return 0;
	if (n > MILTERS_MAX)
		return conf_err(cx, s, "milters: at most %d",
		    MILTERS_MAX);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return conf_err(cx, s, "out of memory");
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, (unsigned)i);
		if (load_one(&c->m[i], g, cx) == -1) {
			free(c);
			return -1;
		}
		/* Listeners pick milters by name: one name, one milter. */
		if (c->m[i].name[0] != '\0' &&
		    milterconf_find(c, c->m[i].name) != -1) {
			conf_err(cx, config_setting_get_member(g, "name"),
			    "milters: two milters named \"%s\"",
			    c->m[i].name);
			free(c);
			return -1;
		}
		c->n = i + 1;
	}
	*out = c;
	return 0;
}

void
milterconf_free(struct milter_conf **cp)
{
	free(*cp);
	*cp = NULL;
}

int
milterconf_find(const struct milter_conf *c, const char *name)
{
	int i;

	for (i = 0; c != NULL && i < c->n; i++)
		if (strcmp(c->m[i].name, name) == 0)
			return i;
	return -1;
}

void
milterconf_print(const struct milter_conf *c, FILE *f)
{
	int i;

	if (c == NULL) {
		fprintf(f, "Milters: none\n");
		return;
	}
	for (i = 0; i < c->n; i++)
		fprintf(f, "Milter %s%s%s%s: timeout %us, connect timeout %us, "
		    "end-of-message timeout %us, default action %s\n",
		    c->m[i].address, c->m[i].name[0] ? " name \"" : "",
		    c->m[i].name, c->m[i].name[0] ? "\"" : "",
		    c->m[i].timeout, c->m[i].connect_timeout,
		    c->m[i].eom_timeout, c->m[i].accept_on_fail ?
		    "accept" : "tempfail");
}
