/* DNS replies as the MX parser sees them. */
#include "config.h"

#include <stdint.h>

#include "lib/dns.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx mx[DNS_MX_MAX];
	size_t n = 0, nullmx = 0;

	if (dns_parse_mx(data, size, mx, DNS_MX_MAX, &n, &nullmx) == 0) {
		if (n > DNS_MX_MAX)
			__builtin_trap();
		dns_sort_mx(mx, n, NULL, NULL);
	}
	return 0;
}
