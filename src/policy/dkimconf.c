/*
 * The dkim { } section of smtpd.conf.  See dkimconf.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/dkim.h"
#include "lib/str.h"
#include "dkimconf.h"

/* RFC 6376 5.4.1's advice, with From signed once more than it appears. */
static const char *const default_headers[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To",
	"Resent-Cc", "Resent-Message-ID", "Sender", "List-Id", "List-Post",
	"List-Unsubscribe", "List-Unsubscribe-Post", NULL
};
static const char *const dkim_keys[] = { "keys", "headers", NULL };
static const char *const entry_keys[] = { "domain", "selector", "key", NULL };

static const char *
member_string(const config_setting_t *g, const char *name)
{
	config_setting_t *s = config_setting_get_member(g, name);

	return s != NULL && config_setting_type(s) == CONFIG_TYPE_STRING ?
	    config_setting_get_string(s) : NULL;
}

/* A DNS label or name: letters, digits, '-', '_' and dots. */
static int
dns_name(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= max || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

static int
load_entry(struct dkim_conf *c, const config_setting_t *e,
    const struct conf_ctx *cx)
{
	struct dkim_entry *k;
	const char *dom, *sel, *key;
	char why[512];
	size_t i;

	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return conf_err(cx, e, "dkim keys entries must be "
		    "groups: { domain = ...; selector = ...; key = ...; }");
	if (conf_check_keys(cx, e, entry_keys, NULL) == -1)
		return -1;
	dom = member_string(e, "domain");
	sel = member_string(e, "selector");
	key = member_string(e, "key");
	if (dom == NULL || sel == NULL || key == NULL)
		return conf_err(cx, e, "a dkim key needs domain, "
		    "selector and key (strings)");
	if (c->nkeys >= DKIM_KEYS_MAX)
		return conf_err(cx, e, "more than %d dkim keys",
		    DKIM_KEYS_MAX);
	k = &c->keys[c->nkeys];
	if (!dns_name(dom, sizeof(k->domain)) ||
	    !dns_name(sel, sizeof(k->selector)))
		return conf_err(cx, e,
		    "bad dkim domain or selector");
	for (i = 0; dom[i] != '\0'; i++)
		k->domain[i] = (char)tolower((unsigned char)dom[i]);
	k->domain[i] = '\0';
	str_lcpy(k->selector, sel, sizeof(k->selector));
	if (conf_path(cx->file, key, k->keyfile, sizeof(k->keyfile)) == -1)
		return conf_err(cx, e, "dkim key %.200s: %s", key,
		    strerror(errno));
	if ((k->key = dkim_key_load(k->keyfile, why, sizeof(why))) == NULL)
		return conf_err(cx, e, "dkim key %s", why);
	c->nkeys++;
	return 0;
}

static int
load_headers(struct dkim_conf *c, const config_setting_t *s,
    const struct conf_ctx *cx)
{
	const char *name, *p;
	int i, have_from = 0;

	if (!config_setting_is_aggregate(s) || config_setting_length(s) == 0)
		return conf_err(cx, s, "dkim headers must be a list "
		    "of field names");
	if (config_setting_length(s) > DKIM_HEADERS_MAX)
		return conf_err(cx, s, "more than %d dkim headers",
		    DKIM_HEADERS_MAX);
	for (i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return conf_err(cx, e, "dkim headers must "
			    "be strings");
		name = config_setting_get_string(e);
		for (p = name; *p > ' ' && *p < 0x7f && *p != ':'; p++)
			;
		if (*p != '\0' || p == name)
			return conf_err(cx, e,
			    "bad header field name \"%.100s\"", name);
		if ((c->owned[c->nheaders] = strdup(name)) == NULL)
			return conf_err(cx, e, "out of memory");
		c->headers[c->nheaders] = c->owned[c->nheaders];
		c->nheaders++;
		have_from |= strcasecmp(name, "From") == 0;
	}
	/* RFC 6376 5.4: From must be signed. */
	if (!have_from)
		return conf_err(cx, s, "dkim headers must include "
		    "From");
	c->headers[c->nheaders] = NULL;
	return 0;
}

int
dkimconf_load(struct dkim_conf **out, const config_setting_t *root,
    const struct conf_ctx *cx)
{
	config_setting_t *g, *s;
	struct dkim_conf *c;
	int i;

	*out = NULL;
	if ((g = config_setting_get_member(root, "dkim")) == NULL)
		return 0;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return conf_err(cx, g, "dkim must be a group { }");
	if (conf_check_keys(cx, g, dkim_keys, NULL) == -1)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return conf_err(cx, g, "out of memory");
	for (i = 0; default_headers[i] != NULL; i++)
		c->headers[i] = default_headers[i];
	if ((s = config_setting_get_member(g, "headers")) != NULL &&
	    load_headers(c, s, cx) == -1)
		goto bad;
	if ((s = config_setting_get_member(g, "keys")) == NULL ||
	    !config_setting_is_aggregate(s)) {
		conf_err(cx, s ? s : g, "dkim needs keys = ( { "
		    "domain = ...; selector = ...; key = ...; } )");
		goto bad;
	}
	for (i = 0; i < config_setting_length(s); i++)
		if (load_entry(c, config_setting_get_elem(s, (unsigned)i),
		    cx) == -1)
			goto bad;
	*out = c;
	return 0;
bad:
	dkimconf_free(&c);
	return -1;
}

void
dkimconf_free(struct dkim_conf **cp)
{
	struct dkim_conf *c = *cp;
	size_t i;

	if (c == NULL)
		return;
	*cp = NULL;
	for (i = 0; i < c->nkeys; i++)
		dkim_key_free(&c->keys[i].key);
	for (i = 0; i < c->nheaders; i++)
		free(c->owned[i]);
	free(c);
}

void
dkimconf_print(const struct dkim_conf *c, FILE *f)
{
	size_t i;

	if (c == NULL) {
		fprintf(f, "DKIM signing: off\n");
		return;
	}
	for (i = 0; i < c->nkeys; i++)
		fprintf(f, "DKIM signing: mail from %s with %s key %s, "
		    "selector %s\n", c->keys[i].domain,
		    dkim_key_algorithm(c->keys[i].key), c->keys[i].keyfile,
		    c->keys[i].selector);
	fprintf(f, "DKIM signed header fields:");
	for (i = 0; c->headers[i] != NULL; i++)
		fprintf(f, " %s", c->headers[i]);
	fprintf(f, "\n");
}

size_t
dkimconf_find(const struct dkim_conf *c, const char *domain,
    const struct dkim_entry **out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; c != NULL && i < c->nkeys && n < max; i++)
		if (strcasecmp(c->keys[i].domain, domain) == 0)
			out[n++] = &c->keys[i];
	return n;
}
