/*
 * tls.certificates in smtpd.conf.  See tlsconf.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fsutil.h"
#include "lib/str.h"
#include "tlsconf.h"

static const char *const entry_keys[] = {
	"certificate", "key", "chain", "names", NULL
};

static int
fail(char *err, size_t errlen, const char *file, const config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
fail(char *err, size_t errlen, const char *file, const config_setting_t *s,
    const char *fmt, ...)
{
	char msg[512];
	const char *f = s != NULL ? config_setting_source_file(s) : NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: %s", f != NULL ? f : file,
	    s != NULL ? config_setting_source_line(s) : 0, msg);
	return -1;
}

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
get_path(const config_setting_t *e, const char *key, char *dst, size_t len,
    int needed, const char *file, char *err, size_t errlen)
{
	config_setting_t *s = config_setting_get_member(e, key);
	const char *v;

	if (s == NULL) {
		if (needed)
			return fail(err, errlen, file, e, "a tls.certificates "
			    "entry needs certificate and key");
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(err, errlen, file, s, "%s must be a string", key);
	v = config_setting_get_string(s);
	if (*v == '\0' || fs_conf_path(file, v, dst, len) == -1)
		return fail(err, errlen, file, s, "%s must be a path (%s)",
		    key, *v ? strerror(errno) : "empty");
	return 0;
}

static int
load_names(struct tlsconf_cert *c, const config_setting_t *s,
    const char *file, char *err, size_t errlen)
{
	const config_setting_t *e;
	const char *v;
	size_t j;
	int i, n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return fail(err, errlen, file, s, "names must be a list of "
		    "host names: ( \"mx.example.org\", \"*.example.net\" )");
	if ((n = config_setting_length(s)) == 0)
		return fail(err, errlen, file, s, "names is empty (leave it "
		    "out to use the names in the certificate)");
	if (n > TLSCONF_NAMES_MAX)
		return fail(err, errlen, file, s, "more than %d names",
		    TLSCONF_NAMES_MAX);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned int)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail(err, errlen, file, s, "names must be "
			    "strings");
		v = config_setting_get_string(e);
		if (!tlsconf_name_ok(v, 1))
			return fail(err, errlen, file, s, "bad name \"%.100s\" "
			    "(want a host name such as mx.example.org, or "
			    "*.example.net)", v);
		if ((c->names[i] = strdup(v)) == NULL)
			return fail(err, errlen, file, s, "out of memory");
		c->nnames++;
		for (j = 0; c->names[i][j] != '\0'; j++)
			c->names[i][j] = (char)tolower(
			    (unsigned char)c->names[i][j]);
	}
	return 0;
}

static int
load_entry(struct tlsconf_cert *c, const config_setting_t *e,
    const char *file, char *err, size_t errlen)
{
	const config_setting_t *s;
	const char *f;
	int i, j;

	if (!config_setting_is_group(e))
		return fail(err, errlen, file, e, "tls.certificates entries "
		    "must be groups: { certificate = ...; key = ...; }");
	for (i = 0; i < config_setting_length(e); i++) {
		s = config_setting_get_elem(e, (unsigned int)i);
		for (j = 0; entry_keys[j] != NULL; j++)
			if (strcmp(entry_keys[j], config_setting_name(s)) == 0)
				break;
		if (entry_keys[j] == NULL)
			return fail(err, errlen, file, s, "unknown setting "
			    "\"%s\" in a tls.certificates entry",
			    config_setting_name(s));
	}
	f = config_setting_source_file(e);
	snprintf(c->where, sizeof(c->where), "%s:%d", f != NULL ? f : file,
	    config_setting_source_line(e));
	if (get_path(e, "certificate", c->certificate,
	    sizeof(c->certificate), 1, file, err, errlen) == -1 ||
	    get_path(e, "key", c->key, sizeof(c->key), 1, file, err,
	    errlen) == -1 ||
	    get_path(e, "chain", c->chain, sizeof(c->chain), 0, file, err,
	    errlen) == -1)
		return -1;
	if ((s = config_setting_get_member(e, "names")) != NULL &&
	    load_names(c, s, file, err, errlen) == -1)
		return -1;
	return 0;
}

int
tlsconf_load(struct tlsconf *c, const config_setting_t *g, const char *file,
    char *err, size_t errlen)
{
	const config_setting_t *l;
	int i, n;

	tlsconf_free(c);
	if ((l = config_setting_get_member(g, "certificates")) == NULL)
		return 0;
	if (!config_setting_is_list(l))
		return fail(err, errlen, file, l, "tls.certificates must be a "
		    "list: ( { certificate = ...; key = ...; }, ... )");
	if ((n = config_setting_length(l)) > TLSCONF_CERTS_MAX)
		return fail(err, errlen, file, l, "more than %d "
		    "tls.certificates", TLSCONF_CERTS_MAX);
	if (n == 0)
		return 0;
	if ((c->certs = calloc((size_t)n, sizeof(*c->certs))) == NULL)
		return fail(err, errlen, file, l, "out of memory");
	for (i = 0; i < n; i++) {
		c->ncerts++;
		if (load_entry(&c->certs[i], config_setting_get_elem(l,
		    (unsigned int)i), file, err, errlen) == -1) {
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
