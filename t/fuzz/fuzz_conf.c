/*
 * The smtpd.conf compiler: the input is the file conf_file_load() reads.  A
 * file it accepts is also printed (smtpd -t) and checked for warnings.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conffile.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	path[] = "/tmp/fuzz-conf-XXXXXX";
static FILE	*devnull;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_file *cf;
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
	if ((cf = conf_file_load(path, 0, NULL, err, sizeof(err))) == NULL) {
		if (err[0] == '\0' || strlen(err) >= sizeof(err))
			__builtin_trap();
		return 0;
	}
	conf_file_print(cf, devnull);
	(void)conf_file_warnings(cf, devnull);
	conf_file_unref(&cf);
	return 0;
}
