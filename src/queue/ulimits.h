/*
 * ulimits: the per-user counts smtpd writes to spool/user-limits, for
 * `smtpq stats` and the metrics.
 */
#ifndef ULIMITS_H
#define ULIMITS_H

#include <stdio.h>

#include "lib/str.h"

/*
 * Appends a "per-user limits" section for the counts of the current
 * window (nothing when there are none).  0, or -1 when out of room.
 */
int	ulimits_text(const char *spool, struct str *);
/* Appends smtpd_user_messages{kind=...,user=...} and the like.  0 or -1. */
int	ulimits_render(const char *spool, struct str *);

#endif
