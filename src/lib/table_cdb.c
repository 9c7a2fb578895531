/*
 * table_cdb: constant databases (tinycdb) for large tables, and their
 * compiler (smtpq makemap).
 *
 * The file is mapped at open; at lookup it is checked at most once a
 * second, and when makemap has replaced it (a new inode, size or time)
 * the new one is mapped.  Keys are stored lower case, without a NUL.
 */
#include "config.h"

#include <sys/stat.h>

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "str.h"
#include "table.h"

struct cdbtab {
	pthread_mutex_t	 mu;
	char		 path[TABLE_REF_MAX];
	int		 fd;		/* -1: none mapped */
	struct cdb	 db;
	struct stat	 st;
	time_t		 checked;
};

static int
cdb_map(struct cdbtab *ct, char *err, size_t errlen)
{
	struct stat st;
	struct cdb db;
	int fd;

	if ((fd = open(ct->path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", ct->path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || cdb_init(&db, fd) != 0) {
		snprintf(err, errlen, "%s: not a CDB file (make it with smtpq "
		    "makemap -t cdb)", ct->path);
		close(fd);
		return -1;
	}
	if (ct->fd != -1) {
		cdb_free(&ct->db);
		close(ct->fd);
	}
	ct->fd = fd;
	ct->db = db;
	ct->st = st;
	return 0;
}

static int
cdbt_open(struct table *t, const char *arg, char *err, size_t errlen)
{
	struct cdbtab *ct;

	if (arg[0] != '/') {
		snprintf(err, errlen, "%s: the path must be absolute",
		    table_ref(t));
		return -1;
	}
	if ((ct = calloc(1, sizeof(*ct))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ct->fd = -1;
	str_lcpy(ct->path, arg, sizeof(ct->path));
	if (cdb_map(ct, err, errlen) == -1) {
		free(ct);
		return -1;
	}
	ct->checked = time(NULL);
	pthread_mutex_init(&ct->mu, NULL);
	table_set_priv(t, ct);
	return 0;
}

static void
cdbt_recheck(struct table *t, struct cdbtab *ct)
{
	struct stat st;
	time_t now = time(NULL);
	char why[512];

	if (now - ct->checked < TABLE_RECHECK && now >= ct->checked)
		return;
	ct->checked = now;
	if (stat(ct->path, &st) == 0 && st.st_ino == ct->st.st_ino &&
	    st.st_dev == ct->st.st_dev && st.st_size == ct->st.st_size &&
	    st.st_mtim.tv_sec == ct->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ct->st.st_mtim.tv_nsec)
		return;
	if (cdb_map(ct, why, sizeof(why)) == -1) {
		/* Logged once per change: remember what was seen. */
		if (stat(ct->path, &ct->st) == -1)
			memset(&ct->st, 0, sizeof(ct->st));
		log_err("table %s: %s (the previous contents stay in use)",
		    table_ref(t), why);
	} else
		log_info("table %s reloaded", table_ref(t));
}

static enum table_result
cdbt_lookup(struct table *t, const char *key, char *val, size_t vallen,
    char *err, size_t errlen)
{
	struct cdbtab *ct = table_priv(t);
	enum table_result r = TABLE_NOTFOUND;
	unsigned int n;
	int found;

	pthread_mutex_lock(&ct->mu);
	cdbt_recheck(t, ct);
	found = cdb_find(&ct->db, key, (unsigned)strlen(key));
	if (found < 0) {
		snprintf(err, errlen, "%s: damaged CDB file", ct->path);
		r = TABLE_TEMP;
	} else if (found > 0) {
		n = cdb_datalen(&ct->db);
		if (n >= vallen)
			n = (unsigned)vallen - 1;
		if (cdb_read(&ct->db, val, n, cdb_datapos(&ct->db)) != 0) {
			snprintf(err, errlen, "%s: damaged CDB file", ct->path);
			r = TABLE_TEMP;
		} else {
			val[n] = '\0';
			r = TABLE_FOUND;
		}
	}
	pthread_mutex_unlock(&ct->mu);
	return r;
}

static void
cdbt_close(struct table *t)
{
	struct cdbtab *ct = table_priv(t);

	if (ct == NULL)
		return;
	if (ct->fd != -1) {
		cdb_free(&ct->db);
		close(ct->fd);
	}
	pthread_mutex_destroy(&ct->mu);
	free(ct);
}

const struct table_backend table_cdb_backend = {
	"cdb", cdbt_open, cdbt_lookup, cdbt_close
};

/* --- the compiler --- */

struct make {
	struct cdb_make	 cm;
	size_t		 n;
};

static int
make_add(void *arg, const char *key, const char *val, unsigned int line,
    char *err, size_t errlen)
{
	struct make *m = arg;
	char k[TABLE_KEY_MAX + 1], *p;
	int rc;

	(void)line;
	if (str_lcpy(k, key, sizeof(k)) >= sizeof(k) ||
	    strlen(val) > TABLE_VALUE_MAX) {
		snprintf(err, errlen, "key or value too long");
		return -1;
	}
	for (p = k; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	rc = cdb_make_put(&m->cm, k, (unsigned)strlen(k), val,
	    (unsigned)strlen(val), CDB_PUT_INSERT);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write: %s", strerror(errno));
		return -1;
	}
	if (rc > 0) {
		snprintf(err, errlen, "\"%.100s\" is listed twice", k);
		return -1;
	}
	m->n++;
	return 0;
}

int
table_make_cdb(const char *src, const char *dst, size_t *count, char *err,
    size_t errlen)
{
	char tmp[TABLE_REF_MAX + 16], dir[TABLE_REF_MAX], *slash;
	struct make m;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", dst) >=
	    sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", dst);
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	memset(&m, 0, sizeof(m));
	if (cdb_make_start(&m.cm, fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (table_parse_file(src, make_add, &m, err, errlen) == -1) {
		(void)cdb_make_finish(&m.cm);
		goto fail;
	}
	if (cdb_make_finish(&m.cm) != 0 || fchmod(fd, 0644) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) == -1) {
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto fail;
	}
	str_lcpy(dir, dst, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	} else
		str_lcpy(dir, ".", sizeof(dir));
	if (fs_sync_dir(dir) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	*count = m.n;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	return -1;
}
