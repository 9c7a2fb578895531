/*
 * What the journal's parts share (journal.c: commits and writing out;
 * journal_replay.c: the replay at start-up): the on-disk format
 * (doc/smtpd-spool.5) and the journal itself.  Not for other modules.
 */
#ifndef JOURNAL_INT_H
#define JOURNAL_INT_H

#include <sys/types.h>
#include <sys/uio.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "journal.h"

#define JOURNAL_MAGIC		"SJR1"
#define JOURNAL_HDR		12	/* magic, length, crc32 */
#define JOURNAL_RECORD_MAX	(JOURNAL_INLINE + 1024 * 1024)
#define SEGMENT_MAGIC		"SJH2"	/* with a salt */
#define SEGMENT_MAGIC_V1	"SJH1"	/* an older smtpd's: no salt */
#define SEGMENT_HDR		64	/* magic, salt, two mark slots, padding */
#define SEGMENT_SALT		4	/* 32 bits, in every record's check */
#define MARK_SLOT0		16
#define MARK_SLOT_LEN		16	/* counter, offset (64 bits), crc32 */
#define JOURNAL_SEGMENT_MAX	(32 * 1024 * 1024)
#define JOURNAL_SPARES		2	/* spent segments kept for reuse */
/* A spare big enough for a whole segment: the last batch goes past max. */
#define JOURNAL_SPARE_SIZE(j)	((j)->segmax + 1024 * 1024)
#define SPOOL_VERSION_ID	"smtpd-spool 1\nid "

#ifdef __linux__
#define JWAIT_FUTEX	1	/* journal_wait.c: sessions wait on futexes */
#endif

/*
 * A session's wait for its record.  It lives on the session's stack: a
 * durable record belongs to the writer thread, which may free it before
 * the session wakes up to look.  A flush wakes only the sessions whose
 * records it carried, each on its own futex (elsewhere its own condition
 * variable), not every session waiting on the journal; with the futex the
 * leader of the flush wakes them after letting go of the lock, so that
 * they do not wake only to wait for it.  JWAIT_LEAD hands a waiting
 * session the next flush.
 */
#define JWAIT_LEAD	2
struct jwait {
	atomic_int	 state;		/* 0 waiting, 1 durable, -1 failed,
					   JWAIT_LEAD: flush the queue */
	int		 err;
#ifndef JWAIT_FUTEX
	pthread_cond_t	 cv;
#endif
};

struct segment {
	struct segment	*next;
	int		 fd;		/* read and mark by the writer */
	unsigned long long seq;
	uint32_t	 salt;
	unsigned int	 outstanding;	/* records not yet in queue/ */
	int		 closed;	/* no more records will be added */
	uint32_t	 markctr;	/* the writer's */
};

struct journal {
	char		 dir[PATH_MAX];
	char		 tmpdir[PATH_MAX];
	char		 queuedir[PATH_MAX];
	int		 queuefd;
	int		 lockfd;
	journal_published_fn published;
	void		*arg;

	pthread_t	 writer;
	pthread_mutex_t	 mu;
	pthread_cond_t	 quiet;		/* close: the last flush ended */
	pthread_condattr_t waitattr;	/* sessions' waits: monotonic clock */
	pthread_cond_t	 mat;		/* writer: records to write out */
	pthread_cond_t	 space;		/* sessions: backlog went down */
	struct jrec	*pend_head, *pend_tail;
	struct jrec	*mat_head, *mat_tail;
	size_t		 backlog;	/* bytes not yet in queue/ */
	int		 stop;		/* no more commits taken */
	int		 wstop;		/* and none under way: writer, finish */
	int		 cbusy;		/* a session is leading a flush */
	int		 widle;		/* the writer waits for records */
	int		 werr;		/* the writer's trouble, 0 when fine */
	int		 segfd;		/* the flush leader's current segment */
	off_t		 segoff;
	uint32_t	 segsalt;
	off_t		 segmax;	/* a new segment past this */
	off_t		 journaled;	/* bytes, since the start */
	struct segment	*segs;		/* oldest first; last is current */
	unsigned long long nextseq;
	int		 reuse;		/* spent segments become spares */
	struct spare {
		off_t	 size;
		uint32_t salt;		/* of its new header; 0: none yet */
		int	 present;	/* spare.N is there */
		int	 busy;		/* being taken, filled or made */
	}		 spares[JOURNAL_SPARES];
	long long	 spares_after;	/* ms: none kept or made before */
};

/*
 * The calls through which records become durable and queue files appear:
 * the system's, unless a unit test puts faults in (before journal_open,
 * never while a journal is open).
 */
struct journal_io {
	ssize_t	(*pwritev)(int, const struct iovec *, int, off_t);
	int	(*fdatasync)(int);
	int	(*rename)(const char *, const char *);
};
extern const struct journal_io *journal_io;

/* The on-disk numbers: 32 bits, little-endian. */
static inline void
journal_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t
journal_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* CRC-32 (IEEE 802.3), to spot a torn record or mark after a crash. */
uint32_t journal_crc32(uint32_t crc, const unsigned char *p, size_t n);
/* The path of segment seq. 0, or -1 when it does not fit. */
int	journal_segment_path(const struct journal *, unsigned long long seq,
	    char *buf, size_t len);
/* Writes a queue file into journal/tmp.  0 or -1 (errno). */
int	journal_write_file(struct journal *, const char *id,
	    const char *data, size_t len);
/* Moves a written queue file from journal/tmp into queue/.  0 or -1. */
int	journal_publish_file(struct journal *, const char *id);
/* Flushes every file written on the spool's filesystem.  0 or -1. */
int	journal_sync_all(struct journal *);
/*
 * Tells a session how its commit ended (journal_wait.c): state 1 durable,
 * -1 failed with err.  With JWAIT_FUTEX unlocked, else under j->mu.
 */
void	jwait_post(struct jwait *, int state, int err);
void	jwait_post_all(struct jwait **, int n, int state, int err);
/*
 * Wakes w's session after its state was set under j->mu (JWAIT_LEAD).
 * With JWAIT_FUTEX unlocked, else under j->mu.
 */
void	jwait_wake(struct jwait *);
/*
 * Waits for w's post or the deadline (CLOCK_MONOTONIC; NULL for none):
 * the state, 0 on timeout.  With JWAIT_FUTEX unlocked, else under j->mu.
 */
int	jwait_wait(struct journal *, struct jwait *,
	    const struct timespec *deadline);
/*
 * Spare segments (journal_spare.c).  journal_spares_load() decides at
 * start-up whether spent segments are kept and finds those there are.
 * journal_segment_header() fills in a new segment's header.
 * journal_spare_take() makes segment path out of a spare, whose header
 * (new salt, no mark) is on disk before the rename: the spare's fd (read
 * and write) and its salt in *saltp, or -1 when there is none or that
 * failed.  journal_spare_put() keeps a spent segment (fd open on it) as
 * a spare, its header made new and flushed first, or deletes it.
 * journal_spare_prepare() is the writer's: once half a segment's worth
 * is journaled, it zero-fills a spare to a whole segment's size if none
 * is that big.  journal_spares_drop() deletes the spares not in use
 * (the disk is full).  journal_salt() makes a segment's salt (never 0).
 */
void	journal_spares_load(struct journal *, int keep);
void	journal_segment_header(unsigned char *hdr, uint32_t salt);
int	journal_spare_take(struct journal *, const char *path,
	    uint32_t *saltp);
void	journal_spare_put(struct journal *, const char *path, int fd);
void	journal_spare_prepare(struct journal *);
void	journal_spares_drop(struct journal *);
uint32_t journal_salt(void);
/*
 * Puts whatever the last run journaled into queue/, then empties the
 * journal; sets nextseq.  0, or -1 with a message in err.
 */
int	journal_replay(struct journal *, char *err, size_t errlen);
/*
 * Makes the journal's directories under the spool dir, opens queue/ and
 * takes the journal's lock (an error if another smtpd holds it), then
 * replays; j's paths and descriptors are set.  0, or -1 with err.
 */
int	journal_take(struct journal *, const char *dir, char *err,
	    size_t errlen);

#endif
