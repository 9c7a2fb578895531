#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/str.h"
#include "agent.h"

#define SYNC_SLOTS	64

/* Directories being flushed, for agent_sync_dir(). */
struct dirsync {
	char		 path[PATH_MAX];
	unsigned long	 requested, synced, failed_upto;
	int		 syncing, users, error;
};

static pthread_mutex_t	 sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 sync_cv = PTHREAD_COND_INITIALIZER;
static struct dirsync	 sync_slots[SYNC_SLOTS];

const struct agent_ops *
agent_for(enum route_action a)
{
	switch (a) {
	case ROUTE_MAILDIR:
		return &agent_maildir_ops;
	case ROUTE_PIPE:
		return &agent_pipe_ops;
	case ROUTE_RELAY:
		return &agent_relay_ops;
	}
	return NULL;
}

void
agent_dest(const struct route *r, const char *mailbox, char *buf, size_t len)
{
	const char *at;
	size_t i;

	buf[0] = '\0';
	if (r->action != ROUTE_RELAY)
		return;
	if (r->host != NULL) {
		str_lcpy(buf, r->host, len);
		return;
	}
	/* By MX: one destination per domain. */
	at = strrchr(mailbox, '@');
	str_lcpy(buf, at ? at + 1 : "", len);
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
}

void
agent_set(struct agent_result *res, enum agent_status st, int code,
    const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	res->status = st;
	res->code = code;
	str_lcpy(res->enhanced, enhanced, sizeof(res->enhanced));
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	for (i = 0; res->text[i] != '\0'; i++)
		if ((unsigned char)res->text[i] < 0x20)
			res->text[i] = ' ';
}

void
agent_lf_init(struct agent_lf *lf, int fd, off_t off)
{
	lf->fd = fd;
	lf->off = off;
	lf->cr = 0;
	lf->eof = 0;
}

ssize_t
agent_lf_read(struct agent_lf *lf, char *buf, size_t len)
{
	size_t i, o = 0, want;
	ssize_t n;

	if (len < 2)
		return -1;
	while (o == 0) {
		if (lf->eof) {
			if (lf->cr) {
				buf[o++] = '\r';
				lf->cr = 0;
			}
			return (ssize_t)o;
		}
		/* Leave room for a held-back CR. */
		want = len - 1 < sizeof(lf->in) ? len - 1 : sizeof(lf->in);
		n = pread(lf->fd, lf->in, want, lf->off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			lf->eof = 1;
			continue;
		}
		lf->off += n;
		for (i = 0; i < (size_t)n; i++) {
			char c = lf->in[i];

			if (lf->cr) {
				lf->cr = 0;
				if (c != '\n')
					buf[o++] = '\r';
			}
			if (c == '\r')
				lf->cr = 1;
			else
				buf[o++] = c;
		}
	}
	return (ssize_t)o;
}

int
agent_sync_dir(const char *path)
{
	struct dirsync *e = NULL, *free_slot = NULL;
	unsigned long mine, upto;
	int i, r, err;

	if (strlen(path) >= sizeof(sync_slots[0].path))
		return fs_sync_dir(path);
	pthread_mutex_lock(&sync_mu);
	for (i = 0; i < SYNC_SLOTS; i++) {
		if (sync_slots[i].users > 0 &&
		    strcmp(sync_slots[i].path, path) == 0) {
			e = &sync_slots[i];
			break;
		}
		if (sync_slots[i].users == 0 && free_slot == NULL)
			free_slot = &sync_slots[i];
	}
	if (e == NULL) {
		if (free_slot == NULL) {
			/* Every slot busy: flush on our own. */
			pthread_mutex_unlock(&sync_mu);
			return fs_sync_dir(path);
		}
		e = free_slot;
		memset(e, 0, sizeof(*e));
		str_lcpy(e->path, path, sizeof(e->path));
	}
	e->users++;
	mine = ++e->requested;
	while (e->synced < mine) {
		if (e->syncing) {
			pthread_cond_wait(&sync_cv, &sync_mu);
			continue;
		}
		e->syncing = 1;
		upto = e->requested;
		pthread_mutex_unlock(&sync_mu);
		r = fs_sync_dir(path);
		err = errno;
		pthread_mutex_lock(&sync_mu);
		e->syncing = 0;
		e->synced = upto;
		if (r == -1) {
			e->error = err;
			e->failed_upto = upto;
		}
		pthread_cond_broadcast(&sync_cv);
	}
	r = 0;
	if (e->error != 0 && e->failed_upto >= mine) {
		r = -1;
		err = e->error;
	}
	e->users--;
	pthread_mutex_unlock(&sync_mu);
	if (r == -1)
		errno = err;
	return r;
}
