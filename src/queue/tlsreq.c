#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tlsreq.h"

#define FIELD	"TLS-Required"

/* The field's value, unfolded, without spaces at either end: "No"? */
static int
value_is_no(const char *v, const char *end)
{
	char word[8];
	size_t n = 0;

	for (; v < end; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
			continue;
		if (n + 1 >= sizeof(word))
			return 0;
		word[n++] = *v;
	}
	word[n] = '\0';
	return strcasecmp(word, "No") == 0;
}

int
tlsreq_header_no(const char *hdr, size_t len)
{
	const char *p = hdr, *end = hdr + len, *nl, *colon, *vend;
	size_t flen = sizeof(FIELD) - 1;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* The empty line ends the header. */
		if (nl == p || (nl == p + 1 && *p == '\r'))
			return 0;
		if (*p != ' ' && *p != '\t' && (size_t)(nl - p) > flen &&
		    strncasecmp(p, FIELD, flen) == 0) {
			for (colon = p + flen; colon < nl &&
			    (*colon == ' ' || *colon == '\t'); colon++)
				;
			if (colon < nl && *colon == ':') {
				/* The value, with its continuation lines. */
				vend = nl;
				while (vend < end && vend + 1 < end &&
				    (vend[1] == ' ' || vend[1] == '\t')) {
					vend = memchr(vend + 1, '\n',
					    (size_t)(end - vend - 1));
					if (vend == NULL)
						vend = end;
				}
				if (value_is_no(colon + 1, vend))
					return 1;
				nl = vend;
			}
		}
		if (nl >= end)
			break;
		p = nl + 1;
	}
	return 0;
}

int
tlsreq_msg_no(int fd, off_t off)
{
	char *buf;
	size_t have = 0;
	ssize_t n;
	int r;

	if ((buf = malloc(TLSREQ_HEADER_MAX)) == NULL)
		return -1;
	while (have < TLSREQ_HEADER_MAX) {
		n = pread(fd, buf + have, TLSREQ_HEADER_MAX - have,
		    off + (off_t)have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	r = tlsreq_header_no(buf, have);
	free(buf);
	return r;
}
