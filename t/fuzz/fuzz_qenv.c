/* A queue file's envelope, as the queue runner reads it from the spool. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "queue/envelope.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope *q = NULL;
	char err[256];

	if (envelope_parse((const char *)data, size, &q, err,
	    sizeof(err)) == 0)
		envelope_free(&q);
	return 0;
}
