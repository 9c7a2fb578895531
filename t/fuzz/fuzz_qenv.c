/* A queue file's envelope, as the queue runner reads it from the spool. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "queue/qenv.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qenv *q = NULL;
	char err[256];

	if (qenv_parse((const char *)data, size, &q, err, sizeof(err)) == 0)
		qenv_free(&q);
	return 0;
}
