/*
 * Saved refused messages are for the postmaster to look at, not to fill
 * the disk: an old one is of no more use, and under a spam run the
 * newest matter most.  So the oldest go first.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "dump.h"

/* Files looked at in one pass; beyond that only the age rule applies. */
#define DUMP_SCAN_MAX	100000

struct dumpfile {
	char	 path[PATH_MAX];
	time_t	 mtime;
	off_t	 size;
};

static pthread_mutex_t	 prune_mu = PTHREAD_MUTEX_INITIALIZER;
static time_t		 last_prune;

static int	by_age(const void *, const void *);
static int	is_day(const char *);

static int
by_age(const void *a, const void *b)
{
	const struct dumpfile *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Only what spool_save() makes is touched: YYYYMMDD directories. */
static int
is_day(const char *name)
{
	return strlen(name) == 8 && strspn(name, "0123456789") == 8;
}

int
dump_prune(const char *dir, unsigned int max_age, size_t max_total,
    int force)
{
	struct dumpfile *files = NULL, *nf;
	size_t nfiles = 0, cap = 0, i;
	unsigned long long total = 0;
	char daypath[PATH_MAX];
	struct dirent *de, *fe;
	struct stat sb;
	DIR *d, *day;
	time_t now = time(NULL);
	int removed = 0;

	if (pthread_mutex_trylock(&prune_mu) != 0)
		return 0;	/* another session is at it */
	if (!force && last_prune != 0 && now - last_prune < DUMP_PRUNE_EVERY) {
		pthread_mutex_unlock(&prune_mu);
		return 0;
	}
	last_prune = now;
	if ((d = opendir(dir)) == NULL) {
		int e = errno;

		pthread_mutex_unlock(&prune_mu);
		errno = e;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_day(de->d_name) || (size_t)snprintf(daypath,
		    sizeof(daypath), "%s/%s", dir, de->d_name) >= sizeof(daypath) ||
		    (day = opendir(daypath)) == NULL)
			continue;
		while ((fe = readdir(day)) != NULL) {
			struct dumpfile f;

			if (fe->d_name[0] == '.' || (size_t)snprintf(f.path,
			    sizeof(f.path), "%s/%s", daypath, fe->d_name) >=
			    sizeof(f.path) || lstat(f.path, &sb) == -1 ||
			    !S_ISREG(sb.st_mode))
				continue;
			if (max_age != 0 && now - sb.st_mtime > (time_t)max_age) {
				if (unlink(f.path) == 0)
					removed++;
				continue;
			}
			if (max_total == 0 || nfiles >= DUMP_SCAN_MAX)
				continue;
			if (nfiles == cap) {
				size_t ncap = cap ? cap * 2 : 256;

				if ((nf = realloc(files, ncap * sizeof(*nf))) ==
				    NULL)
					continue;
				files = nf;
				cap = ncap;
			}
			f.mtime = sb.st_mtime;
			f.size = sb.st_size;
			files[nfiles++] = f;
			total += (unsigned long long)sb.st_size;
		}
		closedir(day);
		/* Fails, as it should, unless the day is now empty. */
		(void)rmdir(daypath);
	}
	closedir(d);
	if (max_total != 0 && total > max_total) {
		qsort(files, nfiles, sizeof(*files), by_age);
		for (i = 0; i < nfiles && total > max_total; i++)
			if (unlink(files[i].path) == 0) {
				total -= (unsigned long long)files[i].size;
				removed++;
			}
	}
	free(files);
	pthread_mutex_unlock(&prune_mu);
	if (removed > 0)
		log_info("dump: removed %d saved messages from %s", removed,
		    dir);
	return removed;
}
