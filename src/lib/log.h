/*
 * log: one line per event, to syslog (facility mail) or to stderr.
 *
 * Lines are built whole in a local buffer and written with one call, so
 * lines from different threads never interleave; to stderr, lines logged
 * while another thread writes go out with that thread's next write (whole
 * lines, never held back for later).  Callers bound untrusted strings
 * themselves (%.100s) or pass them through str_printable().
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/*
 * to_stderr: write to fd 2 instead of syslog; debug: include debug lines.
 * May be called again to switch (after the config has been read).
 */
void	log_init(const char *ident, int to_stderr, int debug);
/*
 * 0 if the syslog socket takes a connection, else -1 with the path and
 * the reason in why: syslog(3) itself drops everything without a word.
 */
int	log_syslog_check(char *why, size_t len);
int	log_debugging(void);
void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_vmsg(enum log_level, const char *fmt, va_list)
	    __attribute__((format(printf, 2, 0)));

#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (log_debugging()) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
