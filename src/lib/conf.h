/*
 * conf: reading smtpd.conf, and the helpers every section reader uses.
 *
 * One place decides how the file is read (libconfig), how a value of each
 * kind is taken (strings, numbers, booleans, paths, durations, sizes,
 * lists), how an error names its place ("file:line: message") and which
 * keys a group may hold.  The section readers (policy, listeners, queue,
 * milters, ...) compile what these return; they do not read libconfig
 * settings by hand.
 *
 * Units, for every setting of the kind (smtpd.conf(5), UNITS):
 *  - durations: a bare number is seconds; a string is a number with s, m,
 *    h, d or w ("90s", "5m", "2h", "5d", "1w");
 *  - sizes: a bare number is bytes; a string is a number with k, m or g
 *    (1024-based: "64k", "10m", "1g").
 * Relative paths are taken relative to the directory of the config file
 * (fs_conf_path()), so a config and the files it names can move together.
 *
 * Depends on src/lib only.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>

#include <libconfig.h>

struct table;

/* Where an error goes: the config file's name and a message buffer. */
struct conf_ctx {
	const char	*file;
	char		*err;
	size_t		 errlen;
};

/*
 * Reads path into cf (config_init()ed by the caller).  A missing file is
 * fine when missing_ok: *have_file is then 0 and cf stays empty.  0, or -1
 * with "file:line: message" (or "file: message") in err.
 */
int	conf_read(config_t *cf, const char *path, int missing_ok,
	    int *have_file, char *err, size_t errlen);

/* The line a setting is on, list elements included; 0 if unknown. */
unsigned int	conf_line(const char *file, const config_setting_t *s);

/*
 * Writes "file:line: message" (or "file: message" when s is NULL or has no
 * line) into cx->err.  Always returns -1.
 */
int	conf_err(const struct conf_ctx *cx, const config_setting_t *s,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same for a line kept from before (0: none). */
int	conf_err_at(const struct conf_ctx *cx, int line, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Every member of group g must be named in known (NULL-terminated); the
 * error names the first that is not, and "in WHERE" when where is given.
 */
int	conf_check_keys(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *const *known, const char *where);

/*
 * The getters leave *out alone when g has no member name (a default stays)
 * and return 0; a member of the wrong kind or out of range is -1 with the
 * setting's file:line in the error.
 */
int	conf_get_string(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, const char **out);
int	conf_get_bool(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, int *out);
int	conf_get_uint(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, unsigned int min, unsigned int max,
	    unsigned int *out);
/* Seconds: 300, "300", "300s", "5m", "2h", "1d", "1w". */
int	conf_get_duration(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, unsigned int min, unsigned int max,
	    unsigned int *out);
/* Bytes: 65536, "65536", "64k", "10m", "1g". */
int	conf_get_size(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, size_t min, size_t max, size_t *out);
/* A non-empty path, made absolute against the config file's directory. */
int	conf_get_path(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, char *dst, size_t len);
/*
 * A string or a list of strings, copied into a NULL-terminated array of at
 * most max entries (an empty list is an error); free with conf_free_strings.
 */
int	conf_get_strings(const struct conf_ctx *cx, const config_setting_t *g,
	    const char *name, char ***out, size_t *n, size_t max);
void	conf_free_strings(char ***list, size_t n);
/* 1 when name is an empty list, which some settings take as "none". */
int	conf_empty_list(const config_setting_t *g, const char *name);
/*
 * The setting of entry i of what conf_get_strings() read from name (the
 * lone string itself, or the list's element): an error about one entry
 * names that entry's line.
 */
const config_setting_t	*conf_entry(const config_setting_t *g,
	    const char *name, size_t i);

/* The value parsers behind the getters: 0, or -1 if not well formed. */
int	conf_parse_duration(const char *s, unsigned int *out);
int	conf_parse_size(const char *s, unsigned long long *out);

/*
 * A duration as a person reads it in a listing, whole units rounded
 * down, in a form conf_parse_duration() takes: "90s", "15m", "5h", "3d";
 * a negative one is "0s".  Cut to len like snprintf.
 */
void	conf_format_age(char *buf, size_t len, long long secs);

/* A relative path made absolute against the config file's directory. */
int	conf_path(const char *conffile, const char *path, char *dst,
	    size_t len);

/*
 * Opens a table reference ("file:", "cdb:", "socketmap:unix:",
 * "dovecot:" ...), a relative file path in it taken from the directory of
 * conffile.  NULL with the reason in err.
 */
struct table	*conf_table_open(const char *conffile, const char *ref,
		    char *err, size_t errlen);


/* The spool when the file names none (configure's localstatedir). */
const char	*conf_default_spool(void);

#endif
