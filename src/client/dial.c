#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dial.h"
#include "lib/str.h"

#define PORT_SMTP	25
#define PORT_SMTPS	465
#define PORT_SUBMISSION	587

static int	dial_is_addr(const char *);
static int	dial_valid_name(const char *);
static int	dial_set_host(struct dial *, const char *, size_t, char *,
		    size_t);

int
dial_service(const char *s, uint16_t *port)
{
	struct servent sbuf, *se = NULL;
	char buf[1024], *end;
	long v;

	if (*s == '\0')
		return -1;
	if (isdigit((unsigned char)*s)) {
		v = strtol(s, &end, 10);
		if (*end != '\0' || v < 1 || v > 65535)
			return -1;
		*port = (uint16_t)v;
		return 0;
	}
	/* The mail services work even where /etc/services is missing. */
	if (strcasecmp(s, "smtp") == 0)
		*port = PORT_SMTP;
	else if (strcasecmp(s, "smtps") == 0 ||
	    strcasecmp(s, "submissions") == 0)
		*port = PORT_SMTPS;
	else if (strcasecmp(s, "submission") == 0)
		*port = PORT_SUBMISSION;
	else if (getservbyname_r(s, "tcp", &sbuf, buf, sizeof(buf), &se) ==
	    0 && se != NULL)
		/* The _r form: the queue parses dial strings in threads. */
		*port = ntohs((uint16_t)se->s_port);
	else
		return -1;
	return 0;
}

static int
dial_is_addr(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* Letters, digits, '-', '_' and dots between labels of at most 63. */
static int
dial_valid_name(const char *s)
{
	size_t label = 0;

	if (*s == '\0' || *s == '.')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/*
 * Stores host (len bytes; "[addr]" or "[IPv6:addr]" or a name or a bare
 * address) in d.
 */
static int
dial_set_host(struct dial *d, const char *h, size_t len, char *err,
    size_t errlen)
{
	char buf[DIAL_HOST_MAX + 1];

	if (len == 0) {
		snprintf(err, errlen, "no host");
		return -1;
	}
	if (h[0] == '[') {
		if (len < 3 || h[len - 1] != ']') {
			snprintf(err, errlen, "unbalanced [ in address");
			return -1;
		}
		h++;
		len -= 2;
		if (len > 5 && strncasecmp(h, "IPv6:", 5) == 0) {
			h += 5;
			len -= 5;
		}
		if (len >= sizeof(buf)) {
			snprintf(err, errlen, "address too long");
			return -1;
		}
		memcpy(buf, h, len);
		buf[len] = '\0';
		if (!dial_is_addr(buf)) {
			snprintf(err, errlen, "bad address literal \"%.64s\"",
			    buf);
			return -1;
		}
		d->literal = 1;
	} else {
		if (len >= sizeof(buf)) {
			snprintf(err, errlen, "host name too long");
			return -1;
		}
		memcpy(buf, h, len);
		buf[len] = '\0';
		if (dial_is_addr(buf))
			d->literal = 1;
		else {
			if (len > 1 && buf[len - 1] == '.')
				buf[--len] = '\0';
			if (!dial_valid_name(buf)) {
				snprintf(err, errlen, "bad host name \"%.64s\"",
				    buf);
				return -1;
			}
		}
	}
	str_lcpy(d->host, buf, sizeof(d->host));
	return 0;
}

int
dial_parse(const char *s, struct dial *d, char *err, size_t errlen)
{
	const char *bang, *bang2, *p, *host, *service = NULL, *colon;
	char proto[32], svc[64];
	size_t hostlen, n;

	memset(d, 0, sizeof(*d));
	d->port = PORT_SMTP;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(err, errlen, "space or control character in "
			    "destination");
			return -1;
		}
	if (*s == '\0') {
		snprintf(err, errlen, "empty destination");
		return -1;
	}

	if ((bang = strchr(s, '!')) != NULL) {
		/* [/netdir/]proto!host[!service] */
		p = s;
		for (const char *q = s; q < bang; q++)
			if (*q == '/')
				p = q + 1;
		n = (size_t)(bang - p);
		if (n == 0 || n >= sizeof(proto)) {
			snprintf(err, errlen, "bad network in \"%.100s\"", s);
			return -1;
		}
		memcpy(proto, p, n);
		proto[n] = '\0';
		host = bang + 1;
		if ((bang2 = strchr(host, '!')) != NULL) {
			hostlen = (size_t)(bang2 - host);
			service = bang2 + 1;
			if (strchr(service, '!') != NULL) {
				snprintf(err, errlen,
				    "too many ! in \"%.100s\"", s);
				return -1;
			}
		} else
			hostlen = strlen(host);
		if (service != NULL && dial_service(service, &d->port) == -1) {
			snprintf(err, errlen, "unknown service \"%.64s\"",
			    service);
			return -1;
		}
		if (dial_set_host(d, host, hostlen, err, errlen) == -1)
			return -1;
		if (strcmp(proto, "tcp") == 0)
			d->kind = DIAL_HOST;
		else if (strcmp(proto, "mx") == 0) {
			if (d->literal) {
				snprintf(err, errlen, "mx! needs a domain");
				return -1;
			}
			d->kind = DIAL_MX;
		} else if (strcmp(proto, "net") == 0)
			d->kind = !d->literal && d->port == PORT_SMTP &&
			    strchr(d->host, '.') != NULL ? DIAL_MX : DIAL_HOST;
		else {
			snprintf(err, errlen, "unsupported network \"%.32s\"",
			    proto);
			return -1;
		}
	} else if (s[0] == '[') {
		/* [addr] or [addr]:port */
		if ((p = strchr(s, ']')) == NULL) {
			snprintf(err, errlen, "unbalanced [ in \"%.100s\"", s);
			return -1;
		}
		if (p[1] == ':') {
			if (dial_service(p + 2, &d->port) == -1) {
				snprintf(err, errlen, "bad port \"%.64s\"",
				    p + 2);
				return -1;
			}
		} else if (p[1] != '\0') {
			snprintf(err, errlen, "junk after ] in \"%.100s\"", s);
			return -1;
		}
		if (dial_set_host(d, s, (size_t)(p - s) + 1, err, errlen) == -1)
			return -1;
		d->kind = DIAL_HOST;
	} else if (dial_is_addr(s)) {
		if (dial_set_host(d, s, strlen(s), err, errlen) == -1)
			return -1;
		d->kind = DIAL_HOST;
	} else if ((colon = strchr(s, ':')) != NULL) {
		if (strchr(colon + 1, ':') != NULL) {
			snprintf(err, errlen, "an IPv6 address with a port "
			    "needs brackets: [addr]:port");
			return -1;
		}
		if (str_lcpy(svc, colon + 1, sizeof(svc)) >= sizeof(svc) ||
		    dial_service(svc, &d->port) == -1) {
			snprintf(err, errlen, "bad port \"%.64s\"", colon + 1);
			return -1;
		}
		if (dial_set_host(d, s, (size_t)(colon - s), err, errlen) == -1)
			return -1;
		d->kind = DIAL_HOST;
	} else {
		if (dial_set_host(d, s, strlen(s), err, errlen) == -1)
			return -1;
		d->kind = strchr(d->host, '.') != NULL ? DIAL_MX : DIAL_HOST;
	}
	d->implicit_tls = d->port == PORT_SMTPS;
	return 0;
}
