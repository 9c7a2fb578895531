/*
 * dump: keeps the directory of saved refused messages (-s,
 * saveblockedmsg) within an age and a total size.
 */
#ifndef DUMP_H
#define DUMP_H

#include <stddef.h>

/*
 * Removes files under dir/YYYYMMDD/ older than max_age seconds (0: no age
 * limit), then the oldest ones until at most max_total bytes stay (0: no
 * size limit), then day directories left empty.  Runs at most once every
 * DUMP_PRUNE_EVERY seconds in a process unless force is set, and one at a
 * time.  Returns the number of files removed, or -1 when dir cannot be
 * read (errno set).
 */
#define DUMP_PRUNE_EVERY	10
int	dump_prune(const char *dir, unsigned int max_age, size_t max_total,
	    int force);

#endif
