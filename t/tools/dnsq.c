/*
 * dnsq: prints what src/lib/dns.c answers, for the end-to-end DNS tests
 * (run inside a namespace with a dnsmasq of known records).
 *
 *   dnsq mx DOMAIN | addrs HOST | mail DOMAIN | ptr ADDRESS | txt NAME
 *
 * First line: the status; then one line per record.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lib/dns.h"
#include "lib/net.h"

static const char *
name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "OK";
	case DNS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_NODATA:
		return "NODATA";
	case DNS_NULLMX:
		return "NULLMX";
	case DNS_TEMPFAIL:
		return "TEMPFAIL";
	}
	return "?";
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage addrs[DNS_ADDR_MAX], ss;
	struct dns_mx mx[DNS_MX_MAX];
	char buf[256];
	enum dns_status st;
	size_t n = 0, i;

	if (argc != 3) {
		fprintf(stderr, "usage: dnsq mx|addrs|mail|ptr|txt name\n");
		return 2;
	}
	if (strcmp(argv[1], "mx") == 0) {
		st = dns_mx(argv[2], mx, DNS_MX_MAX, &n);
		printf("%s\n", name(st));
		for (i = 0; i < n; i++)
			printf("%u %s\n", mx[i].pref, mx[i].host);
	} else if (strcmp(argv[1], "addrs") == 0) {
		st = dns_addrs(argv[2], 25, addrs, DNS_ADDR_MAX, &n);
		printf("%s\n", name(st));
		for (i = 0; i < n; i++)
			if (net_ntop((struct sockaddr *)&addrs[i], buf,
			    sizeof(buf), NULL) == 0)
				printf("%s\n", buf);
	} else if (strcmp(argv[1], "txt") == 0) {
		static char txt[8][DNS_TXT_MAX];

		st = dns_txt(argv[2], txt, 8, &n);
		printf("%s\n", name(st));
		for (i = 0; i < n; i++)
			printf("%s\n", txt[i]);
	} else if (strcmp(argv[1], "mail") == 0) {
		printf("%s\n", name(dns_mail_domain(argv[2])));
	} else if (strcmp(argv[1], "ptr") == 0) {
		if (net_pton(argv[2], &ss) == -1) {
			fprintf(stderr, "dnsq: bad address\n");
			return 2;
		}
		st = dns_ptr((struct sockaddr *)&ss, buf, sizeof(buf));
		printf("%s\n", name(st));
		if (st == DNS_OK)
			printf("%s\n", buf);
	} else {
		fprintf(stderr, "dnsq: unknown query %s\n", argv[1]);
		return 2;
	}
	return 0;
}
