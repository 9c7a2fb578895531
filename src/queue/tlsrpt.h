/*
 * tlsrpt: SMTP TLS reporting (RFC 8460), the sending side.
 *
 * The relay records every TLS outcome under a policy (tlsrpt_record) as
 * one line appended to SPOOL/tlsrpt/DAY/DOMAIN, so a restart loses
 * nothing.  Once a day (tlsrpt_daily, from the queue runner) or on
 * request (smtpq tlsrpt), each finished day's records become one gzip'd
 * JSON report per policy domain that publishes an _smtp._tls record with
 * a mailto: rua, queued as a new message from the reporting address;
 * then the records are removed, so a report goes out once.
 */
#ifndef TLSRPT_H
#define TLSRPT_H

#include <stddef.h>
#include <time.h>

#include "client/client.h"

#define TLSRPT_FILE_MAX	(16UL * 1024 * 1024)	/* per day and domain */

struct spool;
struct queue_conf;

/* Appends one outcome under dir (SPOOL/tlsrpt).  0 or -1 (errno). */
int	tlsrpt_record(const char *dir, const struct client_tls_event *,
	    time_t now);
/*
 * Reports the records under dir, from org (organization-name) and sender
 * (the reporting address), queued in sp: those of day ("YYYY-MM-DD"), or
 * with day NULL those of every day before now's (and of now's too with
 * today set; a report of today ends at now).  Returns how many reports
 * were queued, -1 on error (err says why).
 */
int	tlsrpt_run(const char *dir, struct spool *sp, const char *org,
	    const char *sender, const char *day, int today, time_t now,
	    char *err, size_t errlen);
/*
 * The runner's daily work: the first call of each UTC day reports the
 * finished days, when queue.tlsrpt is set.  Logs what it did.
 */
void	tlsrpt_daily(struct spool *sp, const struct queue_conf *, time_t now);
/* smtpq tlsrpt [--now] [--day YYYY-MM-DD]: an exit status (sysexits). */
int	tlsrpt_main(int argc, char **argv, const struct queue_conf *);

/* The report JSON for one day's records of domain (pure, for tests):
 * start and end are the date-range's ISO 8601 times.  0 or -1. */
int	tlsrpt_json(const char *records, size_t len, const char *domain,
	    const char *start, const char *end, const char *org,
	    const char *contact, const char *report_id, char **out);

/* For the tlsrpt files: "YYYY-MM-DD" of t (UTC), 0 or -1; whether d is
 * a host name fit to name a file (1 or 0). */
int	tlsrpt_day_name(time_t t, char *buf, size_t len);
int	tlsrpt_valid_domain(const char *d);

#endif
