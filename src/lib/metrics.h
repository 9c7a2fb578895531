/*
 * metrics: the daemon's counters, as C11 atomics bumped where the events
 * are logged, and their Prometheus text exposition.
 */
#ifndef METRICS_H
#define METRICS_H

#include "str.h"

void	metrics_session_open(void);
void	metrics_session_close(void);
void	metrics_message_accepted(void);
/* A 4xx or 5xx reply, by code and enhanced status ("" when none). */
void	metrics_reply_refused(int code, const char *status);
void	metrics_auth(int ok);
/* result: "delivered", "relayed", "bounced", "expired", "deferred". */
void	metrics_delivery(const char *result, int remote);
/* From the end of DATA (or the last BDAT) to the 250. */
void	metrics_accept_latency(double seconds);
/*
 * The runner is another process: smtpd_deliveries_total is left out
 * rather than served as zeros.  Call before any render.
 */
void	metrics_no_deliveries(void);
/* Appends every counter in the text format, version 0.0.4.  0 or -1. */
int	metrics_render(struct str *);

#endif
