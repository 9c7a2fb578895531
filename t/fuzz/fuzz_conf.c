/*
 * The smtpd.conf compiler: the input is the file policy_load() reads.  A
 * file it accepts is also printed (smtpd -t) and checked for warnings.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	path[] = "/tmp/fuzz-conf-XXXXXX";
static FILE	*devnull;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p;
	char err[1024];
	int fd;

	if (devnull == NULL) {
		if ((fd = mkstemp(path)) == -1 || close(fd) == -1 ||
		    (devnull = fopen("/dev/null", "w")) == NULL)
			abort();
	}
	if ((fd = open(path, O_WRONLY | O_TRUNC)) == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size || close(fd) == -1)
		abort();
	err[0] = '\0';
	if ((p = policy_load(path, 0, NULL, err, sizeof(err))) == NULL) {
		if (err[0] == '\0' || strlen(err) >= sizeof(err))
			__builtin_trap();
		return 0;
	}
	policy_print(p, devnull);
	(void)policy_warnings(p, devnull);
	policy_unref(&p);
	return 0;
}
