#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "str.h"

int
fs_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t r;

	while (n > 0) {
		r = write(fd, c, n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int
fs_sync_dir(const char *path)
{
	int fd, r, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
fs_mkdirs(const char *path, int mode)
{
	char buf[PATH_MAX];
	char *p;

	if (str_lcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, (mode_t)mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

void
fs_rfc5322_date(char *buf, size_t len, time_t t)
{
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;
	char sign = '+';

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	    off / 60, off % 60);
}

int
fs_conf_path(const char *conffile, const char *path, char *out, size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX], *slash;
	const char *sep;
	size_t n;

	if (path[0] == '/') {
		if (str_lcpy(out, path, len) >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	if (str_lcpy(dir, conffile, sizeof(dir)) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) == NULL)
		str_lcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (realpath(dir, real) == NULL)
		return -1;
	/* real has no symbolic links left, so ".." is simply its parent. */
	for (;;) {
		if (strncmp(path, "./", 2) == 0)
			path += 2;
		else if (strcmp(path, ".") == 0)
			path += 1;
		else if (strncmp(path, "../", 3) == 0 ||
		    strcmp(path, "..") == 0) {
			path += path[2] == '/' ? 3 : 2;
			if ((slash = strrchr(real, '/')) != NULL)
				slash[slash == real ? 1 : 0] = '\0';
		} else if (path[0] == '/')
			path++;
		else
			break;
	}
	n = strlen(real);
	sep = (n > 0 && real[n - 1] == '/') || path[0] == '\0' ? "" : "/";
	if ((size_t)snprintf(out, len, "%s%s%s", real, sep, path) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

void
fs_lf_init(struct fs_lf *lf, int fd, off_t off)
{
	lf->fd = fd;
	lf->off = off;
	lf->cr = 0;
	lf->eof = 0;
}

ssize_t
fs_lf_read(struct fs_lf *lf, char *buf, size_t len)
{
	size_t i, o = 0, want;
	ssize_t n;

	if (len < 2)
		return -1;
	while (o == 0) {
		if (lf->eof) {
			if (lf->cr) {
				buf[o++] = '\r';
				lf->cr = 0;
			}
			return (ssize_t)o;
		}
		/* Leave room for a held-back CR. */
		want = len - 1 < sizeof(lf->in) ? len - 1 : sizeof(lf->in);
		n = pread(lf->fd, lf->in, want, lf->off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			lf->eof = 1;
			continue;
		}
		lf->off += n;
		for (i = 0; i < (size_t)n; i++) {
			char c = lf->in[i];

			if (lf->cr) {
				lf->cr = 0;
				if (c != '\n')
					buf[o++] = '\r';
			}
			if (c == '\r')
				lf->cr = 1;
			else
				buf[o++] = c;
		}
	}
	return (ssize_t)o;
}
