/*
 * convert: turns the message smtp reads into the one it sends (and what
 * smtp -f prints):
 *
 *  - a leading Unix "From " envelope line is removed (its date is used for
 *    a missing Date:);
 *  - Bcc: and Resent-Bcc: fields are removed;
 *  - unqualified addresses in the address fields (From, Sender, Reply-To,
 *    To, Cc and their Resent- forms) get "@domain";
 *  - missing From:, Date: and Message-ID: fields are added at the end of
 *    the header;
 *  - every line ends in CRLF (LF and lone CR become CRLF), and the last
 *    line gets one if it had none;
 *  - a header line that is neither a field nor a continuation starts the
 *    body (an empty line is put before it).
 *
 * Pure: buffer in, buffer out.
 */
#ifndef CONVERT_H
#define CONVERT_H

#include <stddef.h>
#include <time.h>

#include "lib/str.h"

struct conv_opts {
	const char	*sender;	/* qualified envelope sender; "" = null */
	const char	*domain;	/* for unqualified addresses and the
					   Message-ID; NULL: leave them */
	time_t		 now;		/* for a missing Date: */
	const char	*msgid_local;	/* left of the @ in a new Message-ID */
	const char	*fullname;	/* a new From: gets "fullname" <sender>;
					   NULL: the bare sender */
};

struct conv_info {
	int	eightbit;	/* some byte >= 0x80 */
	int	added_from, added_date, added_msgid;
	int	removed_from_line, removed_bcc;
};

/*
 * Appends the converted form of in (len bytes) to out.  0, or -1 when out
 * is full (its max is the caller's size limit).
 */
int	conv_message(const char *in, size_t len, const struct conv_opts *,
	    struct str *out, struct conv_info *);
/*
 * Qualifies one address field value (the part after "Name:") into out:
 * every address without an @ gets @domain.  0 or -1 (out full).
 */
int	conv_addr_field(const char *val, size_t len, const char *domain,
	    struct str *out);
/*
 * An envelope address as smtp(1) takes it: "<a@b>" loses its brackets,
 * "/dev/null" and "<>" mean the null sender (""), Plan 9's "host!user"
 * becomes "user@host", and one without @ gets "@domain".  0, or -1 if the
 * result does not fit.
 */
int	conv_envelope_addr(const char *in, const char *domain, char *out,
	    size_t outlen);
/* Parses the date of a Unix "From user Wed Jan  2 15:04:05 2006" line
 * (local time).  0 with *t set, or -1. */
int	conv_from_line_date(const char *line, size_t len, time_t *t);

#endif
