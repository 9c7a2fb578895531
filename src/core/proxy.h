/*
 * proxy: the PROXY protocol header (versions 1 and 2) that a load
 * balancer sends before the client's first byte, carrying the client's
 * address.  Pure: bytes in, a struct out; reading the socket is
 * proxyio.c's business.
 */
#ifndef PROXY_H
#define PROXY_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The longest header taken: a version 1 line is at most 107 bytes; a
 * version 2 header with its TLVs is refused past this many.  A balancer
 * sends a few hundred at most.
 */
#define PROXY_V1_MAX	107
#define PROXY_HDR_MAX	2048

enum proxy_command {
	PROXY_CMD_LOCAL = 0,	/* the balancer's own (a health check) */
	PROXY_CMD_PROXY = 1,	/* relayed for a client */
};

/* What a header says.  Strings are printable renderings, "" when absent. */
struct proxy_info {
	int			 version;	/* 1 or 2 */
	enum proxy_command	 command;
	/*
	 * 1: src and dst hold the client's and the balancer's addresses.
	 * 0: LOCAL, v1 UNKNOWN, v2 UNSPEC or AF_UNIX: the connection's own
	 * addresses stand.
	 */
	int			 has_addr;
	struct sockaddr_storage	 src, dst;
	/* v2 TLVs. */
	int			 ssl;		/* PP2_TYPE_SSL was there */
	unsigned int		 ssl_client;	/* PP2_CLIENT_* bits */
	uint32_t		 ssl_verify;	/* 0: client cert verified */
	char			 ssl_version[64];
	char			 ssl_cipher[128];
	char			 ssl_cn[256];
	char			 ssl_sig_alg[64];
	char			 ssl_key_alg[64];
	char			 authority[256];	/* the client's SNI */
	char			 alpn[64];
	unsigned int		 ntlv;		/* TLVs seen, known or not */
	const char		*error;		/* why -1 */
};

#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/*
 * Parses the header at the start of buf.  Returns its length (> 0) and
 * fills *pi; 0 when buf is a proper prefix of a header that may still be
 * valid (every byte of buf belongs to it: read more); -1 when it is not a
 * valid header, with pi->error saying why.
 */
int	proxy_parse(const unsigned char *buf, size_t len,
	    struct proxy_info *pi);
/*
 * 1 when buf (len >= 1) starts the way a PROXY header does, 0 otherwise:
 * for noticing a header sent to a listener that does not expect one.
 */
int	proxy_looks_like(const unsigned char *buf, size_t len);
/*
 * 1 when line n (1-based, line end stripped) is what line n of a v2
 * header's signature reads as: "", "", "\0".
 */
int	proxy_v2_line(unsigned int n, const char *line, size_t len);
/* " key=value" words for the log about what the header carried. */
void	proxy_describe(const struct proxy_info *, char *buf, size_t len);

#endif
