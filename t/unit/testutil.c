#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

void
tu_check(int ok, unsigned int line, const char *file, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* CUnit copies the message into its failure record. */
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, file, "",
	    CU_FALSE);
}

int
tu_mkdtemp(char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	if ((size_t)snprintf(buf, len, "%s/unit.XXXXXX", tmp) >= len)
		return -1;
	return mkdtemp(buf) != NULL ? 0 : -1;
}

void
tu_rmtree(const char *dir)
{
	char p[4096];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir,
		    de->d_name) < sizeof(p))
			(void)unlink(p);
	}
	(void)closedir(d);
	(void)rmdir(dir);
}

int
tu_write_file(const char *path, const void *data, size_t len, int mode)
{
	const char *p = data;
	ssize_t r;
	int fd;

	if (len == (size_t)-1)
		len = strlen(data);
	(void)unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	while (len > 0) {
		r = write(fd, p, len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			(void)close(fd);
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	/* fchmod, not the open mode: the umask must not weaken the test. */
	if (fchmod(fd, (mode_t)mode) == -1) {
		(void)close(fd);
		return -1;
	}
	return close(fd);
}

const char *
tu_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		abort();
	return buf;
}

/* 1 when pid is gone or a zombie, within ten seconds. */
int
tu_pid_gone(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	int i, dead = 0;

	for (i = 0; i < 1000 && !dead; i++) {
		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
		if ((f = fopen(path, "r")) == NULL) {
			dead = 1;
			break;
		}
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
		    (p[2] == 'Z' || p[2] == 'X'))
			dead = 1;
		fclose(f);
		if (!dead)
			usleep(10000);
	}
	return dead;
}
