/*
 * refcnt: the reference count of a shared, immutable object (a config
 * snapshot and its parts, a TLS server, a secrets table): taking a
 * reference is a relaxed increment; dropping one says whether it was the
 * last, and asserts that no one dropped a reference they did not hold.
 */
#ifndef REFCNT_H
#define REFCNT_H

#include <assert.h>

static inline void
refcnt_take(int *refs)
{
	__atomic_add_fetch(refs, 1, __ATOMIC_RELAXED);
}

/* 1 when the last reference went: the caller frees the object. */
static inline int
refcnt_drop(int *refs)
{
	int left = __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL);

	/* One drop too many frees what another still uses. */
	assert(left >= 0);
	return left == 0;
}

#endif
