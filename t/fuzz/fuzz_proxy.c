/* The PROXY protocol header, versions 1 and 2, with its TLVs. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "core/proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi;
	char desc[512];
	size_t n;
	int r;

	r = proxy_parse(data, size, &pi);
	if (r > 0) {
		if ((size_t)r > size)
			__builtin_trap();
		proxy_describe(&pi, desc, sizeof(desc));
		if (strlen(desc) >= sizeof(desc))
			__builtin_trap();
	}
	/* Every shorter prefix of an accepted header asks for more. */
	if (r > 0)
		for (n = 1; n < (size_t)r; n++)
			if (proxy_parse(data, n, &pi) != 0)
				__builtin_trap();
	(void)proxy_looks_like(data, size);
	return 0;
}
