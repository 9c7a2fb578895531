/*
 * tlsreq: the TLS-Required header field (RFC 8689 5).
 *
 * "TLS-Required: No" asks that the message be delivered even when the
 * TLS the destination's policy wants (verify, DANE, MTA-STS) cannot be
 * had.  The relay agent honours it for messages without REQUIRETLS.
 */
#ifndef TLSREQ_H
#define TLSREQ_H

#include <sys/types.h>

#include <stddef.h>

#define TLSREQ_HEADER_MAX	(64 * 1024)	/* header bytes looked at */

/*
 * 1 if the message header at hdr (len bytes; it ends at the first empty
 * line, or at len) has a TLS-Required field whose value is "No"
 * (case-insensitive, folding and spaces allowed); else 0.  Pure.
 */
int	tlsreq_header_no(const char *hdr, size_t len);
/* The same for the message in fd starting at off (pread).  1, 0, or -1
 * on a read error. */
int	tlsreq_msg_no(int fd, off_t off);

#endif
