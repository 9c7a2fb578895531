#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clientext.h"

/* The value of "NAME=digits" at p (n bytes) when the name is name. */
static int
limit_value(const char *p, size_t n, const char *name, unsigned int *v)
{
	size_t nl = strlen(name), i;
	unsigned long val = 0;

	if (n <= nl + 1 || strncasecmp(p, name, nl) != 0 || p[nl] != '=')
		return 0;
	for (i = nl + 1; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		val = val * 10 + (unsigned long)(p[i] - '0');
		if (val > CLIENTEXT_LIMIT_MAX)
			return 0;
	}
	/* RFC 9422 4: zero is not a limit one can honour. */
	if (val == 0)
		return 0;
	*v = (unsigned int)val;
	return 1;
}

void
clientext_limits_parse(const char *params, size_t len,
    struct clientext_limits *l)
{
	const char *p = params, *end = params + len, *w;

	l->rcptmax = 0;
	l->mailmax = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		for (w = p; p < end && *p != ' '; p++)
			;
		if (p == w)
			break;
		if (!limit_value(w, (size_t)(p - w), "RCPTMAX", &l->rcptmax))
			(void)limit_value(w, (size_t)(p - w), "MAILMAX",
			    &l->mailmax);
	}
}

int
clientext_requiretls_ok(int tls_active, const char *tls_auth, int pinned,
    int offered, char *why, size_t whylen)
{
	if (!tls_active) {
		snprintf(why, whylen, "the session is not encrypted");
		return 0;
	}
	if (pinned) {
		snprintf(why, whylen, "the certificate was checked against a "
		    "pin, which does not verify the host name");
		return 0;
	}
	if (tls_auth == NULL || (strcmp(tls_auth, "DANE") != 0 &&
	    strcmp(tls_auth, "MTA-STS") != 0 &&
	    strcmp(tls_auth, "verified") != 0)) {
		snprintf(why, whylen, "the certificate was not verified "
		    "(%s)", tls_auth != NULL ? tls_auth : "unknown");
		return 0;
	}
	if (!offered) {
		snprintf(why, whylen, "the server does not offer REQUIRETLS");
		return 0;
	}
	return 1;
}
