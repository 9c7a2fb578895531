#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "str.h"

#define LOG_LINE_MAX	2048
#ifndef _PATH_LOG
#define _PATH_LOG	"/dev/log"
#endif

static int	 log_to_stderr = 1;
static int	 log_debug_on;
static char	 log_ident[32] = "smtpd";
/*
 * The pid in every stderr line, asked for once rather than per line (the
 * C library no longer caches it); a forked child asks again.
 */
static atomic_long log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

/*
 * Lines to stderr from threads that log while another thread is writing
 * are added to what that thread writes next, in one write of whole lines
 * (at most PIPE_BUF, so that it stays one piece on a pipe too).  A line
 * is never left waiting for a later event: it goes out with the write
 * under way, or its own thread writes it at once.  A line that finds the
 * batch full waits for the writer to take it, so that no line overtakes
 * one logged before it.
 */
#define LOG_BATCH_MAX	PIPE_BUF
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_room = PTHREAD_COND_INITIALIZER;
static char	 log_batch[2][LOG_BATCH_MAX];
static size_t	 log_batch_len;		/* in log_batch[log_batch_cur] */
static int	 log_batch_cur;
static int	 log_writing;		/* a thread takes what is added */

/* Each thread's last second and its text, for the stderr lines. */
static _Thread_local time_t log_stamp_sec;
static _Thread_local char log_stamp[32];
static _Thread_local size_t log_stamp_len;

static void
log_pid_forked(void)
{
	atomic_store_explicit(&log_pid, 0, memory_order_relaxed);
	/* The parent's threads write their own lines; the child starts anew. */
	pthread_mutex_init(&log_mu, NULL);
	pthread_cond_init(&log_room, NULL);
	log_batch_len = 0;
	log_writing = 0;
}

static void
log_pid_watch(void)
{
	(void)pthread_atfork(NULL, NULL, log_pid_forked);
}

static long
log_getpid(void)
{
	long pid = atomic_load_explicit(&log_pid, memory_order_relaxed);

	if (pid == 0) {
		(void)pthread_once(&log_pid_once, log_pid_watch);
		pid = (long)getpid();
		atomic_store_explicit(&log_pid, pid, memory_order_relaxed);
	}
	return pid;
}

void
log_init(const char *ident, int to_stderr, int debug)
{
	if (!log_to_stderr && to_stderr)
		closelog();
	str_lcpy(log_ident, ident, sizeof(log_ident));
	log_to_stderr = to_stderr;
	log_debug_on = debug;
	if (!to_stderr)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int
log_syslog_check(char *why, size_t len)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un sun;
	int fd, i, saved = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	str_lcpy(sun.sun_path, _PATH_LOG, sizeof(sun.sun_path));
	for (i = 0; i < 2; i++) {
		if ((fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) == -1) {
			saved = errno;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			return 0;
		}
		saved = errno;
		close(fd);
	}
	snprintf(why, len, "%s: %s", _PATH_LOG, strerror(saved));
	return -1;
}

int
log_debugging(void)
{
	return log_debug_on;
}

/* A short write to stderr is not worth retrying. */
static void
log_write(const char *p, size_t n)
{
	if (write(2, p, n) < 0)
		return;
}

/* Writes one whole line, with whatever others add meanwhile. */
static void
log_put(const char *line, size_t n)
{
	const char *p;
	size_t len;

	pthread_mutex_lock(&log_mu);
	while (log_writing) {
		if (log_batch_len < LOG_BATCH_MAX &&
		    n <= LOG_BATCH_MAX - log_batch_len) {
			memcpy(&log_batch[log_batch_cur & 1][log_batch_len],
			    line, n);
			log_batch_len += n;
			pthread_mutex_unlock(&log_mu);
			return;
		}
		/* No room: after the lines before it, not before them. */
		pthread_cond_wait(&log_room, &log_mu);
	}
	log_writing = 1;
	pthread_mutex_unlock(&log_mu);
	log_write(line, n);
	pthread_mutex_lock(&log_mu);
	/* Others fill one buffer while the other is written. */
	while (log_batch_len > 0) {
		p = log_batch[log_batch_cur];
		len = log_batch_len;
		log_batch_cur ^= 1;
		log_batch_len = 0;
		pthread_cond_broadcast(&log_room);
		pthread_mutex_unlock(&log_mu);
		log_write(p, len);
		pthread_mutex_lock(&log_mu);
	}
	log_writing = 0;
	pthread_cond_broadcast(&log_room);
	pthread_mutex_unlock(&log_mu);
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[LOG_LINE_MAX];
	size_t n = 0, start, i;
	int r;

	if (log_to_stderr) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		/* The date and time change once a second, not once a line. */
		if (ts.tv_sec != log_stamp_sec || log_stamp_len == 0) {
			gmtime_r(&ts.tv_sec, &tm);
			log_stamp_len = strftime(log_stamp, sizeof(log_stamp),
			    "%Y-%m-%dT%H:%M:%S", &tm);
			log_stamp_sec = ts.tv_sec;
		}
		memcpy(line, log_stamp, log_stamp_len);
		n = log_stamp_len;
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld]: ",
		    ts.tv_nsec / 1000000L, log_ident, log_getpid());
		if (r > 0)
			n += (size_t)r;
	}
	start = n;
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r < 0)
		return;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/*
	 * Text from the network (a client's, a filter's, a next hop's)
	 * cannot start a line of its own or hide part of one: a forged line
	 * would fool whatever reads the log (fail2ban, the administrator).
	 */
	for (i = start; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	if (log_to_stderr) {
		line[n++] = '\n';
		log_put(line, n);
	} else {
		line[n] = '\0';
		syslog(prio[lvl], "%s", line);
	}
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl == LOG_LVL_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}
