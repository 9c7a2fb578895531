/* DNS replies as the TLSA (DANE) and TXT (MTA-STS, TLS-RPT) parsers see
 * them. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dns.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_tlsa *t;
	char (*txt)[DNS_TXT_MAX];
	size_t n = 0, i;

	if ((t = calloc(DNS_TLSA_MAX, sizeof(*t))) == NULL)
		return 0;
	if (dns_parse_tlsa(data, size, t, DNS_TLSA_MAX, &n) == 0) {
		if (n > DNS_TLSA_MAX)
			__builtin_trap();
		for (i = 0; i < n; i++)
			if (t[i].len > DNS_TLSA_DATA_MAX)
				__builtin_trap();
	}
	free(t);
	if ((txt = calloc(8, sizeof(*txt))) == NULL)
		return 0;
	if (dns_parse_txt(data, size, txt, 8, &n) == 0) {
		if (n > 8)
			__builtin_trap();
		for (i = 0; i < n; i++)
			if (strlen(txt[i]) >= DNS_TXT_MAX)
				__builtin_trap();
	}
	free(txt);
	return 0;
}
