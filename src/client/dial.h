/*
 * dial: smtp's destination strings.
 *
 *   mx!domain                 the domain's MX hosts (RFC 5321 5.1)
 *   domain.name               the same, for a bare name with a dot
 *   net!domain[!smtp]         the same (Plan 9's "any network")
 *   tcp!host[!service]        that host, on service (default smtp)
 *   net!host!service          that host, when service is not smtp
 *   host:port  [addr]:port    that host or address
 *   192.0.2.1  [2001:db8::1]  an address literal, port 25
 *   name                      a dotless name: that host (/etc/hosts, DNS)
 *
 * A service is a port number or a name from /etc/services; smtps (port
 * 465) means TLS from the first byte.  Pure: no I/O beyond getservbyname.
 */
#ifndef DIAL_H
#define DIAL_H

#include <stddef.h>
#include <stdint.h>

#define DIAL_HOST_MAX	255

enum dial_kind {
	DIAL_HOST,	/* connect to host */
	DIAL_MX,	/* look up host's MX records */
};

struct dial {
	enum dial_kind	 kind;
	char		 host[DIAL_HOST_MAX + 1];	/* name, address or domain;
							   no brackets, no trailing dot */
	uint16_t	 port;
	int		 literal;	/* host is a numeric address */
	int		 implicit_tls;	/* smtps: TLS before the greeting */
};

/* Parses s into *d.  0, or -1 with a reason in err. */
int	dial_parse(const char *s, struct dial *d, char *err, size_t errlen);
/* Resolves a service name or number to a port.  0 or -1. */
int	dial_service(const char *s, uint16_t *port);

#endif
