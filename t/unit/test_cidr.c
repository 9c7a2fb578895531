#include "config.h"

#include <string.h>

#include <arpa/inet.h>
#include <stdio.h>

#include "lib/net.h"
#include "policy/cidr.h"
#include "tests.h"

struct cidr_case {
	const char	*net;
	const char	*addr;
	int		 want;
};

static const struct cidr_case cases[] = {
	{ "192.0.2.0/24", "192.0.2.1", 1 },
	{ "192.0.2.0/24", "192.0.3.1", 0 },
	{ "192.0.2.0/25", "192.0.2.127", 1 },
	{ "192.0.2.0/25", "192.0.2.128", 0 },
	{ "192.0.2.7", "192.0.2.7", 1 },
	{ "192.0.2.7", "192.0.2.8", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "2001:db8::1", 0 },
	{ "2001:db8::/32", "2001:db8:1::5", 1 },
	{ "2001:db8::/32", "2001:db9::5", 0 },
	{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "::1", "::1", 1 },
	/* An IPv4-mapped IPv6 peer matches IPv4 entries, not IPv6 ones. */
	{ "127.0.0.0/8", "::ffff:127.0.0.9", 1 },
	{ "::ffff:0:0/96", "::ffff:127.0.0.9", 0 },
	{ "10.0.0.0/8", "::ffff:11.0.0.1", 0 },
};

/* A sockaddr for addr as the kernel would give it (mapped stays mapped). */
static void
sockaddr_of(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
}

static void
test_match(void)
{
	struct sockaddr_storage ss;
	struct cidr c;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(cidr_parse(cases[i].net, &c, &why), 0);
		sockaddr_of(cases[i].addr, &ss);
		if (cidr_match(&c, (struct sockaddr *)&ss) != cases[i].want)
			fprintf(stderr, "\n%s in %s: got %d, want %d\n",
			    cases[i].addr, cases[i].net, !cases[i].want,
			    cases[i].want);
		CU_ASSERT_EQUAL(cidr_match(&c, (struct sockaddr *)&ss),
		    cases[i].want);
	}
}

static void
test_parse_errors(void)
{
	struct cidr c;
	const char *why;
	char buf[64];

	CU_ASSERT_EQUAL(cidr_parse("192.0.2.1/24", &c, &why), -1);	/* host bits */
	CU_ASSERT_EQUAL(cidr_parse("192.0.2.0/33", &c, &why), -1);
	CU_ASSERT_EQUAL(cidr_parse("192.0.2.0/", &c, &why), -1);
	CU_ASSERT_EQUAL(cidr_parse("192.0.2.0/x", &c, &why), -1);
	CU_ASSERT_EQUAL(cidr_parse("example.com", &c, &why), -1);
	CU_ASSERT_EQUAL(cidr_parse("2001:db8::/129", &c, &why), -1);
	CU_ASSERT_EQUAL(cidr_parse("10.0.0.0/8", &c, &why), 0);
	cidr_format(&c, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "10.0.0.0/8");
}

int
suite_cidr(void)
{
	CU_pSuite s = CU_add_suite("cidr", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "v4, v6 and mapped matching (table)", test_match) == NULL ||
	    CU_add_test(s, "parse errors", test_parse_errors) == NULL)
		return -1;
	return 0;
}
