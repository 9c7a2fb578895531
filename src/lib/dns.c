#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "str.h"

/* Large enough for any reply over TCP (RFC 1035 4.2.2). */
#define DNS_REPLY_MAX	65536

static enum dns_status	dns_query(const char *, int, unsigned char *,
			    size_t, size_t *);
static enum dns_status	dns_query_ad(const char *, int, unsigned char *,
			    size_t, size_t *, int *);
static int		dns_parse_addrs(const unsigned char *, size_t, int,
			    uint16_t, struct sockaddr_storage *, size_t,
			    size_t *);
static uint32_t		dns_random(void *);

const char *
dns_status_str(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "no such domain";
	case DNS_NODATA:
		return "no records";
	case DNS_NULLMX:
		return "null MX (accepts no mail)";
	case DNS_TEMPFAIL:
		return "temporary DNS failure";
	}
	return "?";
}

/*
 * One query with a fresh resolver state.  On DNS_OK the reply is in buf and
 * *len is its length.
 */
static enum dns_status
dns_query(const char *name, int type, unsigned char *buf, size_t size,
    size_t *len)
{
	return dns_query_ad(name, type, buf, size, len, NULL);
}

/*
 * The same; with ad, asks for DNSSEC data (the DO bit) and sets *ad when
 * the resolver vouched for the answer (the AD bit).  glibc clears that bit
 * unless resolv.conf says "options trust-ad": only a resolver the
 * administrator trusts, on a trusted path, can make an answer secure.
 */
static enum dns_status
dns_query_ad(const char *name, int type, unsigned char *buf, size_t size,
    size_t *len, int *ad)
{
	struct __res_state rs;
	enum dns_status st;
	size_t nlen;
	int r;

	nlen = strlen(name);
	if (nlen == 0 || nlen > DNS_NAME_MAX)
		return DNS_NXDOMAIN;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) == -1) {
		res_nclose(&rs);
		return DNS_TEMPFAIL;
	}
	if (ad != NULL) {
		*ad = 0;
		rs.options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
	}
	r = res_nquery(&rs, name, ns_c_in, type, buf, (int)size);
	if (r < 0) {
		switch (rs.res_h_errno) {
		case HOST_NOT_FOUND:
			st = DNS_NXDOMAIN;
			break;
		case NO_DATA:
			st = DNS_NODATA;
			break;
		default:
			/* TRY_AGAIN, and NO_RECOVERY (REFUSED, FORMERR from
			 * our own resolver): nothing known about the name. */
			st = DNS_TEMPFAIL;
			break;
		}
		res_nclose(&rs);
		return st;
	}
	res_nclose(&rs);
	*len = (size_t)r < size ? (size_t)r : size;
	if (ad != NULL && *len >= HFIXEDSZ)
		*ad = ((const HEADER *)(const void *)buf)->ad;
	return DNS_OK;
}

/*
 * Calls fn for each answer record of type (class IN) in the reply in buf;
 * the CNAMEs that led there are skipped.  fn returns 0 to go on, 1 to
 * stop, -1 for a record that does not parse.  0, or -1 when the reply or
 * a record does not parse.
 */
static int
each_answer(const unsigned char *buf, size_t len, int type,
    int (*fn)(const ns_msg *, const ns_rr *, void *), void *arg)
{
	ns_msg msg;
	ns_rr rr;
	int i, count, r;

	if (ns_initparse(buf, (int)len, &msg) == -1)
		return -1;
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			return -1;
		if ((int)ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		if ((r = fn(&msg, &rr, arg)) != 0)
			return r == -1 ? -1 : 0;
	}
	return 0;
}

struct mx_out {
	struct dns_mx	*mx;
	size_t		 max, *n, *nullmx;
};

static int
one_mx(const ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct mx_out *o = arg;
	char name[NS_MAXDNAME];
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t nl;

	if (ns_rr_rdlen(*rr) < 3)
		return -1;
	if (dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), rd + 2, name,
	    sizeof(name)) < 0)
		return -1;
	nl = strlen(name);
	if (nl > 0 && name[nl - 1] == '.')
		name[--nl] = '\0';
	if (nl == 0) {
		(*o->nullmx)++;	/* RFC 7505: "." */
		return 0;
	}
	if (nl > DNS_NAME_MAX || *o->n >= o->max)
		return 0;
	str_lcpy(o->mx[*o->n].host, name, sizeof(o->mx[*o->n].host));
	o->mx[*o->n].pref = ns_get16(rd);
	(*o->n)++;
	return 0;
}

int
dns_parse_mx(const unsigned char *buf, size_t len, struct dns_mx *mx,
    size_t max, size_t *n, size_t *nullmx)
{
	struct mx_out o = { mx, max, n, nullmx };

	*n = 0;
	*nullmx = 0;
	return each_answer(buf, len, ns_t_mx, one_mx, &o);
}

void
dns_sort_mx(struct dns_mx *mx, size_t n, uint32_t (*rnd)(void *), void *arg)
{
	struct dns_mx t;
	size_t i, j, start;

	/* Insertion sort: n is small and this keeps equal entries in order. */
	for (i = 1; i < n; i++) {
		t = mx[i];
		for (j = i; j > 0 && mx[j - 1].pref > t.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
	if (rnd == NULL)
		return;
	/* RFC 5321 5.1: spread the load over hosts of equal preference. */
	for (start = 0; start < n; start = i) {
		for (i = start + 1; i < n && mx[i].pref == mx[start].pref; i++)
			;
		for (j = i - 1; j > start; j--) {
			size_t k = start + rnd(arg) % (j - start + 1);

			t = mx[j];
			mx[j] = mx[k];
			mx[k] = t;
		}
	}
}

static uint32_t
dns_random(void *arg)
{
	uint32_t v;

	(void)arg;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)time(NULL) ^ (uint32_t)clock();
	return v;
}

enum dns_status
dns_mx(const char *domain, struct dns_mx *mx, size_t max, size_t *n)
{
	return dns_mx_secure(domain, mx, max, n, NULL);
}

enum dns_status
dns_mx_secure(const char *domain, struct dns_mx *mx, size_t max, size_t *n,
    int *secure)
{
	unsigned char *buf;
	enum dns_status st;
	size_t len, nullmx;

	*n = 0;
	if (secure != NULL)
		*secure = 0;
	if ((buf = malloc(DNS_REPLY_MAX)) == NULL)
		return DNS_TEMPFAIL;
	st = dns_query_ad(domain, ns_t_mx, buf, DNS_REPLY_MAX, &len, secure);
	if (st == DNS_OK) {
		if (dns_parse_mx(buf, len, mx, max, n, &nullmx) == -1)
			st = DNS_TEMPFAIL;
		else if (*n == 0)
			st = nullmx > 0 ? DNS_NULLMX : DNS_NODATA;
		else
			dns_sort_mx(mx, *n, dns_random, NULL);
	}
	free(buf);
	return st;
}

struct addrs_out {
	int			 type;
	uint16_t		 port;
	struct sockaddr_storage	*addrs;
	size_t			 max, *n;
};

static int
one_addr(const ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct addrs_out *o = arg;
	struct sockaddr_storage *ss = &o->addrs[*o->n];

	(void)msg;
	memset(ss, 0, sizeof(*ss));
	if (o->type == ns_t_a && ns_rr_rdlen(*rr) == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(o->port);
		memcpy(&s4->sin_addr, ns_rr_rdata(*rr), 4);
	} else if (o->type == ns_t_aaaa && ns_rr_rdlen(*rr) == 16) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(o->port);
		memcpy(&s6->sin6_addr, ns_rr_rdata(*rr), 16);
	} else
		return -1;
	(*o->n)++;
	return *o->n < o->max ? 0 : 1;
}

static int
dns_parse_addrs(const unsigned char *buf, size_t len, int type, uint16_t port,
    struct sockaddr_storage *addrs, size_t max, size_t *n)
{
	struct addrs_out o = { type, port, addrs, max, n };

	if (*n >= max)
		return 0;
	return each_answer(buf, len, type, one_addr, &o);
}

enum dns_status
dns_addrs(const char *host, uint16_t port, struct sockaddr_storage *addrs,
    size_t max, size_t *n)
{
	static const int types[] = { ns_t_aaaa, ns_t_a };
	enum dns_status st[2];
	unsigned char *buf;
	size_t len, i;

	*n = 0;
	if ((buf = malloc(DNS_REPLY_MAX)) == NULL)
		return DNS_TEMPFAIL;
	for (i = 0; i < 2; i++) {
		st[i] = dns_query(host, types[i], buf, DNS_REPLY_MAX, &len);
		if (st[i] == DNS_OK && dns_parse_addrs(buf, len, types[i],
		    port, addrs, max, n) == -1)
			st[i] = DNS_TEMPFAIL;
		if (st[i] == DNS_NXDOMAIN)
			break;	/* no such name: no A either */
	}
	free(buf);
	if (*n > 0)
		return DNS_OK;
	if (st[0] == DNS_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (st[0] == DNS_TEMPFAIL || st[1] == DNS_TEMPFAIL)
		return DNS_TEMPFAIL;
	if (st[1] == DNS_NXDOMAIN)
		return DNS_NXDOMAIN;
	return DNS_NODATA;
}

enum dns_status
dns_mail_domain(const char *domain)
{
	struct sockaddr_storage addrs[1];
	struct dns_mx mx[1];
	enum dns_status st;
	size_t n;

	if (domain[0] == '[')
		return DNS_OK;	/* an address literal needs no DNS */
	st = dns_mx(domain, mx, 1, &n);
	if (st != DNS_NODATA)
		return st;
	st = dns_addrs(domain, 25, addrs, 1, &n);
	return st;
}

int
dns_reverse_name(const struct sockaddr *sa, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a;
	size_t off = 0;
	int i, r;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		a = s6->sin6_addr.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (len < 16 * 4 + sizeof("ip6.arpa"))
				return -1;
			for (i = 15; i >= 0; i--) {
				buf[off++] = hex[a[i] & 0xf];
				buf[off++] = '.';
				buf[off++] = hex[a[i] >> 4];
				buf[off++] = '.';
			}
			str_lcpy(buf + off, "ip6.arpa", len - off);
			return 0;
		}
		a += 12;
	} else if (sa->sa_family == AF_INET)
		a = (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
	else
		return -1;
	r = snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
	    a[0]);
	return r < 0 || (size_t)r >= len ? -1 : 0;
}

enum dns_status
dns_ptr(const struct sockaddr *sa, char *out, size_t outlen)
{
	char rname[80], name[NS_MAXDNAME];
	unsigned char *buf;
	enum dns_status st;
	ns_msg msg;
	ns_rr rr;
	size_t len, nl;
	int i, count;

	if (outlen > 0)
		out[0] = '\0';
	if (dns_reverse_name(sa, rname, sizeof(rname)) == -1)
		return DNS_NXDOMAIN;
	if ((buf = malloc(DNS_REPLY_MAX)) == NULL)
		return DNS_TEMPFAIL;
	st = dns_query(rname, ns_t_ptr, buf, DNS_REPLY_MAX, &len);
	if (st == DNS_OK) {
		st = DNS_NODATA;
		if (ns_initparse(buf, (int)len, &msg) == -1) {
			free(buf);
			return DNS_TEMPFAIL;
		}
		count = ns_msg_count(msg, ns_s_an);
		for (i = 0; i < count; i++) {
			if (ns_parserr(&msg, ns_s_an, i, &rr) == -1 ||
			    ns_rr_type(rr) != ns_t_ptr)
				continue;
			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg),
			    ns_rr_rdata(rr), name, sizeof(name)) < 0)
				continue;
			nl = strlen(name);
			if (nl > 0 && name[nl - 1] == '.')
				name[--nl] = '\0';
			if (nl == 0 || str_lcpy(out, name, outlen) >= outlen)
				continue;
			st = DNS_OK;
			break;
		}
	}
	free(buf);
	if (st != DNS_OK && outlen > 0)
		out[0] = '\0';
	return st;
}

struct tlsa_out {
	struct dns_tlsa	*t;
	size_t		 max, *n;
};

static int
one_tlsa(const ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct tlsa_out *o = arg;
	const unsigned char *rd = ns_rr_rdata(*rr);
	struct dns_tlsa *t;
	size_t dl;

	(void)msg;
	if (ns_rr_rdlen(*rr) < 4)
		return -1;
	dl = ns_rr_rdlen(*rr) - 3u;
	/* Too long for us: a full certificate of unusual size. */
	if (dl > DNS_TLSA_DATA_MAX || *o->n >= o->max)
		return 0;
	t = &o->t[*o->n];
	t->usage = rd[0];
	t->selector = rd[1];
	t->mtype = rd[2];
	t->len = dl;
	memcpy(t->data, rd + 3, dl);
	(*o->n)++;
	return 0;
}

int
dns_parse_tlsa(const unsigned char *buf, size_t len, struct dns_tlsa *t,
    size_t max, size_t *n)
{
	struct tlsa_out o = { t, max, n };

	*n = 0;
	return each_answer(buf, len, DNS_T_TLSA, one_tlsa, &o);
}

enum dns_status
dns_tlsa(const char *host, uint16_t port, struct dns_tlsa *t, size_t max,
    size_t *n, int *secure)
{
	char name[DNS_NAME_MAX + 16];
	unsigned char *buf;
	enum dns_status st;
	size_t len;
	int r;

	*n = 0;
	*secure = 0;
	r = snprintf(name, sizeof(name), "_%u._tcp.%s", (unsigned)port, host);
	if (r < 0 || (size_t)r >= sizeof(name))
		return DNS_NXDOMAIN;
	if ((buf = malloc(DNS_REPLY_MAX)) == NULL)
		return DNS_TEMPFAIL;
	st = dns_query_ad(name, DNS_T_TLSA, buf, DNS_REPLY_MAX, &len, secure);
	if (st == DNS_OK) {
		if (dns_parse_tlsa(buf, len, t, max, n) == -1)
			st = DNS_TEMPFAIL;
		else if (*n == 0)
			st = DNS_NODATA;
	}
	free(buf);
	return st;
}

struct txt_out {
	char		(*txt)[DNS_TXT_MAX];
	size_t		 max, *n;
};

static int
one_txt(const ns_msg *msg, const ns_rr *rr, void *arg)
{
	struct txt_out *o = arg;
	const unsigned char *rd = ns_rr_rdata(*rr);
	const unsigned char *end = rd + ns_rr_rdlen(*rr);
	char *out;
	size_t off = 0, k;
	int too_long = 0;

	(void)msg;
	if (*o->n >= o->max)
		return 0;
	out = o->txt[*o->n];
	/* RFC 7208 3.3 style: the strings of one record joined. */
	while (rd < end) {
		k = *rd++;
		if (k > (size_t)(end - rd))
			return -1;
		if (off + k >= DNS_TXT_MAX)
			too_long = 1;
		else {
			memcpy(out + off, rd, k);
			off += k;
		}
		rd += k;
	}
	if (too_long)
		return 0;
	out[off] = '\0';
	(*o->n)++;
	return 0;
}

int
dns_parse_txt(const unsigned char *buf, size_t len, char (*txt)[DNS_TXT_MAX],
    size_t max, size_t *n)
{
	struct txt_out o = { txt, max, n };

	*n = 0;
	return each_answer(buf, len, ns_t_txt, one_txt, &o);
}

enum dns_status
dns_txt(const char *name, char (*txt)[DNS_TXT_MAX], size_t max, size_t *n)
{
	unsigned char *buf;
	enum dns_status st;
	size_t len;

	*n = 0;
	if ((buf = malloc(DNS_REPLY_MAX)) == NULL)
		return DNS_TEMPFAIL;
	st = dns_query(name, ns_t_txt, buf, DNS_REPLY_MAX, &len);
	if (st == DNS_OK) {
		if (dns_parse_txt(buf, len, txt, max, n) == -1)
			st = DNS_TEMPFAIL;
		else if (*n == 0)
			st = DNS_NODATA;
	}
	free(buf);
	return st;
}
