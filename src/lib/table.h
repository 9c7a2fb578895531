/*
 * table: key -> value lookup tables behind one interface, for aliases,
 * users, recipient lists, login -> sender maps and the like.
 *
 * A table is named by a reference string:
 *   "file:/path"                      "key value" lines, reloaded on change
 *   "cdb:/path"                       a CDB file (smtpq makemap)
 *   "socketmap:unix:/path:name"       Postfix socketmap protocol over a
 *   "socketmap:inet:host:port:name"   unix or TCP socket
 *   "dovecot:/path"                   Dovecot's userdb (its auth-userdb
 *                                     socket): known users, no values
 * or built from an inline list by the config compiler (table_inline_*).
 * Keys are compared without regard to case (they are lower-cased).
 * Lookups are thread-safe.  Documented in smtpd.conf(5), TABLES.
 */
#ifndef TABLE_H
#define TABLE_H

#include <stddef.h>

#define TABLE_KEY_MAX		512	/* bytes in a key */
#define TABLE_VALUE_MAX		4096	/* bytes in a value */
#define TABLE_LINE_MAX		(TABLE_KEY_MAX + TABLE_VALUE_MAX + 2)
#define TABLE_FILE_ENTRIES_MAX	1000000	/* entries in a text file */
#define TABLE_FILE_SIZE_MAX	(64L * 1024 * 1024)
#define TABLE_RECHECK		1	/* seconds between stat(2)s of a file */
#define TABLE_IO_TIMEOUT	5	/* socketmap connect, write, read */
#define TABLE_REF_MAX		1024

enum table_result {
	TABLE_TEMP = -1,	/* cannot tell now: the caller defers */
	TABLE_NOTFOUND = 0,
	TABLE_FOUND = 1,
};

struct table;

/* One kind of table: a struct of its operations. */
struct table_backend {
	const char *name;	/* the reference prefix: "file", "cdb", ... */
	/* Opens arg (the reference without "name:"); 0 or -1 with err. */
	int	(*open)(struct table *, const char *arg, char *err,
		    size_t errlen);
	/* key is lower case; val gets the value (truncated to vallen). */
	enum table_result (*lookup)(struct table *, const char *key,
		    char *val, size_t vallen, char *err, size_t errlen);
	void	(*close)(struct table *);
};

/*
 * Opens a table by reference.  NULL with a one-line reason in err (no
 * such backend, a file that cannot be read, a bad line as "path:line:
 * ...").
 */
struct table *table_open(const char *ref, char *err, size_t errlen);
/* 1 if s looks like a table reference ("file:", "cdb:", "socketmap:", ...). */
int	table_is_ref(const char *s);

/* An inline table: add entries, then table_inline_finish(). */
struct table *table_inline_new(const char *name);
/* 0, -1 with err (too long, listed twice, no memory). */
int	table_inline_add(struct table *, const char *key, const char *value,
	    char *err, size_t errlen);
int	table_inline_finish(struct table *, char *err, size_t errlen);

/*
 * Looks key up (case-insensitively).  val may be NULL when only presence
 * matters.  TABLE_TEMP comes with a reason in err.
 */
enum table_result table_lookup(struct table *, const char *key, char *val,
	    size_t vallen, char *err, size_t errlen);
/* The reference as written (or "inline"), for messages and smtpd -t. */
const char *table_ref(const struct table *);
/* Entries in an inline or text-file table; 0 for the others. */
size_t	table_size(const struct table *);
void	table_free(struct table **);

/*
 * Reads a "key value" text file, calling fn for each entry (key lower
 * case, value "" when absent).  0, or -1 with "path:line: message" in err.
 */
int	table_parse_file(const char *path, int (*fn)(void *, const char *,
	    const char *, unsigned int line, char *, size_t), void *arg,
	    char *err, size_t errlen);
/*
 * Compiles the text file src into the CDB file dst, atomically (a
 * temporary file beside it, fsync, rename).  *count gets the entries.
 */
int	table_make_cdb(const char *src, const char *dst, size_t *count,
	    char *err, size_t errlen);

/* For backends (table.c, table_cdb.c, table_socketmap.c, table_dovecot.c). */
void	*table_priv(struct table *);
void	 table_set_priv(struct table *, void *);
extern const struct table_backend table_file_backend;
extern const struct table_backend table_cdb_backend;
extern const struct table_backend table_socketmap_backend;
extern const struct table_backend table_dovecot_backend;

#endif
