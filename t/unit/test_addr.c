#include "config.h"

#include <string.h>

#include "lib/addr.h"
#include "tests.h"

struct addr_case {
	const char	*in;
	int		 flags;
	int		 want;		/* enum addr_error */
	const char	*mailbox;	/* when ADDR_OK */
	size_t		 used;		/* 0: the whole input */
};

static const struct addr_case cases[] = {
	{ "<user@example.com>", 0, ADDR_OK, "user@example.com", 0 },
	{ "<>", ADDR_NULL_OK, ADDR_OK, "", 0 },
	{ "<>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<\"john doe\"@example.com>", 0, ADDR_OK, "\"john doe\"@example.com", 0 },
	{ "<\"a\\\"b\"@example.com>", 0, ADDR_OK, "\"a\\\"b\"@example.com", 0 },
	{ "<user@[192.0.2.1]>", 0, ADDR_OK, "user@[192.0.2.1]", 0 },
	{ "<user@[IPv6:2001:db8::1]>", 0, ADDR_OK, "user@[IPv6:2001:db8::1]", 0 },
	{ "<@a.example,@b.example:user@c.example>", 0, ADDR_OK, "user@c.example", 0 },
	{ "<user@example.com.>", 0, ADDR_OK, "user@example.com", 0 },
	{ "<Postmaster>", ADDR_POSTMASTER_OK, ADDR_OK, "Postmaster", 0 },
	{ "<Postmaster>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "user@example.com", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "user@example.com", ADDR_NOBRACKETS_OK, ADDR_OK, "user@example.com", 0 },
	{ "<user@example.com", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<.user@example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<us..er@example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user.@example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@-example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@example-.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@exa_mple.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[1.2.3.4>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[300.1.2.3]>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[192.0.2]>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[example]>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[IPv6:2001:db8::zz]>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@[x-tag:some.thing]>", 0, ADDR_OK, "user@[x-tag:some.thing]", 0 },
	{ "<user@[ipv6:::1]>", 0, ADDR_OK, "user@[ipv6:::1]", 0 },
	{ "<\"unterminated@example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<us er@example.com>", 0, ADDR_ESYNTAX, NULL, 0 },
	{ "<j\xc3\xb6rg@example.com>", 0, ADDR_EUTF8, NULL, 0 },
	{ "<j\xc3\xb6rg@example.com>", ADDR_UTF8_OK, ADDR_OK, "j\xc3\xb6rg@example.com", 0 },
	{ "<user@b\xc3\xbc\x63her.example>", ADDR_UTF8_OK, ADDR_OK, "user@b\xc3\xbc\x63her.example", 0 },
	{ "<j\xc3rg@example.com>", ADDR_UTF8_OK, ADDR_ESYNTAX, NULL, 0 },
	{ "<\xc0\xafx@example.com>", ADDR_UTF8_OK, ADDR_ESYNTAX, NULL, 0 },
	{ "<user@example.com> SIZE=10", 0, ADDR_OK, "user@example.com", 18 },
	{ "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com>",
	    0, ADDR_ETOOLONG, NULL, 0 },
};

static void
test_table(void)
{
	size_t i, used;
	struct addr a;
	const char *why;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];

		r = addr_parse_path(c->in, strlen(c->in), c->flags, &a, &used, &why);
		if (r != c->want)
			fprintf(stderr, "\n%s: got %d (%s), want %d\n", c->in, r,
			    why, c->want);
		CU_ASSERT_EQUAL(r, c->want);
		if (r != ADDR_OK || c->want != ADDR_OK)
			continue;
		if (strcmp(a.mailbox, c->mailbox) != 0)
			fprintf(stderr, "\n%s: got mailbox %s, want %s\n", c->in,
			    a.mailbox, c->mailbox);
		CU_ASSERT_STRING_EQUAL(a.mailbox, c->mailbox);
		CU_ASSERT_EQUAL(used, c->used ? c->used : strlen(c->in));
	}
}

static void
test_parts(void)
{
	struct addr a;
	size_t used;

	CU_ASSERT_EQUAL(addr_parse_path("<x@[10.0.0.1]>", 14, 0, &a, &used, NULL), ADDR_OK);
	CU_ASSERT_TRUE(a.literal);
	CU_ASSERT_STRING_EQUAL(addr_domain(&a), "[10.0.0.1]");
	CU_ASSERT_EQUAL(addr_parse_path("<@r.example:x@y.example>", 24, 0, &a, &used, NULL), ADDR_OK);
	CU_ASSERT_TRUE(a.routed);
	CU_ASSERT_STRING_EQUAL(addr_domain(&a), "y.example");
	CU_ASSERT_EQUAL(addr_parse_path("<>", 2, ADDR_NULL_OK, &a, &used, NULL), ADDR_OK);
	CU_ASSERT_TRUE(a.is_null);
	CU_ASSERT_STRING_EQUAL(addr_domain(&a), "");
}

static void
test_domains(void)
{
	CU_ASSERT_TRUE(addr_valid_domain("example.com", 11, 0));
	CU_ASSERT_TRUE(addr_valid_domain("a", 1, 0));
	CU_ASSERT_FALSE(addr_valid_domain("", 0, 0));
	CU_ASSERT_FALSE(addr_valid_domain("a..b", 4, 0));
	CU_ASSERT_FALSE(addr_valid_domain("-a.b", 4, 0));
	CU_ASSERT_FALSE(addr_valid_domain("b\xc3\xbc.de", 6, 0));
	CU_ASSERT_TRUE(addr_valid_domain("b\xc3\xbc.de", 6, 1));
}

/* One meaning of "*.dom" for ourdomains, routes and access rules. */
static void
test_domain_match(void)
{
	CU_ASSERT_TRUE(addr_domain_match("*", "anything.example"));
	CU_ASSERT_TRUE(addr_domain_match("example.com", "Example.COM"));
	CU_ASSERT_TRUE(addr_domain_match("example.com", "example.com."));
	CU_ASSERT_TRUE(addr_domain_match("example.com.", "example.com"));
	CU_ASSERT_FALSE(addr_domain_match("example.com", "a.example.com"));
	CU_ASSERT_TRUE(addr_domain_match("*.example.com", "a.example.com"));
	CU_ASSERT_TRUE(addr_domain_match("*.example.com", "A.B.Example.Com."));
	CU_ASSERT_FALSE(addr_domain_match("*.example.com", "example.com"));
	CU_ASSERT_FALSE(addr_domain_match("*.example.com", "example.com."));
	CU_ASSERT_FALSE(addr_domain_match("*.example.com", "badexample.com"));
	CU_ASSERT_FALSE(addr_domain_match("*.example.com", ".example.com"));
	CU_ASSERT_TRUE(addr_domain_match("[192.0.2.1]", "[192.0.2.1]"));
	CU_ASSERT_FALSE(addr_domain_match("[192.0.2.1]", "[192.0.2.10]"));
}

/* Addresses given on a command line, without <>. */
static void
test_bare(void)
{
	char longlocal[300];

	CU_ASSERT(addr_valid_bare("user@example.org", 0));
	CU_ASSERT(addr_valid_bare("Postmaster", 0));
	CU_ASSERT(!addr_valid_bare("", 0));
	CU_ASSERT(addr_valid_bare("", 1));
	CU_ASSERT(addr_valid_bare("j\xc3\xb6rg@example.org", 0));
	CU_ASSERT(!addr_valid_bare("a@b@example.org", 0));
	CU_ASSERT(!addr_valid_bare("user@example.org> X", 0));
	memset(longlocal, 'a', sizeof(longlocal) - 1);
	longlocal[sizeof(longlocal) - 1] = '\0';
	CU_ASSERT(!addr_valid_bare(longlocal, 0));
	CU_ASSERT(addr_has_8bit("j\xc3\xb6rg"));
	CU_ASSERT(!addr_has_8bit("joerg"));
}

int
suite_addr(void)
{
	CU_pSuite s = CU_add_suite("addr", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "RFC 5321 paths (table)", test_table) == NULL ||
	    CU_add_test(s, "literal, route, null", test_parts) == NULL ||
	    CU_add_test(s, "domain syntax", test_domains) == NULL ||
	    CU_add_test(s, "domain patterns", test_domain_match) == NULL ||
	    CU_add_test(s, "bare command-line addresses", test_bare) == NULL)
		return -1;
	return 0;
}
