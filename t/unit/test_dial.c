#include "config.h"

#include <stdio.h>
#include <string.h>

#include "client/dial.h"
#include "tests.h"

static void
test_parse(void)
{
	static const struct {
		const char	*in;
		int		 ok;
		enum dial_kind	 kind;
		const char	*host;
		unsigned	 port;
		int		 literal, tls;
	} rows[] = {
		/* MX routes */
		{ "example.com", 1, DIAL_MX, "example.com", 25, 0, 0 },
		{ "example.com.", 1, DIAL_MX, "example.com", 25, 0, 0 },
		{ "mx!example.com", 1, DIAL_MX, "example.com", 25, 0, 0 },
		{ "net!example.com", 1, DIAL_MX, "example.com", 25, 0, 0 },
		{ "net!example.com!smtp", 1, DIAL_MX, "example.com", 25, 0, 0 },
		{ "/net.alt/net!example.com", 1, DIAL_MX, "example.com", 25, 0, 0 },
		/* hosts */
		{ "tcp!mail.example.com!587", 1, DIAL_HOST, "mail.example.com", 587, 0, 0 },
		{ "tcp!mail.example.com", 1, DIAL_HOST, "mail.example.com", 25, 0, 0 },
		{ "tcp!mail.example.com!submission", 1, DIAL_HOST, "mail.example.com", 587, 0, 0 },
		{ "tcp!mail.example.com!smtps", 1, DIAL_HOST, "mail.example.com", 465, 0, 1 },
		{ "net!mail.example.com!465", 1, DIAL_HOST, "mail.example.com", 465, 0, 1 },
		{ "net!mailhub", 1, DIAL_HOST, "mailhub", 25, 0, 0 },
		{ "mail.example.com:2525", 1, DIAL_HOST, "mail.example.com", 2525, 0, 0 },
		{ "mail.example.com:smtps", 1, DIAL_HOST, "mail.example.com", 465, 0, 1 },
		{ "localhost", 1, DIAL_HOST, "localhost", 25, 0, 0 },
		{ "localhost:465", 1, DIAL_HOST, "localhost", 465, 0, 1 },
		{ "127.0.0.1", 1, DIAL_HOST, "127.0.0.1", 25, 1, 0 },
		{ "127.0.0.1:2525", 1, DIAL_HOST, "127.0.0.1", 2525, 1, 0 },
		{ "[127.0.0.1]", 1, DIAL_HOST, "127.0.0.1", 25, 1, 0 },
		{ "[::1]:2525", 1, DIAL_HOST, "::1", 2525, 1, 0 },
		{ "[IPv6:2001:db8::1]", 1, DIAL_HOST, "2001:db8::1", 25, 1, 0 },
		{ "::1", 1, DIAL_HOST, "::1", 25, 1, 0 },
		{ "tcp![::1]!2525", 1, DIAL_HOST, "::1", 2525, 1, 0 },
		{ "tcp!192.0.2.7!smtp", 1, DIAL_HOST, "192.0.2.7", 25, 1, 0 },
		{ "net!192.0.2.7", 1, DIAL_HOST, "192.0.2.7", 25, 1, 0 },
		/* errors */
		{ "", 0, 0, NULL, 0, 0, 0 },
		{ "mail example.com", 0, 0, NULL, 0, 0, 0 },
		{ "udp!example.com", 0, 0, NULL, 0, 0, 0 },
		{ "tcp!example.com!nosuchservice", 0, 0, NULL, 0, 0, 0 },
		{ "tcp!a!b!c", 0, 0, NULL, 0, 0, 0 },
		{ "tcp!!25", 0, 0, NULL, 0, 0, 0 },
		{ "mx![127.0.0.1]", 0, 0, NULL, 0, 0, 0 },
		{ "example.com:0", 0, 0, NULL, 0, 0, 0 },
		{ "example.com:65536", 0, 0, NULL, 0, 0, 0 },
		{ "example.com:", 0, 0, NULL, 0, 0, 0 },
		{ "2001:db8::1:25x", 0, 0, NULL, 0, 0, 0 },
		{ "[::1", 0, 0, NULL, 0, 0, 0 },
		{ "[::1]x", 0, 0, NULL, 0, 0, 0 },
		{ "[not-an-address]", 0, 0, NULL, 0, 0, 0 },
		{ "a..b", 0, 0, NULL, 0, 0, 0 },
		{ ".example.com", 0, 0, NULL, 0, 0, 0 },
		{ "exa$mple.com", 0, 0, NULL, 0, 0, 0 },
	};
	struct dial d;
	char err[128];
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		err[0] = '\0';
		r = dial_parse(rows[i].in, &d, err, sizeof(err));
		if ((r == 0) != rows[i].ok) {
			fprintf(stderr, "\n\"%s\": got %s (%s), want %s\n",
			    rows[i].in, r == 0 ? "ok" : "error", err,
			    rows[i].ok ? "ok" : "error");
			CU_FAIL("dial_parse verdict");
			continue;
		}
		if (!rows[i].ok) {
			CU_ASSERT(err[0] != '\0');
			continue;
		}
		if (d.kind != rows[i].kind || strcmp(d.host, rows[i].host) != 0 ||
		    d.port != rows[i].port || d.literal != rows[i].literal ||
		    d.implicit_tls != rows[i].tls) {
			fprintf(stderr, "\n\"%s\": got kind %d host %s port %u "
			    "literal %d tls %d\n", rows[i].in, d.kind, d.host,
			    d.port, d.literal, d.implicit_tls);
			CU_FAIL("dial_parse fields");
		}
	}
}

static void
test_service(void)
{
	uint16_t port;

	CU_ASSERT_EQUAL(dial_service("smtp", &port), 0);
	CU_ASSERT_EQUAL(port, 25);
	CU_ASSERT_EQUAL(dial_service("SMTPS", &port), 0);
	CU_ASSERT_EQUAL(port, 465);
	CU_ASSERT_EQUAL(dial_service("587", &port), 0);
	CU_ASSERT_EQUAL(port, 587);
	CU_ASSERT_EQUAL(dial_service("", &port), -1);
	CU_ASSERT_EQUAL(dial_service("25x", &port), -1);
	CU_ASSERT_EQUAL(dial_service("70000", &port), -1);
}

int
suite_dial(void)
{
	CU_pSuite s = CU_add_suite("dial", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "dial strings", test_parse) == NULL ||
	    CU_add_test(s, "services", test_service) == NULL)
		return -1;
	return 0;
}
