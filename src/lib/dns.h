/*
 * dns: MX, address and PTR lookups through libc's resolver.
 *
 * Every call sets up its own resolver state (res_ninit on a local
 * struct __res_state), so the functions are safe to call from several
 * threads at once.  Replies are parsed with ns_initparse/ns_parserr.
 * Names are looked up as given (fully qualified; no search list).
 */
#ifndef DNS_H
#define DNS_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX	255	/* RFC 1035 2.3.4 */
#define DNS_MX_MAX	32	/* MX records kept per domain */
#define DNS_ADDR_MAX	16	/* addresses kept per host */
#define DNS_T_TLSA	52	/* RFC 6698 */
#define DNS_TLSA_MAX	16	/* TLSA records kept per name */
#define DNS_TLSA_DATA_MAX 1024	/* longer data (a whole large cert) is
				   skipped */
#define DNS_TXT_MAX	1024	/* one TXT record's strings, joined */

enum dns_status {
	DNS_OK = 0,	/* found what was asked for */
	DNS_NXDOMAIN,	/* the name does not exist */
	DNS_NODATA,	/* the name exists, without records of that type */
	DNS_NULLMX,	/* RFC 7505 null MX: the domain accepts no mail */
	DNS_TEMPFAIL,	/* timeout, SERVFAIL, no network: try again later */
};

struct dns_mx {
	char		host[DNS_NAME_MAX + 1];	/* without the trailing dot */
	unsigned	pref;
};

/* One TLSA record (RFC 6698 2.1). */
struct dns_tlsa {
	uint8_t		usage, selector, mtype;
	size_t		len;
	unsigned char	data[DNS_TLSA_DATA_MAX];
};

/* "ok", "nxdomain", ... for messages. */
const char *dns_status_str(enum dns_status);

/*
 * The MX records of domain, most preferred first, records of equal
 * preference in random order.  DNS_OK with *n > 0, DNS_NODATA when the
 * domain has no MX (RFC 5321 5.1: use its addresses), DNS_NULLMX when its
 * only MX is the null MX of RFC 7505.  A null MX mixed with real ones is
 * dropped.
 */
enum dns_status dns_mx(const char *domain, struct dns_mx *mx, size_t max,
	    size_t *n);

/*
 * dns_mx, and with secure non-NULL: *secure is 1 when the answer was
 * DNSSEC-validated (the AD bit of a resolver trusted with "options
 * trust-ad" in resolv.conf).
 */
enum dns_status dns_mx_secure(const char *domain, struct dns_mx *mx,
	    size_t max, size_t *n, int *secure);

/*
 * The TLSA records of _port._tcp.host (RFC 7672 2.2).  DNS_OK with *n > 0;
 * *secure as for dns_mx_secure().
 */
enum dns_status dns_tlsa(const char *host, uint16_t port, struct dns_tlsa *t,
	    size_t max, size_t *n, int *secure);

/* The TXT records of name, each record's strings joined; records longer
 * than DNS_TXT_MAX - 1 are skipped.  DNS_OK with *n > 0. */
enum dns_status dns_txt(const char *name, char (*txt)[DNS_TXT_MAX],
	    size_t max, size_t *n);

/*
 * The AAAA and then the A addresses of host, with port (host order) set in
 * each.  DNS_OK with *n > 0, else why there are none.
 */
enum dns_status dns_addrs(const char *host, uint16_t port,
	    struct sockaddr_storage *addrs, size_t max, size_t *n);

/*
 * Whether domain can receive mail, for checking a sender's domain:
 * DNS_OK if it has an MX, or no MX but an A or AAAA record; DNS_NULLMX;
 * DNS_NXDOMAIN; DNS_NODATA (it exists, with no MX, A or AAAA);
 * DNS_TEMPFAIL.  An address literal ("[192.0.2.1]") is DNS_OK.
 */
enum dns_status dns_mail_domain(const char *domain);

/* The first PTR name of sa's address (no forward check).  DNS_OK or why not. */
enum dns_status dns_ptr(const struct sockaddr *sa, char *buf, size_t len);

/*
 * The pure parts, exposed for tests.
 */
/* Parses an MX reply into mx[]; unsorted.  *nullmx counts null MX records.
 * 0 or -1 on a malformed reply. */
int	dns_parse_mx(const unsigned char *msg, size_t len, struct dns_mx *mx,
	    size_t max, size_t *n, size_t *nullmx);
/* Sorts by preference; ties in the order rnd (which returns a random
 * number; NULL: never reordered) picks. */
void	dns_sort_mx(struct dns_mx *mx, size_t n,
	    uint32_t (*rnd)(void *), void *arg);
int	dns_parse_tlsa(const unsigned char *msg, size_t len, struct dns_tlsa *t,
	    size_t max, size_t *n);
int	dns_parse_txt(const unsigned char *msg, size_t len,
	    char (*txt)[DNS_TXT_MAX], size_t max, size_t *n);
/* The in-addr.arpa or ip6.arpa name of sa's address.  0 or -1. */
int	dns_reverse_name(const struct sockaddr *sa, char *buf, size_t len);

#endif
