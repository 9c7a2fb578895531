/*
 * cidr: IPv4 and IPv6 networks and lists of them.  An IPv4-mapped IPv6
 * address matches IPv4 entries.
 */
#ifndef CIDR_H
#define CIDR_H

#include <sys/socket.h>
#include <stddef.h>

struct cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];	/* network, host bits cleared */
	int		 bits;
};

/*
 * Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a host).
 * Host bits set beyond the prefix are an error, to catch typos.
 * 0 or -1 with a reason in *why.
 */
int	cidr_parse(const char *, struct cidr *, const char **why);
/* 1 if the address is inside the network. */
int	cidr_match(const struct cidr *, const struct sockaddr *);
/* 1 if any entry matches. */
int	cidr_list_match(const struct cidr *, size_t n, const struct sockaddr *);
/* Writes "net/bits". */
void	cidr_format(const struct cidr *, char *buf, size_t len);

#endif
