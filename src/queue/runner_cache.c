/*
 * The runner's idle sessions: a worker whose destination has no more
 * messages for now keeps its agent session (an SMTP or LMTP connection)
 * for CACHE_KEEP_MS instead of closing it, and the next worker with a
 * message for that destination takes it over: a steady stream of mail
 * to one next hop then costs one connection, not one a message.
 *
 * Connections to a destination stay within its concurrency: a new one is
 * opened only when none is idle, so active + idle never passes the limit
 * that active alone is held to.  At most one idle session per worker in
 * all.  Idle sessions are closed when they expire (a waiting worker wakes
 * for the earliest), when the server has sent something meanwhile (a
 * 421, its closing) and when the runner stops.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/net.h"
#include "agent.h"
#include "runner_int.h"

/* Postfix keeps an unused connection two seconds too. */
#define CACHE_KEEP_MS	2000

struct idle_sess {
	void			*sess;
	const struct agent_ops	*ops;
	struct rdest		*d;
	unsigned int		 used;		/* messages it carried */
	long long		 expires;	/* monotonic ms */
	TAILQ_ENTRY(idle_sess)	 dentry;	/* its destination's */
	TAILQ_ENTRY(idle_sess)	 rentry;	/* all, oldest first */
};

void
cache_init(struct runner *r)
{
	TAILQ_INIT(&r->idle);
}

void
cache_dest_init(struct rdest *d)
{
	TAILQ_INIT(&d->idle);
}

static void
unlink_idle(struct runner *r, struct idle_sess *is)
{
	TAILQ_REMOVE(&is->d->idle, is, dentry);
	TAILQ_REMOVE(&r->idle, is, rentry);
	r->nidle--;
}

void *
cache_take(struct runner *r, struct rdest *d, unsigned int *used)
{
	struct idle_sess *is = TAILQ_FIRST(&d->idle);
	void *sess;

	if (is == NULL)
		return NULL;
	unlink_idle(r, is);
	d->nidle--;
	sess = is->sess;
	*used = is->used;
	free(is);
	return sess;
}

int
cache_put(struct runner *r, struct rdest *d, const struct agent_ops *ops,
    void *sess, unsigned int used)
{
	struct idle_sess *is;

	if (r->stopping || ops->idle_ok == NULL || r->nidle >= r->nworkers ||
	    d->nidle >= d->limit || (is = calloc(1, sizeof(*is))) == NULL)
		return -1;
	is->sess = sess;
	is->ops = ops;
	is->d = d;
	is->used = used;
	is->expires = net_now_ms() + CACHE_KEEP_MS;
	/* The most recently used is taken first: the others expire. */
	TAILQ_INSERT_HEAD(&d->idle, is, dentry);
	TAILQ_INSERT_TAIL(&r->idle, is, rentry);
	d->nidle++;
	r->nidle++;
	return 0;
}

long long
cache_next_expiry(const struct runner *r)
{
	const struct idle_sess *is = TAILQ_FIRST(&r->idle);

	return is != NULL ? is->expires : -1;
}

int
cache_take_expired(struct runner *r, long long now, struct idle_list *out)
{
	struct idle_sess *is;

	TAILQ_INIT(out);
	while ((is = TAILQ_FIRST(&r->idle)) != NULL &&
	    (r->stopping || is->expires <= now)) {
		unlink_idle(r, is);
		/* Still counted in d->nidle, so that d stays, until closed. */
		TAILQ_INSERT_TAIL(out, is, rentry);
	}
	return !TAILQ_EMPTY(out);
}

void
cache_close(struct idle_list *list)
{
	struct idle_sess *is;

	for (is = TAILQ_FIRST(list); is != NULL; is = TAILQ_NEXT(is, rentry))
		is->ops->close(&is->sess);
}

void
cache_release(struct runner *r, struct idle_list *list)
{
	struct idle_sess *is;

	while ((is = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, is, rentry);
		is->d->nidle--;
		pool_dest_release(r, is->d);
		free(is);
	}
}
