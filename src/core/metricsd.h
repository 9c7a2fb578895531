/*
 * metricsd: a small HTTP/1.x responder for Prometheus, in a thread of
 * its own: GET /metrics, one request per connection.
 */
#ifndef METRICSD_H
#define METRICSD_H

#include <stddef.h>

struct metricsd;

/*
 * Listens on addr ("127.0.0.1:9125") and serves the counters and the
 * queue of spool.  NULL with a reason in err.
 */
struct metricsd *metricsd_start(const char *addr, const char *spool,
	    char *err, size_t errlen);
void	metricsd_stop(struct metricsd **);

#endif
