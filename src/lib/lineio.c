#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lineio.h"
#include "net.h"
#include "str.h"

/* Output is written once this much is buffered, even mid-group. */
#define LINEIO_OUT_FLUSH	16384
#define LINEIO_OUT_MAX		(1024 * 1024)
/* How lineio_sock_read() may try a non-blocking read. */
#define SOCK_WAIT	0	/* not: wait for input */
#define SOCK_PROBE	1	/* first, where it would poll() */
#define SOCK_TRY	2	/* only: EAGAIN when there is nothing yet */
/* Non-data TLS records read in a row before giving up. */
#define LINEIO_TLS_RETRIES	64
/*
 * A blocking read bounded by the socket's receive timeout may stand in for
 * poll() when that timeout ends at most this much after the budget does.
 */
#define LINEIO_SLACK_MS		50

struct lineio {
	int			 rfd, wfd;
	gnutls_session_t	 tls;
	int			 timeout_ms;
	int			 timeout_set;	/* the socket options are set */
	/* The sockets' own timeouts, set once; 0 when not a socket. */
	int			 rcv_ms, snd_ms;
	int			 stream;	/* rfd is a stream socket */
	/* The last read of rfd emptied it: the peer had sent no more. */
	int			 drained;
	/* lineio_set_park(): how long a line's first wait lasts, or 0. */
	int			 park_ms;
	int			 parkable;	/* this wait may end so */
	int			 park_now;	/* ... and without waiting */
	int			 parked;	/* ... and it did */
	char			*in;
	size_t			 incap, inoff, inend;
	int			 eof;
	struct str		 out;
	unsigned long long	 nin, nout;

	/* Deadlines: monotonic milliseconds, 0 when not armed. */
	int			 line_ms;
	long long		 line_deadline;
	long long		 line_begun;	/* lineio_line_begun(), or 0 */
	long long		 xfer_deadline;
	/* The transfer rate rule: bytes seen by the end of each window. */
	unsigned long long	 window_bytes;	/* wanted per window */
	long long		 window_ms;
	long long		 window_end;
	unsigned long long	 window_nin;	/* nin when it began */
	enum lineio_end		 end;
};

static int	lineio_fill(struct lineio *);
static int	lineio_getline_raw(struct lineio *, char **, size_t *);
static int	lineio_budget(struct lineio *, long long began,
		    long long now, enum lineio_end *why);
static int	lineio_rate_ok(struct lineio *, long long now);
static int	lineio_wait_input(struct lineio *);
static int	lineio_wait(int fd, short ev, int ms);
static ssize_t	lineio_sock_try(struct lineio *);
static ssize_t	lineio_sock_read(struct lineio *, int how);
static ssize_t	lineio_raw_read(struct lineio *, void *, size_t);
static ssize_t	lineio_raw_write(struct lineio *, const void *, size_t);

struct lineio *
lineio_new(int rfd, int wfd, size_t inmax)
{
	struct lineio *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if ((l->in = malloc(inmax)) == NULL) {
		free(l);
		return NULL;
	}
	l->rfd = rfd;
	l->wfd = wfd;
	l->incap = inmax;
	l->timeout_ms = 300 * 1000;
	l->drained = 1;
	str_init(&l->out, LINEIO_OUT_MAX);
	return l;
}

void
lineio_free(struct lineio **lp)
{
	if (*lp == NULL)
		return;
	free((*lp)->in);
	str_free(&(*lp)->out);
	free(*lp);
	*lp = NULL;
}

void
lineio_set_timeout(struct lineio *l, int ms)
{
	struct timeval tv;
	int type, rcv;
	socklen_t len = sizeof(type);

	l->timeout_ms = ms;
	if (l->timeout_set || ms <= 0)
		return;
	l->timeout_set = 1;
	/*
	 * Once per connection, not at every change of phase: these bound
	 * the plain reads and writes that stand in for poll(), and are the
	 * backstop where poll() cannot bound (a write larger than the socket
	 * buffer, a TLS record arriving in pieces).  A later, longer timeout
	 * is served by waiting again; a shorter one by poll().  Not a socket
	 * (a pipe in stdio mode): nothing to set, poll() does it all.
	 */
	rcv = l->park_ms > 0 && l->park_ms < ms ? l->park_ms : ms;
	tv.tv_sec = rcv / 1000;
	tv.tv_usec = (rcv % 1000) * 1000;
	if (setsockopt(l->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0)
		l->rcv_ms = rcv;
	/* Where a short read says the peer had sent nothing more. */
	if (l->rcv_ms > 0 && getsockopt(l->rfd, SOL_SOCKET, SO_TYPE, &type,
	    &len) == 0)
		l->stream = type == SOCK_STREAM;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (setsockopt(l->wfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0)
		l->snd_ms = ms;
}

void
lineio_set_line_deadline(struct lineio *l, int ms)
{
	l->line_ms = ms > 0 ? ms : 0;
}

/* The input buffer, made again after lineio_shrink().  0 or -1. */
static int
lineio_inbuf(struct lineio *l)
{
	if (l->in == NULL && (l->in = malloc(l->incap)) == NULL) {
		l->end = LINEIO_ERROR;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
lineio_shrink(struct lineio *l)
{
	if (l->inoff == l->inend) {
		free(l->in);
		l->in = NULL;
		l->inoff = l->inend = 0;
	}
	if (l->out.len == 0)
		str_free(&l->out);
}

void
lineio_set_park(struct lineio *l, int ms)
{
	l->park_ms = ms > 0 ? ms : 0;
}

void
lineio_line_begun(struct lineio *l, long long at_ms)
{
	l->line_begun = at_ms;
}

void
lineio_transfer_begin(struct lineio *l, unsigned int deadline_s,
    unsigned int rate, unsigned int window_s)
{
	long long now = net_now_ms();

	l->xfer_deadline = deadline_s ? now + 1000LL * deadline_s : 0;
	l->window_end = 0;
	if (rate != 0 && window_s != 0) {
		l->window_ms = 1000LL * window_s;
		l->window_bytes = (unsigned long long)rate * window_s;
		l->window_end = now + l->window_ms;
		l->window_nin = l->nin;
	}
}

void
lineio_transfer_end(struct lineio *l)
{
	l->xfer_deadline = 0;
	l->window_end = 0;
}

enum lineio_end
lineio_end(const struct lineio *l)
{
	return l->end;
}

/*
 * How much longer a wait for input that began at began may last, and
 * which limit that is: the idle timeout, or a line or transfer deadline
 * that comes sooner.  The rate window is not a limit by itself; see
 * lineio_wait_input().
 */
static int
lineio_budget(struct lineio *l, long long began, long long now,
    enum lineio_end *why)
{
	long long ms = l->timeout_ms - (now - began);

	*why = LINEIO_IDLE;
	if (l->line_deadline != 0 && l->line_deadline - now < ms) {
		ms = l->line_deadline - now;
		*why = LINEIO_LINE_DEADLINE;
	}
	if (l->xfer_deadline != 0 && l->xfer_deadline - now < ms) {
		ms = l->xfer_deadline - now;
		*why = LINEIO_XFER_DEADLINE;
	}
	return ms > 0 ? (int)ms : 0;
}

/* At the end of a window: did it bring enough?  Then start the next. */
static int
lineio_rate_ok(struct lineio *l, long long now)
{
	if (l->window_end == 0 || now < l->window_end)
		return 1;
	if (l->nin - l->window_nin < l->window_bytes)
		return 0;
	l->window_nin = l->nin;
	l->window_end = now + l->window_ms;
	return 1;
}

/*
 * The next wait of a loop that began at began: how long (*ms), and
 * whether it ends at the rate window's end, where the loop looks at the
 * rate again (*rate_check).  0 when the wait is over: *why says which
 * limit ended it.
 */
static int
lineio_next_wait(struct lineio *l, long long began, int *ms, int *rate_check,
    enum lineio_end *why)
{
	long long now = net_now_ms();

	if (!lineio_rate_ok(l, now)) {
		*why = LINEIO_TOO_SLOW;
		return 0;
	}
	*ms = lineio_budget(l, began, now, why);
	*rate_check = l->window_end != 0 && l->window_end - now < *ms;
	if (*rate_check)
		*ms = (int)(l->window_end - now);
	return *ms > 0 || *rate_check;
}

/* A wait of up to ms for input, cut to the park time where it may park. */
static int
lineio_wait_ms(const struct lineio *l, int ms)
{
	if (l->parkable && l->park_ms < ms)
		return l->park_now ? 0 : l->park_ms;
	return ms;
}

/* Waits until input can be read.  1, or -1 with errno and l->end set. */
static int
lineio_wait_input(struct lineio *l)
{
	enum lineio_end why;
	long long began = net_now_ms();
	int ms, w, rate_check;

	for (;;) {
		if (!lineio_next_wait(l, began, &ms, &rate_check, &why))
			break;
		w = lineio_wait(l->rfd, POLLIN, lineio_wait_ms(l, ms));
		if (w == 0 && l->parkable) {
			l->parked = 1;
			errno = EAGAIN;
			return -1;
		}
		if (w == 1)
			return 1;
		if (w == -1) {
			l->end = LINEIO_ERROR;
			return -1;
		}
		if (!rate_check)
			break;
	}
	l->end = why;
	errno = ETIMEDOUT;
	return -1;
}

void
lineio_set_tls(struct lineio *l, gnutls_session_t tls)
{
	l->tls = tls;
}

gnutls_session_t
lineio_tls(const struct lineio *l)
{
	return l->tls;
}

/* 1 ready, 0 timed out, -1 error. */
static int
lineio_wait(int fd, short ev, int ms)
{
	struct pollfd p;
	int r;

	p.fd = fd;
	p.events = ev;
	for (;;) {
		r = poll(&p, 1, ms);
		if (r == -1 && errno == EINTR)
			continue;
		return r > 0 ? 1 : r;
	}
}

static ssize_t
lineio_raw_read(struct lineio *l, void *p, size_t n)
{
	enum lineio_end why = LINEIO_IDLE;
	long long now;
	ssize_t r;
	int tries;

	if (l->tls != NULL) {
		/*
		 * A record arriving a byte at a time must not outlast the
		 * deadlines: GnuTLS counts this time across the whole record,
		 * waiting through its pull-timeout function -- never through
		 * the socket's receive timeout, which may be the (short) park
		 * time.
		 */
		now = net_now_ms();
		gnutls_record_set_timeout(l->tls, (unsigned int)lineio_budget(l,
		    now, now, &why) + 1);
		for (tries = 0; ; tries++) {
			r = gnutls_record_recv(l->tls, p, n);
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			/*
			 * TLS 1.3 post-handshake messages (session tickets,
			 * key updates) are consumed without giving data:
			 * wait for what follows them, within the deadline.
			 */
			if (r == GNUTLS_E_AGAIN && tries < LINEIO_TLS_RETRIES &&
			    (gnutls_record_check_pending(l->tls) > 0 ||
			    lineio_wait(l->rfd, POLLIN, l->timeout_ms) == 1))
				continue;
			break;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_TIMEDOUT) {
			l->end = why;
			errno = ETIMEDOUT;
			return -1;
		}
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (r < 0) {
			l->end = LINEIO_ERROR;
			errno = EPROTO;
			return -1;
		}
		return r;
	}
	do {
		r = read(l->rfd, p, n);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		errno = ETIMEDOUT;
	if (r == -1)
		l->end = errno == ETIMEDOUT ? LINEIO_IDLE : LINEIO_ERROR;
	return r;
}

/*
 * Reads what a plain socket has for the input buffer without waiting.
 * Like read(), -1 with errno EAGAIN when there is nothing yet.
 */
static ssize_t
lineio_sock_try(struct lineio *l)
{
	ssize_t r;

	do {
		r = recv(l->rfd, l->in + l->inend, l->incap - l->inend,
		    MSG_DONTWAIT);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	if (r == -1 && errno != EAGAIN)
		l->end = LINEIO_ERROR;
	return r;
}

/*
 * Reads from a plain socket into the input buffer, within the budget and
 * the rate rule, with as few system calls as will do: a plain read bounded
 * by the socket's timeout where that ends within the budget or the rate
 * window; else poll() then read.  how (SOCK_*) says when to try a
 * non-blocking read first (input is often there already).  Like read();
 * on timeout -1 with errno ETIMEDOUT and l->end set.
 */
static ssize_t
lineio_sock_read(struct lineio *l, int how)
{
	enum lineio_end why;
	char *p = l->in + l->inend;
	size_t n = l->incap - l->inend;
	long long now, began = net_now_ms();
	ssize_t r;
	int ms, w, rate_check;

	for (;;) {
		if (!lineio_next_wait(l, began, &ms, &rate_check, &why))
			break;
		if (how == SOCK_TRY)
			return lineio_sock_try(l);
		if (l->parkable && l->park_now) {
			if ((r = lineio_sock_try(l)) == -1 && errno == EAGAIN)
				goto park;
			return r;
		}
		/*
		 * The socket's timeout ends within this wait (the budget, or
		 * the rate window's end, where the loop looks at the rate):
		 * a plain read will do, no poll() first.
		 */
		if (l->rcv_ms <= ms + LINEIO_SLACK_MS) {
			now = net_now_ms();
			r = read(l->rfd, p, n);
			if (r >= 0)
				return r;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				l->end = LINEIO_ERROR;
				return -1;
			}
			if (l->parkable)
				goto park;
			/* The socket's timeout: was it the budget's? */
			if (!rate_check && net_now_ms() - now >= ms)
				break;
			continue;
		}
		if (how == SOCK_PROBE) {
			how = SOCK_WAIT;
			if ((r = lineio_sock_try(l)) != -1 || errno != EAGAIN)
				return r;
		}
		w = lineio_wait(l->rfd, POLLIN, lineio_wait_ms(l, ms));
		if (w == 0 && l->parkable)
			goto park;
		if (w == 1) {
			do {
				r = read(l->rfd, p, n);
			} while (r == -1 && errno == EINTR);
			if (r == -1 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK))
				continue;
			if (r == -1)
				l->end = LINEIO_ERROR;
			return r;
		}
		if (w == -1) {
			l->end = LINEIO_ERROR;
			return -1;
		}
		if (!rate_check)
			break;
	}
	l->end = why;
	errno = ETIMEDOUT;
	return -1;
park:
	l->parked = 1;
	errno = EAGAIN;
	return -1;
}

static ssize_t
lineio_raw_write(struct lineio *l, const void *p, size_t n)
{
	ssize_t r;

	if (l->tls != NULL) {
		do {
			r = gnutls_record_send(l->tls, p, n);
		} while (r == GNUTLS_E_INTERRUPTED);
		if (r < 0) {
			errno = r == GNUTLS_E_AGAIN ? ETIMEDOUT : EPIPE;
			return -1;
		}
		return r;
	}
	do {
		r = write(l->wfd, p, n);
	} while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		errno = ETIMEDOUT;
	return r;
}

/*
 * Reads more input.  Pending output goes out first when the peer has
 * nothing more for us right now: that is the end of a pipelined group.
 * 1 data added, 0 EOF, -1 error, -2 buffer full.
 */
static int
lineio_fill(struct lineio *l)
{
	size_t space;
	ssize_t r;

	if (l->eof) {
		l->end = LINEIO_EOF;
		return 0;
	}
	if (l->inoff > 0 && l->inoff == l->inend)
		l->inoff = l->inend = 0;
	if (l->inend == l->incap) {
		if (l->inoff == 0)
			return -2;
		memmove(l->in, l->in + l->inoff, l->inend - l->inoff);
		l->inend -= l->inoff;
		l->inoff = 0;
	}
	if (l->tls == NULL && l->rcv_ms > 0) {
		/*
		 * A socket: the replies go out when the peer has sent no
		 * more.  On a stream a short read told that already (a
		 * client waiting for a reply sends nothing meanwhile); else a
		 * non-blocking read tells, and takes what there is.
		 */
		space = l->incap - l->inend;
		if (l->out.len > 0 && l->drained) {
			if (lineio_flush(l) == -1)
				return -1;
			r = lineio_sock_read(l, SOCK_WAIT);
		} else if (l->out.len > 0) {
			r = lineio_sock_read(l, SOCK_TRY);
			if (r == -1 && errno == EAGAIN) {
				if (lineio_flush(l) == -1)
					return -1;
				r = lineio_sock_read(l, SOCK_WAIT);
			}
		} else
			r = lineio_sock_read(l, SOCK_PROBE);
		l->drained = l->stream && r >= 0 && (size_t)r < space;
	} else {
		if (l->tls == NULL ||
		    gnutls_record_check_pending(l->tls) == 0) {
			if (l->out.len > 0 &&
			    lineio_wait(l->rfd, POLLIN, 0) != 1 &&
			    lineio_flush(l) == -1)
				return -1;
			if (lineio_wait_input(l) == -1)
				return -1;
		}
		r = lineio_raw_read(l, l->in + l->inend, l->incap - l->inend);
	}
	if (r == -1)
		return -1;
	/* Something came: the rest of the line is waited for in place. */
	l->parkable = 0;
	if (r == 0) {
		l->eof = 1;
		l->end = LINEIO_EOF;
		return 0;
	}
	l->inend += (size_t)r;
	l->nin += (unsigned long long)r;
	return 1;
}

int
lineio_getline_parkable(struct lineio *l, int at_once, char **line,
    size_t *len)
{
	if (l->park_ms > 0 && l->inoff == l->inend && !l->eof &&
	    (l->tls == NULL || gnutls_record_check_pending(l->tls) == 0))
		l->parkable = 1;
	l->park_now = at_once;
	return lineio_getline(l, line, len);
}

int
lineio_getline(struct lineio *l, char **line, size_t *len)
{
	unsigned long long nin = l->nin;
	int empty = l->inoff == l->inend, r;

	l->line_deadline = l->line_ms ? (l->line_begun != 0 ? l->line_begun :
	    net_now_ms()) + l->line_ms : 0;
	l->line_begun = 0;
	r = lineio_getline_raw(l, line, len);
	l->line_deadline = 0;
	l->parkable = 0;
	if (r == -1 && l->parked) {
		l->parked = 0;
		return LINEIO_PARKED;
	}
	/*
	 * The line deadline and the idle timeout are often the same length
	 * and either may expire first; a client that sent nothing of the
	 * line was idle, not slow.
	 */
	if (r == -1 && l->end == LINEIO_LINE_DEADLINE && empty && l->nin == nin)
		l->end = LINEIO_IDLE;
	return r;
}

static int
lineio_getline_raw(struct lineio *l, char **line, size_t *len)
{
	size_t scanned = 0;
	char *nl;
	int r, discarding = 0;

	if (lineio_inbuf(l) == -1)
		return -1;
	for (;;) {
		nl = memchr(l->in + l->inoff + scanned, '\n',
		    l->inend - l->inoff - scanned);
		if (nl != NULL) {
			size_t n = (size_t)(nl - (l->in + l->inoff)) + 1;

			*line = l->in + l->inoff;
			*len = n;
			l->inoff += n;
			if (discarding)
				return -2;
			return 1;
		}
		scanned = l->inend - l->inoff;
		r = lineio_fill(l);
		if (r == -2) {
			/* Too long: drop what we have and look for its end. */
			discarding = 1;
			l->inoff = l->inend = 0;
			scanned = 0;
			continue;
		}
		if (r <= 0)
			return r;
		/* fill may have moved the data to the front. */
		if (scanned > l->inend - l->inoff)
			scanned = 0;
	}
}

int
lineio_getchunk(struct lineio *l, char **p, size_t *len, int *eol)
{
	char *nl;
	size_t have;
	int r;

	if (lineio_inbuf(l) == -1)
		return -1;
	for (;;) {
		have = l->inend - l->inoff;
		nl = memchr(l->in + l->inoff, '\n', have);
		if (nl != NULL) {
			*p = l->in + l->inoff;
			*len = (size_t)(nl - *p) + 1;
			*eol = 1;
			l->inoff += *len;
			return 1;
		}
		r = lineio_fill(l);
		if (r == -2 || (r == 0 && have > 0)) {
			/*
			 * Buffer full without a LF, or EOF after a partial
			 * line: hand over what we have.  Keep a trailing CR
			 * back so that CR LF is never split between chunks.
			 */
			*p = l->in + l->inoff;
			*len = have;
			if (r == -2 && have > 1 && (*p)[have - 1] == '\r')
				(*len)--;
			*eol = 0;
			l->inoff += *len;
			return 1;
		}
		if (r <= 0)
			return r;
	}
}

int
lineio_read(struct lineio *l, char **p, size_t *len, size_t want)
{
	size_t have;
	int r;

	if (want == 0) {
		*len = 0;
		return 1;
	}
	if (lineio_inbuf(l) == -1)
		return -1;
	while ((have = l->inend - l->inoff) == 0) {
		if ((r = lineio_fill(l)) <= 0)
			return r;
	}
	*p = l->in + l->inoff;
	*len = have < want ? have : want;
	l->inoff += *len;
	return 1;
}

size_t
lineio_pending(const struct lineio *l)
{
	size_t n = l->inend - l->inoff;

	if (l->tls != NULL)
		n += gnutls_record_check_pending(l->tls);
	return n;
}

void
lineio_drop_input(struct lineio *l)
{
	l->inoff = l->inend = 0;
}

int
lineio_write(struct lineio *l, const void *p, size_t n)
{
	if (str_append(&l->out, p, n) == -1) {
		if (lineio_flush(l) == -1 || str_append(&l->out, p, n) == -1)
			return -1;
	}
	if (l->out.len >= LINEIO_OUT_FLUSH)
		return lineio_flush(l);
	return 0;
}

int
lineio_printf(struct lineio *l, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = str_vappendf(&l->out, fmt, ap);
	va_end(ap);
	if (r == -1)
		return -1;
	if (l->out.len >= LINEIO_OUT_FLUSH)
		return lineio_flush(l);
	return 0;
}

int
lineio_flush(struct lineio *l)
{
	size_t off = 0;
	long long deadline = 0, now;
	ssize_t r;

	while (off < l->out.len) {
		/* A socket's own timeout bounds a plain write: no poll(). */
		if (l->tls == NULL && l->snd_ms == 0) {
			int w = lineio_wait(l->wfd, POLLOUT, l->timeout_ms);

			if (w <= 0) {
				if (w == 0)
					errno = ETIMEDOUT;
				l->end = w == 0 ? LINEIO_IDLE : LINEIO_ERROR;
				str_clear(&l->out);
				return -1;
			}
		}
		r = lineio_raw_write(l, l->out.s + off, l->out.len - off);
		if (r == -1 && errno == ETIMEDOUT && l->tls == NULL &&
		    l->snd_ms > 0) {
			/* That is the first timeout; the current may be longer. */
			now = net_now_ms();
			if (deadline == 0)
				deadline = now - l->snd_ms + l->timeout_ms;
			if (deadline > now && lineio_wait(l->wfd, POLLOUT,
			    (int)(deadline - now)) == 1)
				continue;
			errno = ETIMEDOUT;
		}
		if (r <= 0) {
			l->end = r == -1 && errno == ETIMEDOUT ? LINEIO_IDLE :
			    LINEIO_ERROR;
			str_clear(&l->out);
			return -1;
		}
		off += (size_t)r;
		l->nout += (unsigned long long)r;
	}
	str_clear(&l->out);
	return 0;
}

size_t
lineio_unflushed(const struct lineio *l)
{
	return l->out.len;
}

void
lineio_counts(const struct lineio *l, unsigned long long *in,
    unsigned long long *out)
{
	*in = l->nin;
	*out = l->nout;
}
