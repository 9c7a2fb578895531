/*
 * A delivery round: one message read, its due recipients grouped into one
 * job per destination, and when the last job is done, the results, DSNs
 * and either the message's removal or its next due time.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/str.h"
#include "agent.h"
#include "alias.h"
#include "dsn.h"
#include "envelope.h"
#include "qstore.h"
#include "runner_int.h"

static void	 requeue(struct runner *, struct sched_msg *, time_t);
static void	 round_ended(struct runner *);

static int
notify_failure(const struct envelope *env, const struct env_rcpt *o)
{
	if (env->sender[0] == '\0')
		return 0;	/* never a bounce to a bounce */
	return o->notify == 0 || (o->notify & ENV_NOTIFY_FAILURE);
}

void
round_apply(struct round *rd, struct qstore_rcpt *q,
    const struct agent_result *res, time_t now)
{
	const struct envelope *env = rd->env;
	const struct env_rcpt *o = &env->rcpts[q->orig];
	const char *what = "?";
	char orig[300];
	time_t next = 0;

	rd->changed = 1;
	q->attempts++;
	q->last = now;
	q->reply = res->reply;
	str_lcpy(q->mta, res->mta, sizeof(q->mta));
	switch (res->status) {
	case AGENT_DELIVERED:
	case AGENT_RELAYED:
		q->state = res->status == AGENT_DELIVERED ? QS_DELIVERED :
		    QS_RELAYED;
		q->dsn = (o->notify & ENV_NOTIFY_SUCCESS) &&
		    env->sender[0] != '\0' ? QS_DSN_OWED : QS_DSN_NONE;
		what = res->status == AGENT_DELIVERED ? "delivered" : "relayed";
		break;
	case AGENT_PASSED:
		q->state = QS_DELIVERED;
		q->dsn = QS_DSN_NONE;
		what = "relayed";
		break;
	case AGENT_PERM:
		q->state = QS_FAILED;
		q->dsn = notify_failure(env, o) ? QS_DSN_OWED : QS_DSN_NONE;
		what = "bounced";
		break;
	case AGENT_TEMP:
		if (sched_give_up(&rd->r->q, rd->qc, env->arrival, q->attempts,
		    &q->next)) {
			q->state = QS_FAILED;
			if (q->reply.status[0] != '4')
				str_lcpy(q->reply.status, "4.4.7",
				    sizeof(q->reply.status));
			q->dsn = notify_failure(env, o) ? QS_DSN_OWED :
			    QS_DSN_NONE;
			what = "expired";
		} else {
			next = q->next > now ? q->next - now : 1;
			what = "deferred";
		}
		break;
	}
	metrics_delivery(what, q->mta[0] != '\0');
	orig[0] = '\0';
	if (strcmp(o->mailbox, q->mailbox) != 0)
		snprintf(orig, sizeof(orig), " orig=<%.200s>", o->mailbox);
	if (next)
		log_info("%s queue %s to=<%.256s>%s attempts=%u next=%llds "
		    "reply=\"%d %s %.300s\"", rd->m->id, what, q->mailbox, orig,
		    q->attempts, (long long)next, q->reply.code,
		    q->reply.status, q->reply.text);
	else
		log_info("%s queue %s to=<%.256s>%s%s%s reply=\"%d %s %.300s\"",
		    rd->m->id, what, q->mailbox, orig, q->mta[0] ? " relay=" :
		    "", q->mta, q->reply.code, q->reply.status, q->reply.text);
}

/* Writes the round's state under the message lock (round's mu held). */
int
round_save(struct round *rd)
{
	char err[512];
	int rc;

	if ((rc = qstore_lock(rd->fd)) != 0) {
		if (rc == -1)
			log_err("%s queue cannot lock the message: %s",
			    rd->m->id, strerror(errno));
		return -1;
	}
	rc = qstore_state_save(rd->r->qs, rd->m->id, rd->st, err,
	    sizeof(err));
	qstore_unlock(rd->fd);
	if (rc == -1)
		log_err("%s queue cannot save state: %s", rd->m->id, err);
	return rc;
}

/*
 * A bare <Postmaster> that an older smtpd queued as it came is ours:
 * postmaster@hostname, routed like our other addresses.  0 or -1.
 */
static int
qualify_postmaster(struct round *rd)
{
	char buf[300];
	size_t i;

	for (i = 0; i < rd->env->nrcpts; i++) {
		if (strchr(rd->env->rcpts[i].mailbox, '@') != NULL)
			continue;
		if ((size_t)snprintf(buf, sizeof(buf), "postmaster@%s",
		    rd->qc->hostname) >= sizeof(buf))
			continue;	/* cannot be: hostname is a domain */
		if (envelope_set_mailbox(rd->env, i, buf) == -1)
			return -1;
	}
	return 0;
}

/*
 * The state of a message seen for the first time: aliases expanded.
 * *aliased counts the recipients that were aliases.
 */
static struct qstore_state *
initial_state(struct round *rd, size_t *aliased)
{
	struct qstore_state *st;
	struct qstore_rcpt *q;
	struct qc_addrset rcpts, addrs;
	char **list, err[256];
	size_t i, j, n;
	int rc;

	memset(&rcpts, 0, sizeof(rcpts));
	memset(&addrs, 0, sizeof(addrs));
	*aliased = 0;
	if ((st = qstore_state_new()) == NULL)
		return NULL;
	for (i = 0; i < rd->env->nrcpts; i++) {
		/* A recipient given twice (in any case) expands once. */
		if ((rc = queueconf_addrset_add(&rcpts,
		    rd->env->rcpts[i].mailbox)) == -1)
			goto fail;
		if (rc == 0)
			continue;
		rc = queueconf_expand(rd->qc, rd->env->rcpts[i].mailbox, &list,
		    &n, err, sizeof(err));
		if (rc == -2) {
			/* An alias table is down: try the message later. */
			log_err("%s queue deferred: %s", rd->m->id, err);
			errno = EAGAIN;
			goto fail;
		}
		if (rc == -1) {
			if (queueconf_addrset_add(&addrs,
			    rd->env->rcpts[i].mailbox) == -1 ||
			    qstore_state_add(st, rd->env->rcpts[i].mailbox, i) ==
			    -1)
				goto fail;
			q = &st->r[st->n - 1];
			q->state = QS_FAILED;
			q->dsn = notify_failure(rd->env, &rd->env->rcpts[i]) ?
			    QS_DSN_OWED : QS_DSN_NONE;
			(void)reply_set(&q->reply, 550, "5.4.6", "%s", err);
			q->last = sched_now(&rd->r->q);
			log_info("%s queue bounced to=<%.256s> reply=\"550 5.4.6 "
			    "%s\"", rd->m->id, q->mailbox, err);
			continue;
		}
		if (n != 1 || strcmp(list[0], rd->env->rcpts[i].mailbox) != 0)
			(*aliased)++;
		for (j = 0; j < n; j++) {
			/* One copy per address, however many ways lead to it. */
			if ((rc = queueconf_addrset_add(&addrs, list[j])) == 0)
				continue;
			if (rc == -1 || qstore_state_add(st, list[j], i) == -1) {
				queueconf_free_list(&list, n);
				goto fail;
			}
		}
		queueconf_free_list(&list, n);
	}
	queueconf_addrset_free(&rcpts);
	queueconf_addrset_free(&addrs);
	return st;
fail:
	queueconf_addrset_free(&rcpts);
	queueconf_addrset_free(&addrs);
	qstore_state_free(&st);
	return NULL;
}

/*
 * 1 if a round with no deliveries has nothing to do either (no DSN owed,
 * no delay warning due, recipients still pending); *due gets the time of
 * the next attempt.
 */
static int
round_idle(struct round *rd, time_t now, time_t *due)
{
	struct qstore_rcpt *q;
	size_t i;
	int pending = 0;

	*due = 0;
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->dsn == QS_DSN_OWED)
			return 0;
		if (q->state != QS_PENDING)
			continue;
		pending = 1;
		if (*due == 0 || q->next < *due)
			*due = q->next;
	}
	if (!pending)
		return 0;
	if (!rd->st->warned && rd->qc->delay_warning != 0 &&
	    now - rd->env->arrival >= (time_t)rd->qc->delay_warning)
		return 0;
	return 1;
}

/* A round is over (runner lock held). */
static void
round_ended(struct runner *r)
{
	r->busy_rounds--;
	if (r->throttled || r->once)
		sched_wakeup(r);
}

static void
requeue(struct runner *r, struct sched_msg *m, time_t due)
{
	pthread_mutex_lock(&r->mu);
	round_ended(r);
	m->busy = 0;
	m->due = m->wake ? sched_now(&r->q) : due;
	m->wake = 0;
	if (r->once || m->due < r->sleep_until)
		sched_wakeup(r);
	/*
	 * One pass tries a message once: known but out of the heap, it is
	 * neither due again nor new to a rescan before the pass ends.
	 */
	if (!r->once && sched_push(&r->q, m) == -1)
		sched_forget(&r->q, m);
	pthread_mutex_unlock(&r->mu);
}

void
round_free(struct round *rd)
{
	if (rd->fd != -1)
		close(rd->fd);
	envelope_free(&rd->env);
	qstore_state_free(&rd->st);
	queueconf_unref(&rd->qc);
	pthread_mutex_destroy(&rd->mu);
	free(rd);
}

void
round_job_free(struct job *j)
{
	free(j->ridx);
	free(j);
}

/*
 * Reads message m and queues jobs for its due recipients (in a worker,
 * runner lock not held).
 */
void
round_load(struct runner *r, struct sched_msg *m)
{
	struct round *rd;
	struct job_list jobs = TAILQ_HEAD_INITIALIZER(jobs);
	struct job *j;
	struct qstore_rcpt *q;
	struct agent_result res;
	const struct route *route;
	char err[512], dest[DEST_MAX], key[KEY_MAX];
	size_t i, *nr, aliased;
	time_t now = sched_now(&r->q);
	int rc, force, njobs = 0;

	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		requeue(r, m, now + 60);
		return;
	}
	rd->r = r;
	rd->m = m;
	rd->fd = -1;
	pthread_mutex_init(&rd->mu, NULL);
	pthread_mutex_lock(&r->mu);
	rd->qc = queueconf_ref(r->qc);
	force = m->force;
	m->force = 0;
	pthread_mutex_unlock(&r->mu);

	if ((rd->fd = qstore_open_msg(r->qs, m->id)) == -1) {
		if (errno != ENOENT) {
			log_err("%s queue cannot open: %s", m->id,
			    strerror(errno));
			requeue(r, m, now + (time_t)rd->qc->retry_min);
		} else {
			pthread_mutex_lock(&r->mu);
			round_ended(r);
			sched_forget(&r->q, m);
			pthread_mutex_unlock(&r->mu);
		}
		round_free(rd);
		return;
	}
	if ((rc = envelope_read(rd->fd, &rd->env, err, sizeof(err))) != 0) {
		if (rc == -2) {
			log_err("%s queue damaged message moved to corrupt/: %s",
			    m->id, err);
			if (qstore_quarantine(r->qs, m->id) == 0) {
				pthread_mutex_lock(&r->mu);
				round_ended(r);
				sched_forget(&r->q, m);
				pthread_mutex_unlock(&r->mu);
				round_free(rd);
				return;
			}
			log_err("%s queue cannot move to corrupt/: %s", m->id,
			    strerror(errno));
		} else
			log_err("%s queue cannot read: %s", m->id, err);
		requeue(r, m, now + (time_t)rd->qc->retry_max);
		round_free(rd);
		return;
	}
	if (qstore_held(r->qs, m->id)) {
		log_debug("%s queue on hold", m->id);
		pthread_mutex_lock(&r->mu);
		round_ended(r);
		m->busy = 0;
		m->held = 1;
		if (m->wake) {
			/* Released while we looked: have another look. */
			m->wake = 0;
			m->held = 0;
			m->due = now;
			if (sched_push(&r->q, m) == -1)
				sched_forget(&r->q, m);
		}
		pthread_mutex_unlock(&r->mu);
		round_free(rd);
		return;
	}
	if (qualify_postmaster(rd) == -1) {
		log_err("%s queue out of memory", m->id);
		requeue(r, m, now + 60);
		round_free(rd);
		return;
	}
	rc = qstore_state_load(r->qs, m->id, &rd->st, err, sizeof(err));
	if (rc == 0) {
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].orig >= rd->env->nrcpts)
				break;
		if (i < rd->st->n) {
			rc = -2;
			snprintf(err, sizeof(err), "recipient index out of "
			    "range");
			qstore_state_free(&rd->st);
		}
	}
	if (rc == -2) {
		/* Starting over may deliver twice, but loses nothing. */
		log_err("%s queue damaged state discarded (delivery starts "
		    "over): %s", m->id, err);
		(void)qstore_state_discard(r->qs, m->id);
		rc = 1;
	}
	if (rc == -1) {
		log_err("%s queue cannot read state: %s", m->id, err);
		requeue(r, m, now + (time_t)rd->qc->retry_min);
		round_free(rd);
		return;
	}
	if (rc == 1 && (rd->st = initial_state(rd, &aliased)) == NULL) {
		if (errno != EAGAIN)
			log_err("%s queue out of memory", m->id);
		requeue(r, m, now + 60);
		round_free(rd);
		return;
	}
	if (rc == 1 && aliased > 0)
		log_info("%s queue expanded nrcpt=%zu aliases=%zu addresses=%zu",
		    m->id, rd->env->nrcpts, aliased, rd->st->n);

	/* Group the due recipients by destination. */
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->state != QS_PENDING || (!force && q->next > now))
			continue;
		if ((route = queueconf_route_from(rd->qc, q->mailbox,
		    rd->env->sender, rd->env->auth)) == NULL) {
			agent_set(&res, AGENT_TEMP, 451, "4.3.5", "no route for "
			    "this recipient in %.200s", rd->qc->file);
			res.mta[0] = '\0';
			round_apply(rd, q, &res, now);
			continue;
		}
		agent_dest(route, q->mailbox, dest, sizeof(dest));
		snprintf(key, sizeof(key), "%u:%s", route->index, dest);
		for (j = TAILQ_FIRST(&jobs); j != NULL; j = TAILQ_NEXT(j, entry))
			if (strcmp(j->key, key) == 0)
				break;
		if (j == NULL) {
			if ((j = calloc(1, sizeof(*j))) == NULL)
				goto nomem;
			j->rd = rd;
			j->route = route;
			str_lcpy(j->key, key, sizeof(j->key));
			str_lcpy(j->dest, dest, sizeof(j->dest));
			TAILQ_INSERT_HEAD(&jobs, j, entry);
			njobs++;
		}
		if (j->n == j->cap) {
			j->cap = j->cap ? j->cap * 2 : 4;
			if ((nr = realloc(j->ridx, j->cap * sizeof(*nr))) ==
			    NULL)
				goto nomem;
			j->ridx = nr;
		}
		j->ridx[j->n++] = i;
	}
	if (njobs == 0) {
		time_t due;

		if (!rd->changed && round_idle(rd, now, &due)) {
			/* Not due yet: nothing to write. */
			requeue(r, m, due);
			round_free(rd);
			return;
		}
		round_finish(rd);
		return;
	}
	rd->jobs_left = njobs;
	pthread_mutex_lock(&r->mu);
	while ((j = TAILQ_FIRST(&jobs)) != NULL) {
		struct rdest *d;

		TAILQ_REMOVE(&jobs, j, entry);
		if ((d = pool_dest_get(r, j)) == NULL) {
			/* Dropped job: its recipients wait for the next round. */
			rd->jobs_left--;
			round_job_free(j);
			continue;
		}
		TAILQ_INSERT_TAIL(&d->jobs, j, entry);
		d->njobs++;
		pool_dest_update(r, d);
	}
	pthread_cond_broadcast(&r->work_cv);
	if (rd->jobs_left == 0) {
		pthread_mutex_unlock(&r->mu);
		round_finish(rd);
		return;
	}
	pthread_mutex_unlock(&r->mu);
	return;
nomem:
	log_err("%s queue out of memory", m->id);
	while ((j = TAILQ_FIRST(&jobs)) != NULL) {
		TAILQ_REMOVE(&jobs, j, entry);
		round_job_free(j);
	}
	requeue(r, m, now + 60);
	round_free(rd);
}

/* A list of the recipients a DSN of kind reports on. */
static int
send_dsn(struct round *rd, enum dsn_kind kind, time_t now)
{
	struct dsn_report rep;
	struct dsn_rcpt *dr;
	struct qstore_rcpt *q;
	const struct env_rcpt *o;
	char id[SPOOL_ID_LEN + 1], err[512];
	size_t i, n = 0;
	int want;

	if ((dr = calloc(rd->st->n, sizeof(*dr))) == NULL)
		return -1;
	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		o = &rd->env->rcpts[q->orig];
		switch (kind) {
		case DSN_FAILURE:
			want = q->state == QS_FAILED && q->dsn == QS_DSN_OWED;
			break;
		case DSN_SUCCESS:
			want = (q->state == QS_DELIVERED ||
			    q->state == QS_RELAYED) && q->dsn == QS_DSN_OWED;
			break;
		default:
			want = q->state == QS_PENDING && (o->notify == 0 ||
			    (o->notify & ENV_NOTIFY_DELAY));
			break;
		}
		if (!want)
			continue;
		dr[n].mailbox = q->mailbox;
		dr[n].orcpt = o->orcpt;
		dr[n].action = kind == DSN_FAILURE ? "failed" :
		    kind == DSN_DELAY ? "delayed" :
		    q->state == QS_RELAYED ? "relayed" : "delivered";
		dr[n].reply = &q->reply;
		dr[n].mta = q->mta;
		dr[n].last_attempt = q->last;
		n++;
	}
	if (n == 0) {
		free(dr);
		return 0;
	}
	memset(&rep, 0, sizeof(rep));
	rep.kind = kind;
	rep.hostname = rd->qc->hostname;
	rep.queue_id = rd->m->id;
	rep.env = rd->env;
	rep.fd = rd->fd;
	rep.bounce_size = rd->qc->bounce_size;
	rep.retry_until = rd->env->arrival + (time_t)rd->qc->lifetime;
	rep.rcpts = dr;
	rep.nrcpts = n;
	if (dsn_queue(rd->r->sp, &rep, id, sizeof(id), err, sizeof(err)) ==
	    -1) {
		log_err("%s queue cannot send a DSN: %s", rd->m->id, err);
		free(dr);
		return -1;
	}
	free(dr);
	log_info("%s queue dsn id=%s kind=%s to=<%.256s> nrcpt=%zu", rd->m->id,
	    id, kind == DSN_FAILURE ? "failure" : kind == DSN_DELAY ? "delay" :
	    "success", rd->env->sender, n);
	(void)now;
	return 0;
}

/*
 * The end of a round: expiry, DSNs, and either the message's removal or
 * its next due time.  The round is no longer shared.
 */
void
round_finish(struct round *rd)
{
	struct runner *r = rd->r;
	struct sched_msg *m = rd->m;
	struct qstore_rcpt *q;
	time_t now = sched_now(&r->q), due = 0;
	char err[512];
	size_t i;
	int rc, final = 1, owed = 0, pending = 0;

	if ((rc = qstore_lock(rd->fd)) != 0) {
		if (rc == 1) {
			log_info("%s queue removed while being delivered",
			    m->id);
			pthread_mutex_lock(&r->mu);
			round_ended(r);
			sched_forget(&r->q, m);
			if (r->once)
				sched_wakeup(r);
			pthread_mutex_unlock(&r->mu);
		} else {
			log_err("%s queue cannot lock: %s", m->id,
			    strerror(errno));
			requeue(r, m, now + (time_t)rd->qc->retry_min);
		}
		round_free(rd);
		return;
	}

	for (i = 0; i < rd->st->n; i++)
		if (rd->st->r[i].state == QS_PENDING)
			pending = 1;
	if (pending && !rd->st->warned && rd->qc->delay_warning != 0 &&
	    now - rd->env->arrival >= (time_t)rd->qc->delay_warning) {
		if (rd->env->sender[0] == '\0' ||
		    send_dsn(rd, DSN_DELAY, now) == 0)
			rd->st->warned = 1;
	}
	if (send_dsn(rd, DSN_FAILURE, now) == 0)
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].state == QS_FAILED &&
			    rd->st->r[i].dsn == QS_DSN_OWED)
				rd->st->r[i].dsn = QS_DSN_SENT;
	if (send_dsn(rd, DSN_SUCCESS, now) == 0)
		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].state != QS_PENDING &&
			    rd->st->r[i].state != QS_FAILED &&
			    rd->st->r[i].dsn == QS_DSN_OWED)
				rd->st->r[i].dsn = QS_DSN_SENT;
	/* A report still not sent after the lifetime is given up. */
	if (now - rd->env->arrival >= (time_t)rd->qc->lifetime) {
		size_t dropped = 0;

		for (i = 0; i < rd->st->n; i++)
			if (rd->st->r[i].dsn == QS_DSN_OWED) {
				rd->st->r[i].dsn = QS_DSN_NONE;
				dropped++;
			}
		if (dropped > 0)
			log_warn("%s queue dsn dropped to=<%.256s> nrcpt=%zu: "
			    "not sent within the lifetime", m->id,
			    rd->env->sender, dropped);
	}

	for (i = 0; i < rd->st->n; i++) {
		q = &rd->st->r[i];
		if (q->dsn == QS_DSN_OWED)
			owed = 1;
		if (q->state == QS_PENDING) {
			final = 0;
			if (due == 0 || q->next < due)
				due = q->next;
		}
	}
	if (final && !owed) {
		if (qstore_remove(r->qs, m->id) == -1) {
			log_err("%s queue cannot remove: %s", m->id,
			    strerror(errno));
			qstore_unlock(rd->fd);
			requeue(r, m, now + (time_t)rd->qc->retry_min);
			round_free(rd);
			return;
		}
		qstore_unlock(rd->fd);
		log_info("%s queue removed: every recipient is done", m->id);
		pthread_mutex_lock(&r->mu);
		round_ended(r);
		sched_forget(&r->q, m);
		if (r->once)
			sched_wakeup(r);
		pthread_mutex_unlock(&r->mu);
		round_free(rd);
		return;
	}
	if (qstore_state_save(r->qs, m->id, rd->st, err, sizeof(err)) == -1)
		log_err("%s queue cannot save state: %s", m->id, err);
	qstore_unlock(rd->fd);
	/* A DSN that could not be queued is tried again soon. */
	if (owed && (due == 0 || due > now + (time_t)rd->qc->retry_min))
		due = now + (time_t)rd->qc->retry_min;
	requeue(r, m, due);
	round_free(rd);
}
