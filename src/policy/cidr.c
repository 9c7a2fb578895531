#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "cidr.h"

int
cidr_parse(const char *s, struct cidr *c, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	int max, i;
	long bits;

	memset(c, 0, sizeof(*c));
	if (str_lcpy(buf, s, sizeof(buf)) >= sizeof(buf)) {
		*why = "address too long";
		return -1;
	}
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	bits = max;
	if (slash != NULL) {
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits < 0 || bits > max) {
			*why = "bad prefix length";
			return -1;
		}
	}
	c->bits = (int)bits;
	/* Host bits beyond the prefix are usually a typo for another net. */
	for (i = c->bits; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8))) {
			*why = "host bits set beyond the prefix";
			return -1;
		}
	return 0;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const unsigned char *a;
	int i, full, rest;

	if (sa->sa_family == AF_INET) {
		if (c->family != AF_INET)
			return 0;
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			if (c->family != AF_INET)
				return 0;
			a = a6->s6_addr + 12;
		} else {
			if (c->family != AF_INET6)
				return 0;
			a = a6->s6_addr;
		}
	} else
		return 0;
	full = c->bits / 8;
	rest = c->bits % 8;
	for (i = 0; i < full; i++)
		if (a[i] != c->addr[i])
			return 0;
	if (rest != 0 && ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff))
		return 0;
	return 1;
}

int
cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidr_match(&list[i], sa))
			return 1;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		str_lcpy(a, "?", sizeof(a));
	snprintf(buf, len, "%s/%d", a, c->bits);
}
