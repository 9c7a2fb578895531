/*
 * table: the common part, inline tables and text files.
 *
 * Inline and text-file tables are sorted arrays searched by bsearch(3).
 * A text file is checked at most once a second (TABLE_RECHECK) at lookup
 * time; when its inode, size or modification time changed it is read
 * again, and a file that no longer reads keeps the old contents (logged).
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "str.h"
#include "table.h"

struct table {
	const struct table_backend *be;
	char		 ref[TABLE_REF_MAX];
	void		*priv;
};

struct ent {
	char		*key;
	char		*val;
	unsigned int	 line;
};

/* Sorted entries: an inline table, or one reading of a text file. */
struct ents {
	struct ent	*v;
	size_t		 n, cap;
};

struct filetab {
	pthread_mutex_t	 mu;
	char		 path[TABLE_REF_MAX];
	struct ents	*cur;
	struct stat	 st;
	time_t		 checked;
};

static const struct table_backend inline_backend;
static const struct table_backend *const backends[] = {
	&table_file_backend, &table_cdb_backend, &table_socketmap_backend,
	&table_dovecot_backend, NULL
};

void *
table_priv(struct table *t)
{
	return t->priv;
}

void
table_set_priv(struct table *t, void *p)
{
	t->priv = p;
}

const char *
table_ref(const struct table *t)
{
	return t->ref;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
table_is_ref(const char *s)
{
	size_t i, n;

	for (i = 0; backends[i] != NULL; i++) {
		n = strlen(backends[i]->name);
		if (strncmp(s, backends[i]->name, n) == 0 && s[n] == ':')
			return 1;
	}
	return 0;
}

struct table *
table_open(const char *ref, char *err, size_t errlen)
{
	struct table *t;
	size_t i, n;

	for (i = 0; backends[i] != NULL; i++) {
		n = strlen(backends[i]->name);
		if (strncmp(ref, backends[i]->name, n) == 0 && ref[n] == ':')
			break;
	}
	if (backends[i] == NULL) {
		snprintf(err, errlen, "\"%.100s\" is not a table: use "
		    "file:/path, cdb:/path, socketmap:... or dovecot:/path",
		    ref);
		return NULL;
	}
	if (strlen(ref) >= TABLE_REF_MAX) {
		snprintf(err, errlen, "table reference too long");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->be = backends[i];
	str_lcpy(t->ref, ref, sizeof(t->ref));
	if (t->be->open(t, ref + n + 1, err, errlen) == -1) {
		free(t);
		return NULL;
	}
	return t;
}

enum table_result
table_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	char k[TABLE_KEY_MAX + 1], dummy[2];

	if (str_lcpy(k, key, sizeof(k)) >= sizeof(k))
		return TABLE_NOTFOUND;	/* no entry can be this long */
	lower(k);
	if (val == NULL) {
		val = dummy;
		vallen = sizeof(dummy);
	}
	val[0] = '\0';
	err[0] = '\0';
	return t->be->lookup(t, k, val, vallen, err, errlen);
}

void
table_free(struct table **tp)
{
	struct table *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	t->be->close(t);
	free(t);
}

/* --- sorted entries --- */

static int
ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->key,
	    ((const struct ent *)b)->key);
}

static void
ents_free(struct ents *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++) {
		free(e->v[i].key);
		free(e->v[i].val);
	}
	free(e->v);
	free(e);
}

static int
ents_add(struct ents *e, const char *key, const char *val,
    unsigned int line, char *err, size_t errlen)
{
	struct ent *nv;
	size_t ncap;

	if (key[0] == '\0' || strlen(key) > TABLE_KEY_MAX ||
	    strlen(val) > TABLE_VALUE_MAX) {
		snprintf(err, errlen, "%s", key[0] == '\0' ? "empty key" :
		    "key or value too long");
		return -1;
	}
	if (e->n >= TABLE_FILE_ENTRIES_MAX) {
		snprintf(err, errlen, "more than %d entries",
		    TABLE_FILE_ENTRIES_MAX);
		return -1;
	}
	if (e->n == e->cap) {
		ncap = e->cap ? e->cap * 2 : 16;
		if ((nv = realloc(e->v, ncap * sizeof(*nv))) == NULL)
			goto nomem;
		e->v = nv;
		e->cap = ncap;
	}
	e->v[e->n].line = line;
	if ((e->v[e->n].key = strdup(key)) == NULL)
		goto nomem;
	if ((e->v[e->n].val = strdup(val)) == NULL) {
		free(e->v[e->n].key);
		goto nomem;
	}
	lower(e->v[e->n].key);
	e->n++;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Sorts and refuses a key given twice. */
static int
ents_finish(struct ents *e, const char *name, char *err, size_t errlen)
{
	size_t i;

	if (e->n > 0)
		qsort(e->v, e->n, sizeof(*e->v), ent_cmp);
	for (i = 1; i < e->n; i++)
		if (strcmp(e->v[i - 1].key, e->v[i].key) == 0) {
			unsigned int a = e->v[i - 1].line, b = e->v[i].line;

			snprintf(err, errlen, "%s:%u: \"%.100s\" is listed "
			    "twice (also line %u)", name, a > b ? a : b,
			    e->v[i].key, a > b ? b : a);
			return -1;
		}
	return 0;
}

static enum table_result
ents_lookup(const struct ents *e, const char *key, char *val, size_t vallen)
{
	struct ent k, *f;

	if (e == NULL || e->n == 0)
		return TABLE_NOTFOUND;
	memset(&k, 0, sizeof(k));
	k.key = (char *)key;
	if ((f = bsearch(&k, e->v, e->n, sizeof(k), ent_cmp)) == NULL)
		return TABLE_NOTFOUND;
	str_lcpy(val, f->val, vallen);
	return TABLE_FOUND;
}

size_t
table_size(const struct table *t)
{
	struct filetab *ft;
	size_t n;

	if (t->be == &inline_backend)
		return ((struct ents *)t->priv)->n;
	if (t->be == &table_file_backend) {
		ft = t->priv;
		pthread_mutex_lock(&ft->mu);
		n = ft->cur != NULL ? ft->cur->n : 0;
		pthread_mutex_unlock(&ft->mu);
		return n;
	}
	return 0;
}

/* --- inline tables --- */

static enum table_result
inline_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return ents_lookup(t->priv, key, val, vallen);
}

static void
inline_close(struct table *t)
{
	ents_free(t->priv);
}

static const struct table_backend inline_backend = {
	"inline", NULL, inline_lookup, inline_close
};

struct table *
table_inline_new(const char *name)
{
	struct table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->priv = calloc(1, sizeof(struct ents))) == NULL) {
		free(t);
		return NULL;
	}
	t->be = &inline_backend;
	str_lcpy(t->ref, name, sizeof(t->ref));
	return t;
}

int
table_inline_add(struct table *t, const char *key, const char *value,
    char *err, size_t errlen)
{
	return ents_add(t->priv, key, value != NULL ? value : "", 0, err,
	    errlen);
}

int
table_inline_finish(struct table *t, char *err, size_t errlen)
{
	return ents_finish(t->priv, t->ref, err, errlen);
}

/* --- text files --- */

int
table_parse_file(const char *path, int (*fn)(void *, const char *,
    const char *, unsigned int, char *, size_t), void *arg, char *err,
    size_t errlen)
{
	char line[TABLE_LINE_MAX + 2], why[200], *k, *v, *e;
	unsigned int lineno = 0;
	struct stat st;
	FILE *f;
	int rc = -1;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > TABLE_FILE_SIZE_MAX) {
		snprintf(err, errlen, "%s: %s", path, !S_ISREG(st.st_mode) ?
		    "not a regular file" : "larger than 64 MiB");
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d "
			    "bytes", path, lineno, TABLE_LINE_MAX);
			goto out;
		}
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		if (*k == '#' || *k == '\n' || *k == '\r' || *k == '\0')
			continue;
		for (v = k; *v != '\0' && !isspace((unsigned char)*v); v++)
			;
		if (*v != '\0')
			*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		e = v + strlen(v);
		while (e > v && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (fn(arg, k, v, lineno, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

static int
file_add(void *arg, const char *key, const char *val, unsigned int line,
    char *err, size_t errlen)
{
	return ents_add(arg, key, val, line, err, errlen);
}

static struct ents *
file_read(const char *path, struct stat *st, char *err, size_t errlen)
{
	struct ents *e;

	if (stat(path, st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (table_parse_file(path, file_add, e, err, errlen) == -1 ||
	    ents_finish(e, path, err, errlen) == -1) {
		ents_free(e);
		return NULL;
	}
	return e;
}

static int
file_open(struct table *t, const char *arg, char *err, size_t errlen)
{
	struct filetab *ft;

	if (arg[0] != '/') {
		snprintf(err, errlen, "%s: the path must be absolute", t->ref);
		return -1;
	}
	if ((ft = calloc(1, sizeof(*ft))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	str_lcpy(ft->path, arg, sizeof(ft->path));
	if ((ft->cur = file_read(ft->path, &ft->st, err, errlen)) == NULL) {
		free(ft);
		return -1;
	}
	ft->checked = time(NULL);
	pthread_mutex_init(&ft->mu, NULL);
	t->priv = ft;
	return 0;
}

/* 1 if the file at path is not the one st describes any more. */
static int
changed(const char *path, const struct stat *st)
{
	struct stat now;

	if (stat(path, &now) == -1)
		return 1;
	return now.st_ino != st->st_ino || now.st_dev != st->st_dev ||
	    now.st_size != st->st_size ||
	    now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != st->st_mtim.tv_nsec;
}

static enum table_result
file_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	struct filetab *ft = t->priv;
	struct ents *e;
	struct stat st;
	enum table_result r;
	time_t now = time(NULL);
	char why[512];

	pthread_mutex_lock(&ft->mu);
	if (now - ft->checked >= TABLE_RECHECK || now < ft->checked) {
		ft->checked = now;
		if (changed(ft->path, &ft->st)) {
			if ((e = file_read(ft->path, &st, why, sizeof(why))) ==
			    NULL) {
				/* Once per change, not once per lookup. */
				if (stat(ft->path, &ft->st) == -1)
					memset(&ft->st, 0, sizeof(ft->st));
				log_err("table %s: %s (the previous contents "
				    "stay in use)", t->ref, why);
			} else {
				ents_free(ft->cur);
				ft->cur = e;
				ft->st = st;
				log_info("table %s reloaded: %zu entries",
				    t->ref, e->n);
			}
		}
	}
	r = ents_lookup(ft->cur, key, val, vallen);
	pthread_mutex_unlock(&ft->mu);
	(void)err;
	(void)errlen;
	return r;
}

static void
file_close(struct table *t)
{
	struct filetab *ft = t->priv;

	if (ft == NULL)
		return;
	ents_free(ft->cur);
	pthread_mutex_destroy(&ft->mu);
	free(ft);
}

const struct table_backend table_file_backend = {
	"file", file_open, file_lookup, file_close
};
