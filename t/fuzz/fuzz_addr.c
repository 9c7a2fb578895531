/* RFC 5321 paths with every combination of flags. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "lib/addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a;
	const char *why;
	size_t used;
	int flags;

	for (flags = 0; flags < 16; flags++)
		if (addr_parse_path((const char *)data, size, flags, &a, &used,
		    &why) == ADDR_OK && (used > size ||
		    strlen(a.mailbox) > ADDR_PATH_MAX))
			__builtin_trap();
	(void)addr_valid_domain((const char *)data, size, 1);
	return 0;
}
