#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "core/proxy.h"
#include "lib/net.h"
#include "tests.h"

#define SIG2	"\r\n\r\n\0\r\nQUIT\n"

struct proxy_case {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 want;		/* proxy_parse's return */
	int		 has_addr;
	const char	*src;		/* "addr port" */
	const char	*authority;
	const char	*ssl_version;
	const char	*ssl_cn;
};

#define B(s)	s, sizeof(s) - 1

static const struct proxy_case cases[] = {
	{ "v1 tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO",
	  0, 44, 1, "192.0.2.1 56324", NULL, NULL, NULL },
	{ "v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 4000 25\r\n",
	  0, 44, 1, "2001:db8::1 4000", NULL, NULL, NULL },
	{ "v1 unknown", "PROXY UNKNOWN\r\n", 0, 15, 0, NULL, NULL, NULL,
	  NULL },
	{ "v1 unknown with junk", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n", 0, 31,
	  0, NULL, NULL, NULL, NULL },
	{ "v1 prefix", "PROXY TCP4 192.0.2.1", 0, 0, 0, NULL, NULL, NULL,
	  NULL },
	{ "v1 signature prefix", "PROX", 0, 0, 0, NULL, NULL, NULL, NULL },
	{ "v1 bare LF", "PROXY TCP4 192.0.2.1 198.51.100.2 1 25\n", 0, -1, 0,
	  NULL, NULL, NULL, NULL },
	{ "v1 family mismatch", "PROXY TCP4 ::1 ::1 1 25\r\n", 0, -1, 0, NULL,
	  NULL, NULL, NULL },
	{ "v1 port too big", "PROXY TCP4 192.0.2.1 192.0.2.2 65536 25\r\n", 0,
	  -1, 0, NULL, NULL, NULL, NULL },
	{ "v1 leading zero", "PROXY TCP4 192.0.2.1 192.0.2.2 025 25\r\n", 0,
	  -1, 0, NULL, NULL, NULL, NULL },
	{ "v1 double space", "PROXY TCP4  192.0.2.1 192.0.2.2 1 25\r\n", 0,
	  -1, 0, NULL, NULL, NULL, NULL },
	{ "v1 few fields", "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", 0, -1, 0,
	  NULL, NULL, NULL, NULL },
	{ "v1 many fields", "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n", 0, -1,
	  0, NULL, NULL, NULL, NULL },
	{ "v1 bad proto", "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", 0, -1, 0,
	  NULL, NULL, NULL, NULL },
	{ "v1 bad address", "PROXY TCP4 192.0.2.300 192.0.2.2 1 2\r\n", 0, -1,
	  0, NULL, NULL, NULL, NULL },
	{ "v1 control byte", "PROXY TCP4 192.0.2.1\t192.0.2.2 1 2\r\n", 0, -1,
	  0, NULL, NULL, NULL, NULL },
	{ "v1 too long",
	  "PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 0, -1, 0,
	  NULL, NULL, NULL, NULL },
	{ "not a header", "EHLO client.example\r\n", 0, -1, 0, NULL, NULL,
	  NULL, NULL },
	{ "v2 tcp4", B(SIG2 "\x21\x11\x00\x0c" "\xc0\x00\x02\x01"
	  "\xc6\x33\x64\x02" "\x1f\x90\x00\x19"), 28, 1, "192.0.2.1 8080",
	  NULL, NULL, NULL },
	{ "v2 tcp6", B(SIG2 "\x21\x21\x00\x24"
	  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x00\x50\x00\x19"),
	  52, 1, "2001:db8::1 80", NULL, NULL, NULL },
	{ "v2 local", B(SIG2 "\x20\x00\x00\x00"), 16, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 local with addresses", B(SIG2 "\x20\x11\x00\x0c"
	  "\xc0\x00\x02\x01\xc6\x33\x64\x02\x1f\x90\x00\x19"), 28, 0, NULL,
	  NULL, NULL, NULL },
	{ "v2 unix", B(SIG2 "\x21\x31\x00\xd8"), 0, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 tlvs", B(SIG2 "\x21\x11\x00\x3d"
	  "\xc0\x00\x02\x01\xc6\x33\x64\x02\x1f\x90\x00\x19"
	  "\x02\x00\x0b" "mx.example." "\x04\x00\x02zz" "\xee\x00\x00"
	  "\x20\x00\x15" "\x01" "\x00\x00\x00\x00"
	  "\x21\x00\x07" "TLSv1.3" "\x22\x00\x03" "bob" "\x99\x00\x00"),
	  77, 1, "192.0.2.1 8080", "mx.example.", "TLSv1.3", "bob" },
	{ "v2 prefix", B(SIG2 "\x21\x11\x00\x0c" "\xc0\x00"), 0, 0, NULL,
	  NULL, NULL, NULL },
	{ "v2 signature prefix", B("\r\n\r\n\0\r"), 0, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 bad signature", B("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00"), -1,
	  0, NULL, NULL, NULL, NULL },
	{ "v2 version 1", B(SIG2 "\x11\x11\x00\x0c" "\xc0\x00\x02\x01"
	  "\xc6\x33\x64\x02" "\x1f\x90\x00\x19"), -1, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 command 2", B(SIG2 "\x22\x11\x00\x0c" "\xc0\x00\x02\x01"
	  "\xc6\x33\x64\x02" "\x1f\x90\x00\x19"), -1, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 udp", B(SIG2 "\x21\x12\x00\x0c" "\xc0\x00\x02\x01"
	  "\xc6\x33\x64\x02" "\x1f\x90\x00\x19"), -1, 0, NULL, NULL, NULL,
	  NULL },
	{ "v2 short addresses", B(SIG2 "\x21\x11\x00\x08" "\xc0\x00\x02\x01"
	  "\xc6\x33\x64\x02"), -1, 0, NULL, NULL, NULL, NULL },
	{ "v2 tlv overruns", B(SIG2 "\x21\x11\x00\x10"
	  "\xc0\x00\x02\x01\xc6\x33\x64\x02\x1f\x90\x00\x19"
	  "\x02\x00\x09" "x"), -1, 0, NULL, NULL, NULL, NULL },
	{ "v2 tlv truncated", B(SIG2 "\x21\x11\x00\x0e"
	  "\xc0\x00\x02\x01\xc6\x33\x64\x02\x1f\x90\x00\x19" "\x02\x00"),
	  -1, 0, NULL, NULL, NULL, NULL },
	{ "v2 ssl sub-tlv overruns", B(SIG2 "\x21\x11\x00\x18"
	  "\xc0\x00\x02\x01\xc6\x33\x64\x02\x1f\x90\x00\x19"
	  "\x20\x00\x09" "\x01\x00\x00\x00\x00" "\x21\x00\x09" "T"), -1, 0,
	  NULL, NULL, NULL, NULL },
	{ "v2 oversized", B(SIG2 "\x21\x11\xff\xff"), -1, 0, NULL, NULL, NULL,
	  NULL },
};

static void
test_table(void)
{
	struct proxy_info pi;
	char addr[NET_ADDRSTR_MAX], got[80];
	size_t i, len;
	int r, port;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct proxy_case *c = &cases[i];

		len = c->len ? c->len : strlen(c->in);
		r = proxy_parse((const unsigned char *)c->in, len, &pi);
		if (r != c->want)
			fprintf(stderr, "%s: got %d, want %d (%s)\n", c->name,
			    r, c->want, r == -1 ? pi.error : "");
		CU_ASSERT_EQUAL(r, c->want);
		if (r <= 0)
			continue;
		CU_ASSERT_EQUAL(pi.has_addr, c->has_addr);
		if (c->src != NULL) {
			CU_ASSERT_EQUAL_FATAL(net_ntop(
			    (struct sockaddr *)&pi.src, addr, sizeof(addr),
			    &port), 0);
			snprintf(got, sizeof(got), "%s %d", addr, port);
			if (strcmp(got, c->src) != 0)
				fprintf(stderr, "%s: got %s, want %s\n",
				    c->name, got, c->src);
			CU_ASSERT_STRING_EQUAL(got, c->src);
		}
		if (c->authority != NULL)
			CU_ASSERT_STRING_EQUAL(pi.authority, c->authority);
		if (c->ssl_version != NULL)
			CU_ASSERT_STRING_EQUAL(pi.ssl_version, c->ssl_version);
		if (c->ssl_cn != NULL)
			CU_ASSERT_STRING_EQUAL(pi.ssl_cn, c->ssl_cn);
	}
}

/* Every proper prefix of a valid header asks for more, never fails. */
static void
test_prefixes(void)
{
	struct proxy_info pi;
	size_t i, n, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].want <= 0)
			continue;
		len = (size_t)cases[i].want;
		for (n = 1; n < len; n++)
			CU_ASSERT_EQUAL(proxy_parse(
			    (const unsigned char *)cases[i].in, n, &pi), 0);
	}
}

static void
test_looks_like(void)
{
	CU_ASSERT_EQUAL(proxy_looks_like((const unsigned char *)"PROXY TCP4",
	    10), 1);
	CU_ASSERT_EQUAL(proxy_looks_like((const unsigned char *)SIG2, 12), 1);
	CU_ASSERT_EQUAL(proxy_looks_like((const unsigned char *)"EHLO x",
	    6), 0);
	CU_ASSERT_EQUAL(proxy_looks_like((const unsigned char *)"PROXYx",
	    6), 0);
}

int
suite_proxy(void)
{
	CU_pSuite s = CU_add_suite("proxy", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "v1 and v2 headers (table)", test_table) == NULL ||
	    CU_add_test(s, "prefixes ask for more", test_prefixes) == NULL ||
	    CU_add_test(s, "noticing a header", test_looks_like) == NULL)
		return -1;
	return 0;
}
