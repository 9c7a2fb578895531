#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dns.h"
#include "lib/net.h"
#include "lib/str.h"
#include "tests.h"

/*
 * A tiny DNS reply builder for the tests (the library itself only parses
 * with libresolv).
 */
struct pkt {
	unsigned char	b[4096];
	size_t		len;
};

static void
put16(struct pkt *p, unsigned v)
{
	p->b[p->len++] = (unsigned char)(v >> 8);
	p->b[p->len++] = (unsigned char)v;
}

static void
put32(struct pkt *p, unsigned long v)
{
	put16(p, (unsigned)(v >> 16));
	put16(p, (unsigned)(v & 0xffff));
}

static void
putname(struct pkt *p, const char *name)
{
	const char *dot;
	size_t n;

	while (*name != '\0') {
		dot = strchr(name, '.');
		n = dot ? (size_t)(dot - name) : strlen(name);
		p->b[p->len++] = (unsigned char)n;
		memcpy(p->b + p->len, name, n);
		p->len += n;
		name += n + (dot != NULL);
	}
	p->b[p->len++] = 0;
}

static void
header(struct pkt *p, unsigned an, const char *qname, unsigned qtype)
{
	p->len = 0;
	put16(p, 0x1234);	/* id */
	put16(p, 0x8180);	/* response, RD, RA, NOERROR */
	put16(p, 1);
	put16(p, an);
	put16(p, 0);
	put16(p, 0);
	putname(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

/* An MX answer owned by the question name (pointer to offset 12). */
static void
mx_rr(struct pkt *p, unsigned pref, const char *host)
{
	size_t rdlen_at;

	put16(p, 0xc00c);
	put16(p, 15);
	put16(p, 1);
	put32(p, 300);
	rdlen_at = p->len;
	put16(p, 0);
	put16(p, pref);
	putname(p, host);
	p->b[rdlen_at] = (unsigned char)((p->len - rdlen_at - 2) >> 8);
	p->b[rdlen_at + 1] = (unsigned char)(p->len - rdlen_at - 2);
}

static void
test_parse_mx(void)
{
	struct dns_mx mx[4];
	struct pkt p;
	size_t n, nullmx;

	header(&p, 3, "example.test", 15);
	mx_rr(&p, 20, "mx2.example.test");
	mx_rr(&p, 10, "mx1.example.test");
	mx_rr(&p, 10, "mx1b.example.test.");
	CU_ASSERT_EQUAL(dns_parse_mx(p.b, p.len, mx, 4, &n, &nullmx), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(nullmx, 0);
	CU_ASSERT_STRING_EQUAL(mx[0].host, "mx2.example.test");
	CU_ASSERT_EQUAL(mx[0].pref, 20);
	CU_ASSERT_STRING_EQUAL(mx[2].host, "mx1b.example.test");

	/* Only max records are kept. */
	CU_ASSERT_EQUAL(dns_parse_mx(p.b, p.len, mx, 2, &n, &nullmx), 0);
	CU_ASSERT_EQUAL(n, 2);

	/* RFC 7505 null MX. */
	header(&p, 1, "null.test", 15);
	mx_rr(&p, 0, "");
	CU_ASSERT_EQUAL(dns_parse_mx(p.b, p.len, mx, 4, &n, &nullmx), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(nullmx, 1);

	/* A truncated packet is an error, not a short list. */
	header(&p, 2, "example.test", 15);
	mx_rr(&p, 10, "mx1.example.test");
	mx_rr(&p, 20, "mx2.example.test");
	CU_ASSERT_EQUAL(dns_parse_mx(p.b, p.len - 5, mx, 4, &n, &nullmx), -1);
}

static void
test_parse_mx_skips_cname(void)
{
	struct dns_mx mx[4];
	struct pkt p;
	size_t n, nullmx, at;

	header(&p, 2, "alias.test", 15);
	/* alias.test CNAME real.test */
	put16(&p, 0xc00c);
	put16(&p, 5);
	put16(&p, 1);
	put32(&p, 300);
	at = p.len;
	put16(&p, 0);
	putname(&p, "real.test");
	p.b[at + 1] = (unsigned char)(p.len - at - 2);
	mx_rr(&p, 5, "mx.real.test");
	CU_ASSERT_EQUAL(dns_parse_mx(p.b, p.len, mx, 4, &n, &nullmx), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(mx[0].host, "mx.real.test");
	CU_ASSERT_EQUAL(mx[0].pref, 5);
}

static uint32_t
fake_rnd(void *arg)
{
	uint32_t *state = arg;

	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static void
test_sort_mx(void)
{
	struct dns_mx mx[6];
	static const unsigned prefs[] = { 30, 10, 20, 10, 10, 20 };
	static const char *names[] = { "e", "a", "c", "b", "x", "d" };
	uint32_t state;
	int seen_first[256] = { 0 };
	size_t i, run;

	for (i = 0; i < 6; i++) {
		str_lcpy(mx[i].host, names[i], sizeof(mx[i].host));
		mx[i].pref = prefs[i];
	}
	/* Without randomness: by preference, ties in their order. */
	dns_sort_mx(mx, 6, NULL, NULL);
	CU_ASSERT_STRING_EQUAL(mx[0].host, "a");
	CU_ASSERT_STRING_EQUAL(mx[1].host, "b");
	CU_ASSERT_STRING_EQUAL(mx[2].host, "x");
	CU_ASSERT_STRING_EQUAL(mx[3].host, "c");
	CU_ASSERT_STRING_EQUAL(mx[4].host, "d");
	CU_ASSERT_STRING_EQUAL(mx[5].host, "e");

	/* With it: preferences still ascend; ties get shuffled. */
	for (run = 0; run < 50; run++) {
		state = (uint32_t)run * 7919u + 1;
		dns_sort_mx(mx, 6, fake_rnd, &state);
		for (i = 1; i < 6; i++)
			CU_ASSERT(mx[i - 1].pref <= mx[i].pref);
		CU_ASSERT_EQUAL(mx[5].pref, 30);
		CU_ASSERT_STRING_EQUAL(mx[5].host, "e");
		seen_first[(unsigned char)mx[0].host[0]] = 1;
	}
	/* Each of the three preference-10 hosts came first some time. */
	CU_ASSERT(seen_first['a'] && seen_first['b'] && seen_first['x']);
	CU_ASSERT(!seen_first['c'] && !seen_first['e']);
}

static void
test_reverse_name(void)
{
	static const struct {
		const char *addr, *want;
	} rows[] = {
		{ "192.0.2.1", "1.2.0.192.in-addr.arpa" },
		{ "::ffff:10.1.2.3", "3.2.1.10.in-addr.arpa" },
		{ "2001:db8::1",
		  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
	};
	struct sockaddr_storage ss;
	struct sockaddr_in6 s6;
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&ss, 0, sizeof(ss));
		if (strchr(rows[i].addr, ':') != NULL) {
			/* Keep mapped addresses as AF_INET6 on purpose. */
			memset(&s6, 0, sizeof(s6));
			s6.sin6_family = AF_INET6;
			CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, rows[i].addr,
			    &s6.sin6_addr), 1);
			memcpy(&ss, &s6, sizeof(s6));
		} else
			CU_ASSERT_EQUAL_FATAL(net_pton(rows[i].addr, &ss), 0);
		CU_ASSERT_EQUAL(dns_reverse_name((struct sockaddr *)&ss, buf,
		    sizeof(buf)), 0);
		if (strcmp(buf, rows[i].want) != 0)
			fprintf(stderr, "\n%s: got %s, want %s\n",
			    rows[i].addr, buf, rows[i].want);
		CU_ASSERT_STRING_EQUAL(buf, rows[i].want);
	}
	/* Too small a buffer fails rather than truncating. */
	CU_ASSERT_EQUAL(net_pton("192.0.2.1", &ss), 0);
	CU_ASSERT_EQUAL(dns_reverse_name((struct sockaddr *)&ss, buf, 10), -1);
}

static void
test_status_str(void)
{
	CU_ASSERT_STRING_EQUAL(dns_status_str(DNS_OK), "ok");
	CU_ASSERT_PTR_NOT_NULL(strstr(dns_status_str(DNS_NULLMX), "null MX"));
}

static void
test_mail_domain_literal(void)
{
	/* Address literals need no lookup (and make none). */
	CU_ASSERT_EQUAL(dns_mail_domain("[192.0.2.1]"), DNS_OK);
}

/* One record of type type owned by the question name, rdata as given. */
static void
raw_rr(struct pkt *p, unsigned type, const void *rdata, size_t len)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put32(p, 300);
	put16(p, (unsigned)len);
	memcpy(p->b + p->len, rdata, len);
	p->len += len;
}

static void
test_parse_tlsa(void)
{
	static const unsigned char ee[] = { 3, 1, 1, 0xab, 0xcd, 0xef };
	static const unsigned char ta[] = { 2, 0, 0, 0x30, 0x82 };
	static const unsigned char shorty[] = { 3, 1 };
	unsigned char big[3 + DNS_TLSA_DATA_MAX + 1];
	struct dns_tlsa *t;
	struct pkt p;
	size_t n;

	CU_ASSERT_FATAL((t = calloc(4, sizeof(*t))) != NULL);
	header(&p, 3, "_25._tcp.mx.test", DNS_T_TLSA);
	raw_rr(&p, 5, "\2mx\4test", 9);	/* a CNAME on the way: skipped */
	raw_rr(&p, DNS_T_TLSA, ee, sizeof(ee));
	raw_rr(&p, DNS_T_TLSA, ta, sizeof(ta));
	CU_ASSERT_EQUAL(dns_parse_tlsa(p.b, p.len, t, 4, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(t[0].usage, 3);
	CU_ASSERT_EQUAL(t[0].selector, 1);
	CU_ASSERT_EQUAL(t[0].mtype, 1);
	CU_ASSERT_EQUAL(t[0].len, 3);
	CU_ASSERT(memcmp(t[0].data, "\xab\xcd\xef", 3) == 0);
	CU_ASSERT_EQUAL(t[1].usage, 2);
	CU_ASSERT_EQUAL(t[1].len, 2);
	/* Only max kept. */
	CU_ASSERT_EQUAL(dns_parse_tlsa(p.b, p.len, t, 1, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	/* rdata shorter than usage, selector and type: malformed. */
	header(&p, 1, "_25._tcp.mx.test", DNS_T_TLSA);
	raw_rr(&p, DNS_T_TLSA, shorty, sizeof(shorty));
	CU_ASSERT_EQUAL(dns_parse_tlsa(p.b, p.len, t, 4, &n), -1);
	/* Data longer than we keep: skipped, not cut. */
	memset(big, 0x11, sizeof(big));
	big[0] = 3;
	header(&p, 2, "_25._tcp.mx.test", DNS_T_TLSA);
	raw_rr(&p, DNS_T_TLSA, big, sizeof(big));
	raw_rr(&p, DNS_T_TLSA, ee, sizeof(ee));
	CU_ASSERT_EQUAL(dns_parse_tlsa(p.b, p.len, t, 4, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(t[0].len, 3);
	/* Truncated: an error. */
	CU_ASSERT_EQUAL(dns_parse_tlsa(p.b, p.len - 2, t, 4, &n), -1);
	free(t);
}

static void
test_parse_txt(void)
{
	static const unsigned char two[] = "\7v=STSv1\13; id=abc123";
	static const unsigned char over[] = "\20short";
	char (*txt)[DNS_TXT_MAX];
	unsigned char longrec[5 * 256];
	struct pkt p;
	size_t n, i;

	CU_ASSERT_FATAL((txt = calloc(4, sizeof(*txt))) != NULL);
	header(&p, 2, "_mta-sts.example.test", 16);
	/* Two strings of one record are joined (RFC 7208 3.3). */
	raw_rr(&p, 16, two, sizeof(two) - 1);
	raw_rr(&p, 16, "", 0);
	CU_ASSERT_EQUAL(dns_parse_txt(p.b, p.len, txt, 4, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_STRING_EQUAL(txt[0], "v=STSv1; id=abc123");
	CU_ASSERT_STRING_EQUAL(txt[1], "");
	/* A string running past its record: malformed. */
	header(&p, 1, "t.test", 16);
	raw_rr(&p, 16, over, sizeof(over) - 1);
	CU_ASSERT_EQUAL(dns_parse_txt(p.b, p.len, txt, 4, &n), -1);
	/* A record longer than DNS_TXT_MAX - 1: skipped. */
	for (i = 0; i < 5; i++) {
		longrec[i * 256] = 255;
		memset(longrec + i * 256 + 1, 'a', 255);
	}
	header(&p, 2, "t.test", 16);
	raw_rr(&p, 16, longrec, sizeof(longrec));
	raw_rr(&p, 16, two, sizeof(two) - 1);
	CU_ASSERT_EQUAL(dns_parse_txt(p.b, p.len, txt, 4, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(txt);
}

int
suite_dns(void)
{
	CU_pSuite s = CU_add_suite("dns", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "parse MX replies", test_parse_mx) == NULL ||
	    CU_add_test(s, "CNAMEs before MX", test_parse_mx_skips_cname) == NULL ||
	    CU_add_test(s, "sort and shuffle MX", test_sort_mx) == NULL ||
	    CU_add_test(s, "reverse names", test_reverse_name) == NULL ||
	    CU_add_test(s, "status strings", test_status_str) == NULL ||
	    CU_add_test(s, "address literal", test_mail_domain_literal) == NULL ||
	    CU_add_test(s, "parse TLSA replies", test_parse_tlsa) == NULL ||
	    CU_add_test(s, "parse TXT replies", test_parse_txt) == NULL)
		return -1;
	return 0;
}
