/*
 * tlsrpt: SMTP TLS reporting (RFC 8460), the sending side.
 *
 * The relay records every TLS outcome under a policy (tlsrpt_record) as
 * one line appended to SPOOL/tlsrpt/DAY/DOMAIN, so a restart loses
 * nothing.  Once a day (tlsrpt_run) each finished day's counts become one
 * JSON report per policy domain that publishes an _smtp._tls record with
 * a mailto: rua, queued as a new message from the reporting address;
 * then the day's records are removed.
 */
#ifndef TLSRPT_H
#define TLSRPT_H

#include <stddef.h>
#include <time.h>

#include "client/client.h"

#define TLSRPT_FILE_MAX	(16UL * 1024 * 1024)	/* per day and domain */

struct spool;

/* Appends one outcome under dir (SPOOL/tlsrpt).  0 or -1 (errno). */
int	tlsrpt_record(const char *dir, const struct client_tls_event *,
	    time_t now);
/*
 * Reports the days before now's (all days with everything), from
 * org (our name) and sender (the reporting address), queued in sp.
 * Returns how many reports were queued, -1 on error (err says why).
 */
int	tlsrpt_run(const char *dir, struct spool *sp, const char *org,
	    const char *sender, time_t now, int everything, char *err,
	    size_t errlen);
/* The report JSON for one day's records of domain (pure, for tests). */
int	tlsrpt_json(const char *records, size_t len, const char *domain,
	    const char *day, const char *org, const char *contact,
	    const char *report_id, char **out);

#endif
