/*
 * spool_files: how a message written as its own file becomes durable in
 * queue/ (spool.c's commit_file(), and every commit with spool_durability
 * = "files"): its data flushed by the committer, then one fsync of the
 * queue directory for every rename made before that fsync started (group
 * commit).  Not for other modules.
 */
#ifndef SPOOL_FILES_H
#define SPOOL_FILES_H

struct dirsync;

/* For the directory open at dirfd (not taken over).  NULL: no memory. */
struct dirsync *dirsync_new(int dirfd);
void	dirsync_free(struct dirsync **);
/*
 * Returns once an fsync of the directory that started after this call
 * has completed: a rename made before the call is then on disk.  0, or
 * -1 with errno from that fsync.
 */
int	dirsync_wait(struct dirsync *);

#endif
