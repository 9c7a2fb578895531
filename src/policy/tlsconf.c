/*
 * tls.certificates in smtpd.conf.  See tlsconf.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/str.h"
#include "tlsconf.h"

static const char *const entry_keys[] = {
	"certificate", "key", "chain", "names", NULL
};

int
tlsconf_name_ok(const char *name, int wildcard)
{
	size_t n = strlen(name), label = 0, i;

	if (wildcard && strncmp(name, "*.", 2) == 0)
		name += 2, n -= 2;
	if (n == 0 || n > TLSCONF_NAME_MAX)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i == n || name[i] == '.') {
			/* 1 to 63 characters, no '-' at either end. */
			if (label == 0 || label > 63 || name[i - 1] == '-' ||
			    name[i - label] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)name[i]) || name[i] == '-')
			label++;
		else
			return 0;
	}
	return 1;
}

static int
load_names(struct tlsconf_cert *c, const config_setting_t *e,
    const struct conf_ctx *cx)
{
	char **v;
	size_t i, j, n;

	if (conf_empty_list(e, "names"))
		return conf_err(cx, config_setting_get_member(e, "names"),
		    "names is empty (leave it out to use the names in the "
		    "certificate)");
	if (conf_get_strings(cx, e, "names", &v, &n, TLSCONF_NAMES_MAX) == -1)
		return -1;
	for (i = 0; v != NULL && i < n; i++) {
		if (!tlsconf_name_ok(v[i], 1)) {
			(void)conf_err(cx, conf_entry(e, "names", i),
			    "bad name \"%.100s\" (want a host name such as "
			    "mx.example.org, or *.example.net)", v[i]);
			conf_free_strings(&v, n);
			return -1;
		}
		for (j = 0; v[i][j] != '\0'; j++)
			v[i][j] = (char)tolower((unsigned char)v[i][j]);
		c->names[i] = v[i];
		v[i] = NULL;
		c->nnames++;
	}
	conf_free_strings(&v, n);
	return 0;
}

static int
load_entry(struct tlsconf_cert *c, const config_setting_t *e,
    const struct conf_ctx *cx)
{
	const char *f;

	if (!config_setting_is_group(e))
		return conf_err(cx, e, "tls.certificates entries must be "
		    "groups: { certificate = ...; key = ...; }");
	if (conf_check_keys(cx, e, entry_keys, "a tls.certificates entry") ==
	    -1)
		return -1;
	if (config_setting_get_member(e, "certificate") == NULL ||
	    config_setting_get_member(e, "key") == NULL)
		return conf_err(cx, e, "a tls.certificates entry needs "
		    "certificate and key");
	f = config_setting_source_file(e);
	snprintf(c->where, sizeof(c->where), "%s:%u", f != NULL ? f : cx->file,
	    conf_line(cx->file, e));
	if (conf_get_path(cx, e, "certificate", c->certificate,
	    sizeof(c->certificate)) == -1 ||
	    conf_get_path(cx, e, "key", c->key, sizeof(c->key)) == -1 ||
	    conf_get_path(cx, e, "chain", c->chain, sizeof(c->chain)) == -1)
		return -1;
	if (config_setting_get_member(e, "names") != NULL &&
	    load_names(c, e, cx) == -1)
		return -1;
	return 0;
}

int
tlsconf_load(struct tlsconf *c, const config_setting_t *g,
    const struct conf_ctx *cx)
{
	const config_setting_t *l;
	int i, n;

	tlsconf_free(c);
	if ((l = config_setting_get_member(g, "certificates")) == NULL)
		return 0;
	if (!config_setting_is_list(l))
		return conf_err(cx, l, "tls.certificates must be a list: "
		    "( { certificate = ...; key = ...; }, ... )");
	if ((n = config_setting_length(l)) > TLSCONF_CERTS_MAX)
		return conf_err(cx, l, "more than %d tls.certificates",
		    TLSCONF_CERTS_MAX);
	if (n == 0)
		return 0;
	if ((c->certs = calloc((size_t)n, sizeof(*c->certs))) == NULL)
		return conf_err(cx, l, "out of memory");
	for (i = 0; i < n; i++) {
		c->ncerts++;
		if (load_entry(&c->certs[i], config_setting_get_elem(l,
		    (unsigned int)i), cx) == -1) {
			tlsconf_free(c);
			return -1;
		}
	}
	return 0;
}

void
tlsconf_free(struct tlsconf *c)
{
	int i, j;

	for (i = 0; i < c->ncerts; i++)
		for (j = 0; j < c->certs[i].nnames; j++)
			free(c->certs[i].names[j]);
	free(c->certs);
	c->certs = NULL;
	c->ncerts = 0;
}

void
tlsconf_print(const struct tlsconf *c, FILE *f)
{
	int i, j;

	for (i = 0; i < c->ncerts; i++) {
		fprintf(f, "TLS by name: certificate %s, key %s%s%s, for ",
		    c->certs[i].certificate, c->certs[i].key,
		    c->certs[i].chain[0] ? ", chain " : "", c->certs[i].chain);
		if (c->certs[i].nnames == 0)
			fprintf(f, "the names in the certificate");
		for (j = 0; j < c->certs[i].nnames; j++)
			fprintf(f, "%s%s", j > 0 ? " " : "",
			    c->certs[i].names[j]);
		fputc('\n', f);
	}
}
