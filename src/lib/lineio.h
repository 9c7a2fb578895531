/*
 * lineio: bounded, buffered line I/O over a pair of file descriptors or a
 * GnuTLS session, with a deadline on every wait.
 *
 * Replies are buffered and written only when the reader would otherwise
 * block (or the output buffer grows large), which is exactly what RFC 2920
 * pipelining wants: one write per pipelined group of commands.
 */
#ifndef LINEIO_H
#define LINEIO_H

#include <stddef.h>
#include <gnutls/gnutls.h>

struct lineio;

/* rfd and wfd may be the same socket.  inmax is the input buffer size. */
struct lineio *lineio_new(int rfd, int wfd, size_t inmax);
/* Frees the buffers (not the fds, not the TLS session); sets *lp to NULL. */
void	lineio_free(struct lineio **lp);
/* Deadline in milliseconds for each wait on the peer (read or write). */
void	lineio_set_timeout(struct lineio *, int ms);
/*
 * From now on, each lineio_getline() must see its whole line within ms
 * (0: no such limit): a client sending a byte now and then cannot hold
 * a line open forever by resetting the per-wait timeout.  A line of which
 * nothing at all arrived ends as LINEIO_IDLE, whichever limit expired.
 */
void	lineio_set_line_deadline(struct lineio *, int ms);
/*
 * The next line has been awaited since at_ms (net_now_ms()), not since the
 * next lineio_getline(): its deadline counts from then.  For a caller that
 * waited for the first byte itself.
 */
void	lineio_line_begun(struct lineio *, long long at_ms);
/*
 * lineio_getline_parkable() waits at most ms for the first bytes of a line
 * of which nothing is buffered; then it returns LINEIO_PARKED, nothing
 * consumed, replies written, and the caller may wait for input elsewhere
 * (epoll) and call again.  0: never.  Set before the first
 * lineio_set_timeout(): a socket's receive timeout becomes ms, so that
 * the wait costs one read (longer waits read again).
 */
void	lineio_set_park(struct lineio *, int ms);
/*
 * Gives back the buffers while nothing is in them (made again when next
 * needed): a parked session then costs little more than its state.
 */
void	lineio_shrink(struct lineio *);
#define LINEIO_PARKED	(-3)
/*
 * A transfer (message data) begins: everything read until
 * lineio_transfer_end() must arrive within deadline_s seconds, and each
 * window of window_s seconds must bring at least rate * window_s bytes
 * (rate 0: no rate rule; the first window is the grace period).
 */
void	lineio_transfer_begin(struct lineio *, unsigned int deadline_s,
	    unsigned int rate, unsigned int window_s);
void	lineio_transfer_end(struct lineio *);

/* Why the last read or write returned 0 or -1. */
enum lineio_end {
	LINEIO_OK = 0,
	LINEIO_EOF,		/* the peer closed its side */
	LINEIO_IDLE,		/* nothing arrived within the timeout */
	LINEIO_LINE_DEADLINE,	/* a line took longer than its deadline */
	LINEIO_XFER_DEADLINE,	/* a transfer took longer than its deadline */
	LINEIO_TOO_SLOW,	/* a transfer fell below its rate */
	LINEIO_ERROR,		/* an I/O or TLS error */
};
enum lineio_end lineio_end(const struct lineio *);
/* From now on, all I/O goes through this TLS session. */
void	lineio_set_tls(struct lineio *, gnutls_session_t);
gnutls_session_t lineio_tls(const struct lineio *);

/*
 * Reads one line.  *line points into the buffer and stays valid until the
 * next call; *len includes the terminating LF.
 * Returns 1 line, 0 EOF, -1 error or timeout (errno ETIMEDOUT),
 * -2 line longer than the buffer (it is discarded up to its LF).
 */
int	lineio_getline(struct lineio *, char **line, size_t *len);
/*
 * The same, or LINEIO_PARKED: see lineio_set_park().  With at_once, parks
 * without waiting unless input is there already.
 */
int	lineio_getline_parkable(struct lineio *, int at_once, char **line,
	    size_t *len);
/*
 * Reads the next piece of a line: up to and including the next LF
 * (*eol = 1) or as much as fits in the buffer (*eol = 0).  For message data,
 * where lines may be of any length.  Returns 1, 0 EOF, -1 error.
 */
int	lineio_getchunk(struct lineio *, char **p, size_t *len, int *eol);
/* Reads up to want bytes (at least one).  Returns 1, 0 EOF, -1 error. */
int	lineio_read(struct lineio *, char **p, size_t *len, size_t want);
/* Bytes received and not yet consumed (including TLS-buffered ones). */
size_t	lineio_pending(const struct lineio *);
/* Throws away everything buffered for reading. */
void	lineio_drop_input(struct lineio *);

/* Buffers output; 0 or -1 on a write error. */
int	lineio_write(struct lineio *, const void *, size_t);
int	lineio_printf(struct lineio *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Writes out everything buffered.  0 or -1. */
int	lineio_flush(struct lineio *);
/* Bytes waiting to be written. */
size_t	lineio_unflushed(const struct lineio *);
/* Total bytes read and written since creation. */
void	lineio_counts(const struct lineio *, unsigned long long *in,
	    unsigned long long *out);

#endif
