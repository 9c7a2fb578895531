/*
 * Reading smtpd.conf and taking its values.  See conf.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "lib/fsutil.h"
#include "lib/str.h"
#include "lib/table.h"
#include "conf.h"

#ifndef SMTPD_SPOOL
#define SMTPD_SPOOL	"/var/spool/smtpd"
#endif

int
conf_read(config_t *cf, const char *path, int missing_ok, int *have_file,
    char *err, size_t errlen)
{
	*have_file = 0;
	if (missing_ok && access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if (config_read_file(cf, path) != CONFIG_TRUE) {
		if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno ? errno : EIO));
		else
			snprintf(err, errlen, "%s:%d: %s", config_error_file(cf) ?
			    config_error_file(cf) : path, config_error_line(cf),
			    config_error_text(cf));
		return -1;
	}
	*have_file = 1;
	return 0;
}

/*
 * libconfig gives the line it had read up to when it finished a list
 * element, which for the last element of a list spread over lines is the
 * line of the closing bracket: look back a few lines for the element's
 * string itself.
 */
unsigned int
conf_line(const char *file, const config_setting_t *s)
{
	unsigned int line, n = 0, found = 0;
	char buf[2048], want[1100];
	FILE *f;

	if (s == NULL)
		return 0;
	line = config_setting_source_line(s);
	if (file == NULL || config_setting_name(s) != NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING || line < 2 ||
	    (size_t)snprintf(want, sizeof(want), "\"%s\"",
	    config_setting_get_string(s)) >= sizeof(want) ||
	    (f = fopen(file, "r")) == NULL)
		return line;
	while (n < line && fgets(buf, sizeof(buf), f) != NULL) {
		n++;
		if (n + 3 >= line && strstr(buf, want) != NULL)
			found = n;
	}
	fclose(f);
	return found ? found : line;
}

int
conf_err(const struct conf_ctx *cx, const config_setting_t *s,
    const char *fmt, ...)
{
	char msg[512];
	unsigned int line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line = conf_line(cx->file, s);
	if (line > 0)
		snprintf(cx->err, cx->errlen, "%s:%u: %s", cx->file, line, msg);
	else
		snprintf(cx->err, cx->errlen, "%s: %s", cx->file, msg);
	return -1;
}

int
conf_err_at(const struct conf_ctx *cx, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(cx->err, cx->errlen, "%s:%d: %s", cx->file, line, msg);
	else
		snprintf(cx->err, cx->errlen, "%s: %s", cx->file, msg);
	return -1;
}

int
conf_check_keys(const struct conf_ctx *cx, const config_setting_t *g,
    const char *const *known, const char *where)
{
	int i, j, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(c);

		for (j = 0; known[j] != NULL; j++)
			if (name != NULL && strcmp(known[j], name) == 0)
				break;
		if (known[j] != NULL)
			continue;
		if (where != NULL)
			return conf_err(cx, c, "unknown setting \"%s\" in %s",
			    name ? name : "?", where);
		return conf_err(cx, c, "unknown setting \"%s\"",
		    name ? name : "?");
	}
	return 0;
}

int
conf_get_string(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, const char **out)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(cx, s, "%s must be a string", name);
	*out = config_setting_get_string(s);
	return 0;
}

int
conf_get_bool(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, int *out)
{
	config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_err(cx, s, "%s must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

int
conf_get_uint(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, unsigned int min, unsigned int max, unsigned int *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return conf_err(cx, s, "%s must be a whole number", name);
	v = config_setting_get_int64(s);
	if (v < (long long)min || v > (long long)max)
		return conf_err(cx, s, "%s must be between %u and %u", name,
		    min, max);
	*out = (unsigned int)v;
	return 0;
}

/* Digits, then at most one unit letter from units (its factor in mult). */
static int
parse_units(const char *s, const char *units, const unsigned long long *mult,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0, m = 1;
	const char *p = s, *u;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > max)
			return -1;
	}
	if (*p != '\0') {
		if ((u = strchr(units, tolower((unsigned char)*p))) == NULL ||
		    p[1] != '\0')
			return -1;
		m = mult[u - units];
	}
	if (v > max / m)
		return -1;
	*out = v * m;
	return 0;
}

int
conf_parse_duration(const char *s, unsigned int *out)
{
	static const unsigned long long mult[] = {
		1, 60, 3600, 86400, 7 * 86400
	};
	unsigned long long v;

	if (parse_units(s, "smhdw", mult, 0x7fffffffULL, &v) == -1)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

int
conf_parse_size(const char *s, unsigned long long *out)
{
	static const unsigned long long mult[] = {
		1024, 1024 * 1024, 1024 * 1024 * 1024
	};

	return parse_units(s, "kmg", mult, 1ULL << 52, out);
}

void
conf_format_age(char *buf, size_t len, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", secs / 60);
	else if (secs < 2 * 86400)
		snprintf(buf, len, "%lldh", secs / 3600);
	else
		snprintf(buf, len, "%lldd", secs / 86400);
}

/* A setting that is a number with a unit: a duration or a size. */
struct quantity {
	const char	*kind;		/* "duration" */
	const char	*unit;		/* of a bare number: "seconds" */
	const char	*units;		/* "s, m, h, d or w" */
	const char	*example;	/* "300 or \"5m\"" */
	int		(*parse)(const char *, unsigned long long *);
};

static int
parse_duration_ull(const char *s, unsigned long long *out)
{
	unsigned int v;

	if (conf_parse_duration(s, &v) == -1)
		return -1;
	*out = v;
	return 0;
}

static const struct quantity duration = {
	"duration", "seconds", "s, m, h, d or w", "300 or \"5m\"",
	parse_duration_ull
};
static const struct quantity size = {
	"size", "bytes", "k, m or g", "65536 or \"64k\"", conf_parse_size
};

/*
 * The member name of g as a quantity of kind q within [min, max]: 1 with
 * *out set, 0 when g has no such member, -1 with the error.
 */
static int
get_quantity(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, const struct quantity *q, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	config_setting_t *s = config_setting_get_member(g, name);
	unsigned long long v;
	long long n;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if ((n = config_setting_get_int64(s)) < 0)
			goto range;
		v = (unsigned long long)n;
		break;
	case CONFIG_TYPE_STRING:
		if (q->parse(config_setting_get_string(s), &v) == -1)
			return conf_err(cx, s, "%s: \"%.50s\" is not a %s (%s, "
			    "or a number with %s)", name,
			    config_setting_get_string(s), q->kind, q->unit,
			    q->units);
		break;
	default:
		return conf_err(cx, s, "%s must be a %s such as %s", name,
		    q->kind, q->example);
	}
	if (v < min || v > max)
		goto range;
	*out = v;
	return 1;
range:
	return conf_err(cx, s, "%s must be between %llu and %llu %s", name,
	    min, max, q->unit);
}

int
conf_get_duration(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long long v = 0;
	int r = get_quantity(cx, g, name, &duration, min, max, &v);

	if (r == 1)
		*out = (unsigned int)v;
	return r == -1 ? -1 : 0;
}

int
conf_get_size(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, size_t min, size_t max, size_t *out)
{
	unsigned long long v = 0;
	int r = get_quantity(cx, g, name, &size, min, max, &v);

	if (r == 1)
		*out = (size_t)v;
	return r == -1 ? -1 : 0;
}

int
conf_path(const char *conffile, const char *path, char *dst, size_t len)
{
	return fs_conf_path(conffile, path, dst, len);
}

int
conf_get_path(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, char *dst, size_t len)
{
	const char *v = NULL;

	if (conf_get_string(cx, g, name, &v) == -1)
		return -1;
	if (v == NULL)
		return 0;
	if (*v == '\0' || conf_path(cx->file, v, dst, len) == -1)
		return conf_err(cx, config_setting_get_member(g, name),
		    "%s must be a path (%s)", name, *v ? strerror(errno) :
		    "empty");
	return 0;
}

void
conf_free_strings(char ***list, size_t n)
{
	size_t i;

	if (*list == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
}

int
conf_get_strings(const struct conf_ctx *cx, const config_setting_t *g,
    const char *name, char ***out, size_t *n, size_t max)
{
	config_setting_t *s = config_setting_get_member(g, name), *e;
	char **v;
	size_t i, cnt;

	*out = NULL;
	*n = 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		cnt = 1;
	else if (config_setting_is_array(s) || config_setting_is_list(s))
		cnt = (size_t)config_setting_length(s);
	else
		return conf_err(cx, s, "%s must be a string or a list of "
		    "strings", name);
	if (cnt == 0)
		return conf_err(cx, s, "%s must not be empty", name);
	if (cnt > max)
		return conf_err(cx, s, "%s: more than %zu entries", name, max);
	if ((v = calloc(cnt + 1, sizeof(*v))) == NULL)
		return conf_err(cx, s, "out of memory");
	for (i = 0; i < cnt; i++) {
		e = config_setting_type(s) == CONFIG_TYPE_STRING ? s :
		    config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			conf_free_strings(&v, i);
			return conf_err(cx, e, "%s entries must be strings",
			    name);
		}
		if ((v[i] = strdup(config_setting_get_string(e))) == NULL) {
			conf_free_strings(&v, i);
			return conf_err(cx, e, "out of memory");
		}
	}
	*out = v;
	*n = cnt;
	return 0;
}

int
conf_empty_list(const config_setting_t *g, const char *name)
{
	config_setting_t *s = config_setting_get_member(g, name);

	return s != NULL && (config_setting_is_array(s) ||
	    config_setting_is_list(s)) && config_setting_length(s) == 0;
}

const config_setting_t *
conf_entry(const config_setting_t *g, const char *name, size_t i)
{
	config_setting_t *s = config_setting_get_member(g, name), *e;

	if (s == NULL || config_setting_type(s) == CONFIG_TYPE_STRING)
		return s;
	e = config_setting_get_elem(s, (unsigned int)i);
	return e != NULL ? e : s;
}

struct table *
conf_table_open(const char *conffile, const char *ref, char *err,
    size_t errlen)
{
	char buf[TABLE_REF_MAX], abspath[PATH_MAX];
	const char *kinds[] = { "file:", "cdb:", "socketmap:unix:", "dovecot:",
	    NULL };
	size_t i, n;

	for (i = 0; kinds[i] != NULL; i++) {
		n = strlen(kinds[i]);
		if (strncmp(ref, kinds[i], n) != 0 || ref[n] == '/' ||
		    ref[n] == '\0')
			continue;
		if (i == 2) {
			/* socketmap:unix:path:name */
			const char *c = strrchr(ref + n, ':');
			char rel[PATH_MAX];

			if (c == NULL || (size_t)(c - (ref + n)) >= sizeof(rel))
				break;
			memcpy(rel, ref + n, (size_t)(c - (ref + n)));
			rel[c - (ref + n)] = '\0';
			if (conf_path(conffile, rel, abspath,
			    sizeof(abspath)) == -1 ||
			    (size_t)snprintf(buf, sizeof(buf), "%s%s%s",
			    kinds[i], abspath, c) >= sizeof(buf))
				break;
		} else if (conf_path(conffile, ref + n, abspath,
		    sizeof(abspath)) == -1 || (size_t)snprintf(buf,
		    sizeof(buf), "%s%s", kinds[i], abspath) >= sizeof(buf))
			break;
		return table_open(buf, err, errlen);
	}
	return table_open(ref, err, errlen);
}

const char *
conf_default_spool(void)
{
	return SMTPD_SPOOL;
}
