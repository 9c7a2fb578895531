/*
 * fsutil: small, careful file-system helpers used by the spool and the
 * delivery agents.
 */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

/* Writes all n bytes (retrying short writes and EINTR).  0 or -1. */
int	fs_write_all(int fd, const void *, size_t n);
/* fsync()s the directory at path.  0 or -1. */
int	fs_sync_dir(const char *path);
/* Creates path and its missing parents with mode.  0 or -1. */
int	fs_mkdirs(const char *path, int mode);
/*
 * A path from a config file: an absolute one as it is, a relative one
 * taken from the directory conffile is in (made absolute, its leading
 * "./" and "../" resolved against that directory's real path).  0, or -1
 * with errno (ENAMETOOLONG, or what realpath(3) or getcwd(3) said).
 */
int	fs_conf_path(const char *conffile, const char *path, char *out,
	    size_t len);
/*
 * Reads a file from an offset with CRLF line ends turned into LF (a lone
 * CR stays): a message in the spool, for local files, programs and
 * people.  Reads with pread(), so the descriptor's offset is left alone.
 */
struct fs_lf {
	int	 fd;
	off_t	 off;		/* next byte to read */
	int	 cr;		/* a CR ended the last chunk */
	int	 eof;
	char	 in[65536];
};
void	fs_lf_init(struct fs_lf *, int fd, off_t off);
/* Up to len (>= 2) bytes of LF text: >0, 0 at the end, -1 on an error. */
ssize_t	fs_lf_read(struct fs_lf *, char *buf, size_t len);
/* Formats t as an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200"). */
void	fs_rfc5322_date(char *buf, size_t len, time_t t);

#endif
