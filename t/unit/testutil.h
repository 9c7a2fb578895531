/* Helpers shared by the unit tests: scratch directories and files. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <sys/types.h>

#include <stddef.h>

#include <CUnit/CUnit.h>

/* A CUnit assertion whose failure message is formatted ("got X, want Y"). */
void	tu_check(int ok, unsigned int line, const char *file,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define TU_CHECK(ok, ...)	tu_check((ok), __LINE__, __FILE__, __VA_ARGS__)

/* Makes a fresh directory under $TMPDIR (or /tmp) into buf.  0 or -1. */
int	tu_mkdtemp(char *buf, size_t len);
/* Removes the files in dir (one level) and dir itself. */
void	tu_rmtree(const char *dir);
/* Writes len bytes (or strlen when len is (size_t)-1) with mode.  0 or -1. */
int	tu_write_file(const char *path, const void *data, size_t len, int mode);
/* dir/name into buf, aborting the test run if it does not fit. */
const char *tu_path(char *buf, size_t len, const char *dir, const char *name);
/* 1 when pid has ended (gone, or a zombie), waiting two seconds at most. */
int	tu_pid_gone(pid_t pid);

#endif
