/*
 * mtasts: SMTP MTA Strict Transport Security (RFC 8461), the client side.
 *
 * sts_lookup() finds a mail domain's policy: the _mta-sts TXT record
 * says whether there is one and its id; the policy itself comes over
 * HTTPS from https://mta-sts.DOMAIN/.well-known/mta-sts.txt (certificate
 * checked, at most STS_BODY_MAX bytes, no redirects, bounded time) and is
 * kept in a cache directory until its max_age runs out.  A policy whose
 * id the TXT record still names is not fetched again.
 */
#ifndef MTASTS_H
#define MTASTS_H

#include <stddef.h>
#include <time.h>

#include "lib/dns.h"

#define STS_BODY_MAX	65536	/* RFC 8461 3.3: 64 KiB */
#define STS_MX_MAX	16	/* mx: lines kept */
#define STS_ID_MAX	32	/* RFC 8461 3.1: 1*32(ALPHA / DIGIT) */
#define STS_MAX_AGE_MAX	31557600UL	/* RFC 8461 3.2: one year */

enum sts_mode {
	STS_MODE_NONE,
	STS_MODE_TESTING,
	STS_MODE_ENFORCE,
};

struct sts_policy {
	enum sts_mode	 mode;
	unsigned long	 max_age;	/* seconds */
	char		 id[STS_ID_MAX + 1];
	char		 mx[STS_MX_MAX][DNS_NAME_MAX + 1];
	size_t		 nmx;
	time_t		 fetched;
	char		 text[1024];	/* the policy's fields, "\n" between
					   them, for reports */
};

/*
 * The policy of domain.  1 found (*p filled), 0 none.  When the domain
 * announces a policy that cannot be had (and none is cached), 0 with
 * *failure set to an RFC 8460 result type ("sts-policy-fetch-error",
 * "sts-policy-invalid", "sts-webpki-invalid") and note saying why.
 * cachedir may be NULL (no cache); cafile adds trusted CAs for the fetch.
 */
int	sts_lookup(const char *domain, const char *cachedir, const char *cafile,
	    unsigned timeout, struct sts_policy *p, const char **failure,
	    char *note, size_t notelen);
/* 1 if the MX host name matches one of the policy's mx patterns. */
int	sts_mx_match(const struct sts_policy *, const char *host);

/* The pure parts, exposed for tests. */
/* Parses a policy body.  0, or -1 with err set. */
int	sts_parse(const char *text, size_t len, struct sts_policy *p,
	    char *err, size_t errlen);
/* The id of a "v=STSv1; id=..." TXT record.  0, or -1 if it is not one. */
int	sts_txt_id(const char *txt, char *id, size_t idlen);
/* 1 if host matches pattern ("mx.example.com" or "*.example.com"). */
int	sts_pattern_match(const char *pattern, const char *host);

#endif
