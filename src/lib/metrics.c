/*
 * The counters are plain C11 atomics, so that the places that count (one
 * per log line) cost an atomic add and take no lock.  Labelled counters
 * whose labels come from the traffic (reply codes) live in a small fixed
 * table: a slot is claimed once under a lock, and past the table's end
 * everything counts as status="other".
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

#define REFUSE_SLOTS	64

static const char *const delivery_results[] = {
	"delivered", "relayed", "bounced", "expired", "deferred"
};
#define NRESULTS	(sizeof(delivery_results) / sizeof(delivery_results[0]))

/*
 * Upper bounds of the latency histogram, in seconds: from half a
 * millisecond, as a group commit on a fast disk takes less than 5.
 */
static const double lat_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10
};
#define NBOUNDS		(sizeof(lat_bounds) / sizeof(lat_bounds[0]))
#define LATENCY		"smtpd_accept_latency_seconds"

struct refuse_slot {
	int		 code;
	char		 status[12];
	atomic_ulong	 n;
};

static atomic_long	sessions_open;
static atomic_ulong	sessions_total;
static atomic_ulong	accepted_total;
static atomic_ulong	auth_ok, auth_fail;
static atomic_ulong	deliveries[NRESULTS][2];	/* [result][remote] */
static atomic_ulong	lat_buckets[NBOUNDS + 1];	/* the last is +Inf */
static atomic_ulong	lat_sum_us;
static atomic_int	no_deliveries;

static pthread_mutex_t	refuse_mu = PTHREAD_MUTEX_INITIALIZER;
static struct refuse_slot refuse[REFUSE_SLOTS];
static atomic_uint	nrefuse;	/* slots in use, published last */
static atomic_ulong	refuse_other;

void
metrics_session_open(void)
{
	atomic_fetch_add(&sessions_open, 1);
	atomic_fetch_add(&sessions_total, 1);
}

void
metrics_session_close(void)
{
	atomic_fetch_sub(&sessions_open, 1);
}

void
metrics_message_accepted(void)
{
	atomic_fetch_add(&accepted_total, 1);
}

void
metrics_auth(int ok)
{
	atomic_fetch_add(ok ? &auth_ok : &auth_fail, 1);
}

/* An enhanced status as sent: digits and dots only, or "". */
static int
plain_status(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((s[i] < '0' || s[i] > '9') && s[i] != '.')
			return 0;
	return i < sizeof(refuse[0].status);
}

void
metrics_reply_refused(int code, const char *status)
{
	unsigned int i, n;

	if (status == NULL || !plain_status(status))
		status = "";
	n = atomic_load(&nrefuse);
	for (i = 0; i < n; i++)
		if (refuse[i].code == code &&
		    strcmp(refuse[i].status, status) == 0) {
			atomic_fetch_add(&refuse[i].n, 1);
			return;
		}
	pthread_mutex_lock(&refuse_mu);
	n = atomic_load(&nrefuse);
	for (i = 0; i < n; i++)
		if (refuse[i].code == code &&
		    strcmp(refuse[i].status, status) == 0)
			break;
	if (i == n && n < REFUSE_SLOTS) {
		refuse[n].code = code;
		memcpy(refuse[n].status, status, strlen(status) + 1);
		atomic_store(&nrefuse, n + 1);
	}
	pthread_mutex_unlock(&refuse_mu);
	if (i < REFUSE_SLOTS)
		atomic_fetch_add(&refuse[i].n, 1);
	else
		atomic_fetch_add(&refuse_other, 1);
}

void
metrics_delivery(const char *result, int remote)
{
	size_t i;

	for (i = 0; i < NRESULTS; i++)
		if (strcmp(result, delivery_results[i]) == 0) {
			atomic_fetch_add(&deliveries[i][remote != 0], 1);
			return;
		}
}

void
metrics_accept_latency(double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < NBOUNDS; i++)
		if (seconds <= lat_bounds[i])
			break;
	atomic_fetch_add(&lat_buckets[i], 1);
	atomic_fetch_add(&lat_sum_us, (unsigned long)(seconds * 1e6));
}

static int
header(struct str *o, const char *name, const char *type, const char *help)
{
	return str_appendf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

void
metrics_no_deliveries(void)
{
	atomic_store(&no_deliveries, 1);
}

int
metrics_render(struct str *o)
{
	unsigned long cum = 0;
	unsigned int i, n;
	size_t r;
	int rc = 0;

	rc |= header(o, "smtpd_sessions_open", "gauge",
	    "SMTP sessions running now.");
	rc |= str_appendf(o, "smtpd_sessions_open %ld\n",
	    atomic_load(&sessions_open));
	rc |= header(o, "smtpd_sessions_total", "counter",
	    "SMTP sessions started.");
	rc |= str_appendf(o, "smtpd_sessions_total %lu\n",
	    atomic_load(&sessions_total));
	rc |= header(o, "smtpd_messages_accepted_total", "counter",
	    "Messages acknowledged with 250 and queued.");
	rc |= str_appendf(o, "smtpd_messages_accepted_total %lu\n",
	    atomic_load(&accepted_total));
	rc |= header(o, "smtpd_refused_total", "counter",
	    "4xx and 5xx replies, by code and enhanced status.");
	n = atomic_load(&nrefuse);
	for (i = 0; i < n; i++)
		rc |= str_appendf(o, "smtpd_refused_total{code=\"%d\","
		    "class=\"%dxx\",status=\"%s\"} %lu\n", refuse[i].code,
		    refuse[i].code / 100, refuse[i].status,
		    atomic_load(&refuse[i].n));
	if (atomic_load(&refuse_other) > 0)
		rc |= str_appendf(o, "smtpd_refused_total{code=\"other\","
		    "class=\"other\",status=\"other\"} %lu\n",
		    atomic_load(&refuse_other));
	rc |= header(o, "smtpd_auth_total", "counter",
	    "AUTH exchanges, by result.");
	rc |= str_appendf(o, "smtpd_auth_total{result=\"success\"} %lu\n"
	    "smtpd_auth_total{result=\"failure\"} %lu\n",
	    atomic_load(&auth_ok), atomic_load(&auth_fail));
	if (!atomic_load(&no_deliveries))
		rc |= header(o, "smtpd_deliveries_total", "counter",
		    "Delivery attempts by the queue runner, by result and "
		    "destination.");
	for (r = 0; r < NRESULTS && !atomic_load(&no_deliveries); r++)
		rc |= str_appendf(o, "smtpd_deliveries_total{result=\"%s\","
		    "destination=\"local\"} %lu\n"
		    "smtpd_deliveries_total{result=\"%s\","
		    "destination=\"remote\"} %lu\n", delivery_results[r],
		    atomic_load(&deliveries[r][0]), delivery_results[r],
		    atomic_load(&deliveries[r][1]));
	rc |= header(o, "smtpd_accept_latency_seconds", "histogram",
	    "From the end of a message's data to its 250.");
	for (i = 0; i <= NBOUNDS; i++) {
		cum += atomic_load(&lat_buckets[i]);
		if (i < NBOUNDS)
			rc |= str_appendf(o, "%s_bucket{le=\"%g\"} %lu\n",
			    LATENCY, lat_bounds[i], cum);
		else
			rc |= str_appendf(o, "%s_bucket{le=\"+Inf\"} %lu\n",
			    LATENCY, cum);
	}
	rc |= str_appendf(o, "smtpd_accept_latency_seconds_sum %.6f\n"
	    "smtpd_accept_latency_seconds_count %lu\n",
	    (double)atomic_load(&lat_sum_us) / 1e6, cum);
	return rc != 0 ? -1 : 0;
}
