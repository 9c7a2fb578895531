/*
 * flushcost: what one fdatasync(2) of a small write costs on the file
 * system holding DIR, when the write goes at the file's end (as into a
 * new journal segment) and when it goes over blocks the file already has
 * (as into a spare segment).
 *
 *	cc -O2 -o /tmp/flushcost bench/flushcost.c
 *	/tmp/flushcost DIR [FLUSHES [BYTES]]	(default 2000, 4500)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Milliseconds a flush, or -1. */
static double
run(const char *path, long n, size_t len, int in_place)
{
	static char zeros[1 << 20];
	char *buf;
	double t;
	off_t off, size = (off_t)n * (off_t)len;
	long i;
	int fd;

	if ((buf = malloc(len)) == NULL ||
	    (fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1) {
		free(buf);
		return -1;
	}
	memset(buf, 'x', len);
	for (off = 0; in_place && off < size; off += (off_t)sizeof(zeros))
		if (pwrite(fd, zeros, sizeof(zeros), off) !=
		    (ssize_t)sizeof(zeros))
			goto fail;
	if (in_place && fsync(fd) == -1)
		goto fail;
	t = now();
	for (i = 0; i < n; i++)
		if (pwrite(fd, buf, len, (off_t)i * (off_t)len) !=
		    (ssize_t)len || fdatasync(fd) == -1)
			goto fail;
	t = now() - t;
	close(fd);
	(void)unlink(path);
	free(buf);
	return t * 1000 / (double)n;
fail:
	close(fd);
	(void)unlink(path);
	free(buf);
	return -1;
}

int
main(int argc, char *argv[])
{
	char path[4096];
	long n = argc > 2 ? atol(argv[2]) : 2000;
	long len = argc > 3 ? atol(argv[3]) : 4500;
	double a, b;

	if (argc < 2 || argc > 4 || n < 1 || len < 1 || len > 1 << 24) {
		fprintf(stderr, "usage: flushcost dir [flushes [bytes]]\n");
		return EX_USAGE;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/flushcost.%ld",
	    argv[1], (long)getpid()) >= sizeof(path)) {
		fprintf(stderr, "flushcost: %s: path too long\n", argv[1]);
		return EX_USAGE;
	}
	if ((a = run(path, n, (size_t)len, 0)) < 0 ||
	    (b = run(path, n, (size_t)len, 1)) < 0) {
		fprintf(stderr, "flushcost: %s: %s\n", path, strerror(errno));
		return EX_IOERR;
	}
	printf("%ld flushes of %ld bytes: at the end %.3f ms, "
	    "in place %.3f ms\n", n, len, a, b);
	return 0;
}
