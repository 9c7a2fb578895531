/*
 * qstats: the queue's size by state, from the spool's directories, for
 * the metrics listener and `smtpq stats --prometheus`.
 */
#ifndef QSTATS_H
#define QSTATS_H

#include "lib/str.h"

struct qstats {
	long	 queued;	/* files in queue/: every accepted message */
	long	 deferred;	/* of those, tried at least once (state/) */
	long	 held;		/* hold/ */
	long	 corrupt;	/* corrupt/ */
	long	 incoming;	/* tmp/: still arriving */
};

/* Counts what spool holds; a missing directory counts 0.  0 or -1. */
int	qstats_count(const char *spool, struct qstats *);
/* Appends smtpd_queue_messages{state=...} in the text format.  0 or -1. */
int	qstats_render(const struct qstats *, struct str *);
/* `smtpq stats --prometheus`: the counts on stdout.  A sysexits code. */
int	qstats_print_prometheus(const char *spool);

#endif
