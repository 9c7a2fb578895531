/*
 * The PROXY protocol header, versions 1 (a text line) and 2 (binary, with
 * TLVs), as HAProxy's proxy-protocol.txt defines them.  Strict: a header
 * that is not exactly right is refused, never guessed at, since what it
 * says decides who the client is.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "lib/str.h"
#include "proxy.h"

#define V2_SIG_LEN	12
#define V2_HDR_LEN	16
#define V2_ADDR_INET	12	/* two IPv4 addresses, two ports */
#define V2_ADDR_INET6	36
#define V2_ADDR_UNIX	216

/* TLV types. */
#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_SUBTYPE_SSL_SIG_ALG	0x24
#define PP2_SUBTYPE_SSL_KEY_ALG	0x25

static const unsigned char v2_sig[V2_SIG_LEN] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";

static int	parse_v1(const unsigned char *, size_t, struct proxy_info *);
static int	parse_v2(const unsigned char *, size_t, struct proxy_info *);
static int	v1_port(const char *, size_t, unsigned int *);
static int	v2_tlvs(const unsigned char *, size_t, struct proxy_info *);
static int	v2_ssl(const unsigned char *, size_t, struct proxy_info *);

static int
fail(struct proxy_info *pi, const char *why)
{
	pi->error = why;
	return -1;
}

int
proxy_looks_like(const unsigned char *buf, size_t len)
{
	size_t n;

	if (len == 0)
		return 0;
	n = len < V2_SIG_LEN ? len : V2_SIG_LEN;
	if (memcmp(buf, v2_sig, n) == 0)
		return 1;
	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	return memcmp(buf, v1_sig, n) == 0;
}

int
proxy_v2_line(unsigned int n, const char *line, size_t len)
{
	if (n == 1 || n == 2)
		return len == 0;
	return n == 3 && len == 1 && line[0] == '\0';
}

int
proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *pi)
{
	size_t n;

	memset(pi, 0, sizeof(*pi));
	if (len == 0)
		return 0;
	n = len < V2_SIG_LEN ? len : V2_SIG_LEN;
	if (memcmp(buf, v2_sig, n) == 0)
		return len < V2_SIG_LEN ? 0 : parse_v2(buf, len, pi);
	n = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	if (memcmp(buf, v1_sig, n) == 0)
		return parse_v1(buf, len, pi);
	return fail(pi, "not a PROXY header");
}

/* A decimal port, 0-65535, without leading zeros.  0 or -1. */
static int
v1_port(const char *s, size_t len, unsigned int *port)
{
	unsigned int v = 0;
	size_t i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* One address of a v1 line into ss.  0 or -1. */
static int
v1_addr(const char *s, size_t len, int family, struct sockaddr_storage *ss)
{
	char tmp[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
}

static void
set_port(struct sockaddr_storage *ss, unsigned int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/*
 * "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN ...\r\n",
 * single spaces, at most 107 bytes.
 */
static int
parse_v1(const unsigned char *buf, size_t len, struct proxy_info *pi)
{
	const char *line = (const char *)buf, *f[6];
	size_t flen[6], end, i, nf, start;
	unsigned int sport, dport;
	int family;

	pi->version = 1;
	for (end = 0; end < len && end < PROXY_V1_MAX; end++)
		if (buf[end] == '\n')
			break;
	if (end == len && len < PROXY_V1_MAX)
		return 0;
	if (end >= PROXY_V1_MAX)
		return fail(pi, "version 1 line longer than 107 bytes");
	if (end == 0 || buf[end - 1] != '\r')
		return fail(pi, "version 1 line not ended by CRLF");
	end--;		/* the CR */
	for (i = 0; i < end; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return fail(pi, "control or 8-bit byte in version 1 "
			    "line");
	/* Fields between single spaces; "PROXY" is the first. */
	nf = 0;
	start = 0;
	for (i = 0; i <= end; i++) {
		if (i < end && line[i] != ' ')
			continue;
		if (nf == 6)
			return fail(pi, "too many fields in version 1 line");
		f[nf] = line + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	if (nf >= 2 && flen[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		/* Anything may follow; the real addresses stand. */
		pi->command = PROXY_CMD_PROXY;
		return (int)end + 2;
	}
	for (i = 0; i < nf; i++)
		if (flen[i] == 0)
			return fail(pi, "empty field in version 1 line");
	if (nf != 6)
		return fail(pi, "wrong number of fields in version 1 line");
	if (flen[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return fail(pi, "unknown protocol in version 1 line");
	if (v1_addr(f[2], flen[2], family, &pi->src) == -1 ||
	    v1_addr(f[3], flen[3], family, &pi->dst) == -1)
		return fail(pi, "bad address in version 1 line");
	if (v1_port(f[4], flen[4], &sport) == -1 ||
	    v1_port(f[5], flen[5], &dport) == -1)
		return fail(pi, "bad port in version 1 line");
	set_port(&pi->src, sport);
	set_port(&pi->dst, dport);
	pi->command = PROXY_CMD_PROXY;
	pi->has_addr = 1;
	return (int)end + 2;
}

static int
parse_v2(const unsigned char *buf, size_t len, struct proxy_info *pi)
{
	size_t total, alen;
	unsigned int cmd, fam;
	const unsigned char *a;

	pi->version = 2;
	if (len < V2_HDR_LEN)
		return 0;
	if ((buf[12] >> 4) != 2)
		return fail(pi, "unknown version in version 2 header");
	cmd = buf[12] & 0x0f;
	if (cmd != PROXY_CMD_LOCAL && cmd != PROXY_CMD_PROXY)
		return fail(pi, "unknown command in version 2 header");
	pi->command = (enum proxy_command)cmd;
	fam = buf[13];
	total = V2_HDR_LEN + (((size_t)buf[14] << 8) | buf[15]);
	if (total > PROXY_HDR_MAX)
		return fail(pi, "version 2 header too long");
	if (len < total)
		return 0;
	a = buf + V2_HDR_LEN;
	alen = total - V2_HDR_LEN;
	switch (fam) {
	case 0x11:	/* TCP over IPv4 */
		if (alen < V2_ADDR_INET)
			return fail(pi, "version 2 header shorter than its "
			    "addresses");
		if (cmd == PROXY_CMD_PROXY) {
			struct sockaddr_in *s = (struct sockaddr_in *)&pi->src;
			struct sockaddr_in *d = (struct sockaddr_in *)&pi->dst;

			s->sin_family = d->sin_family = AF_INET;
			memcpy(&s->sin_addr, a, 4);
			memcpy(&d->sin_addr, a + 4, 4);
			memcpy(&s->sin_port, a + 8, 2);
			memcpy(&d->sin_port, a + 10, 2);
			pi->has_addr = 1;
		}
		a += V2_ADDR_INET;
		alen -= V2_ADDR_INET;
		break;
	case 0x21:	/* TCP over IPv6 */
		if (alen < V2_ADDR_INET6)
			return fail(pi, "version 2 header shorter than its "
			    "addresses");
		if (cmd == PROXY_CMD_PROXY) {
			struct sockaddr_in6 *s, *d;

			s = (struct sockaddr_in6 *)&pi->src;
			d = (struct sockaddr_in6 *)&pi->dst;

			s->sin6_family = d->sin6_family = AF_INET6;
			memcpy(&s->sin6_addr, a, 16);
			memcpy(&d->sin6_addr, a + 16, 16);
			memcpy(&s->sin6_port, a + 32, 2);
			memcpy(&d->sin6_port, a + 34, 2);
			pi->has_addr = 1;
		}
		a += V2_ADDR_INET6;
		alen -= V2_ADDR_INET6;
		break;
	case 0x31:	/* a local stream socket: no address to use */
		if (alen < V2_ADDR_UNIX)
			return fail(pi, "version 2 header shorter than its "
			    "addresses");
		a += V2_ADDR_UNIX;
		alen -= V2_ADDR_UNIX;
		break;
	case 0x00:	/* UNSPEC: the rest is opaque */
		return (int)total;
	default:
		if (cmd == PROXY_CMD_LOCAL)
			return (int)total;
		return fail(pi, "version 2 header for a datagram or unknown "
		    "protocol");
	}
	if (v2_tlvs(a, alen, pi) == -1)
		return -1;
	return (int)total;
}

/* Copies a TLV's value, printable, into a field of pi. */
static void
tlv_str(char *dst, size_t size, const unsigned char *v, size_t len)
{
	str_printable(dst, size, (const char *)v, len);
}

/* The TLVs after the addresses: each inside the header, unknown skipped. */
static int
v2_tlvs(const unsigned char *p, size_t len, struct proxy_info *pi)
{
	size_t vlen;

	while (len > 0) {
		if (len < 3)
			return fail(pi, "truncated TLV in version 2 header");
		vlen = ((size_t)p[1] << 8) | p[2];
		if (vlen > len - 3)
			return fail(pi, "TLV longer than the version 2 header");
		pi->ntlv++;
		switch (p[0]) {
		case PP2_TYPE_ALPN:
			tlv_str(pi->alpn, sizeof(pi->alpn), p + 3, vlen);
			break;
		case PP2_TYPE_AUTHORITY:
			tlv_str(pi->authority, sizeof(pi->authority), p + 3,
			    vlen);
			break;
		case PP2_TYPE_SSL:
			if (v2_ssl(p + 3, vlen, pi) == -1)
				return -1;
			break;
		default:
			break;
		}
		p += 3 + vlen;
		len -= 3 + vlen;
	}
	return 0;
}

/* PP2_TYPE_SSL: client bits, verify result, then sub-TLVs. */
static int
v2_ssl(const unsigned char *p, size_t len, struct proxy_info *pi)
{
	size_t vlen;

	if (len < 5)
		return fail(pi, "short SSL TLV in version 2 header");
	pi->ssl = 1;
	pi->ssl_client = p[0];
	pi->ssl_verify = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
	    ((uint32_t)p[3] << 8) | p[4];
	p += 5;
	len -= 5;
	while (len > 0) {
		if (len < 3)
			return fail(pi, "truncated SSL sub-TLV");
		vlen = ((size_t)p[1] << 8) | p[2];
		if (vlen > len - 3)
			return fail(pi, "SSL sub-TLV longer than its TLV");
		switch (p[0]) {
		case PP2_SUBTYPE_SSL_VERSION:
			tlv_str(pi->ssl_version, sizeof(pi->ssl_version),
			    p + 3, vlen);
			break;
		case PP2_SUBTYPE_SSL_CN:
			tlv_str(pi->ssl_cn, sizeof(pi->ssl_cn), p + 3, vlen);
			break;
		case PP2_SUBTYPE_SSL_CIPHER:
			tlv_str(pi->ssl_cipher, sizeof(pi->ssl_cipher), p + 3,
			    vlen);
			break;
		case PP2_SUBTYPE_SSL_SIG_ALG:
			tlv_str(pi->ssl_sig_alg, sizeof(pi->ssl_sig_alg),
			    p + 3, vlen);
			break;
		case PP2_SUBTYPE_SSL_KEY_ALG:
			tlv_str(pi->ssl_key_alg, sizeof(pi->ssl_key_alg),
			    p + 3, vlen);
			break;
		default:
			break;
		}
		p += 3 + vlen;
		len -= 3 + vlen;
	}
	return 0;
}

static void
add_word(char *buf, size_t size, const char *key, const char *val)
{
	size_t o = strlen(buf);

	if (val[0] == '\0' || o >= size)
		return;
	(void)snprintf(buf + o, size - o, " %s=\"%s\"", key, val);
}

void
proxy_describe(const struct proxy_info *pi, char *buf, size_t size)
{
	int n;

	if (size == 0)
		return;
	n = snprintf(buf, size, "version=%d command=%s", pi->version,
	    pi->command == PROXY_CMD_LOCAL ? "local" : "proxy");
	if (n < 0 || (size_t)n >= size)
		return;
	if (pi->ssl)
		(void)snprintf(buf + n, size - (size_t)n, " ssl=%s "
		    "client_cert=%s verify=%lu",
		    pi->ssl_client & PP2_CLIENT_SSL ? "yes" : "no",
		    pi->ssl_client & (PP2_CLIENT_CERT_CONN |
		    PP2_CLIENT_CERT_SESS) ? "yes" : "no",
		    (unsigned long)pi->ssl_verify);
	add_word(buf, size, "tls_version", pi->ssl_version);
	add_word(buf, size, "cipher", pi->ssl_cipher);
	add_word(buf, size, "cn", pi->ssl_cn);
	add_word(buf, size, "sig_alg", pi->ssl_sig_alg);
	add_word(buf, size, "key_alg", pi->ssl_key_alg);
	add_word(buf, size, "authority", pi->authority);
	add_word(buf, size, "alpn", pi->alpn);
}
