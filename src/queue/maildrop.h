/*
 * maildrop: local submission into the spool, for sendmail(8).
 *
 * sendmail, setgid to the maildrop group, writes each message as one file
 * in spool/maildrop/ (mode 1730, owned by the spool's owner and that
 * group): a queue-file envelope and the message.  The file is created
 * with no permissions and made 0640 once it is whole.  The queue runner
 * picks complete files up (maildrop_pickup()), treats them as untrusted,
 * checks the envelope sender against the file owner's login, commits each
 * as an ordinary queue file recording that login ("user"), and removes
 * it.  Format and permissions: smtpd-spool(5), MAILDROP.
 *
 * The "sendmail" group of smtpd.conf (smtpd.conf(5), SENDMAIL) is read
 * here for both sides.
 */
#ifndef MAILDROP_H
#define MAILDROP_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "lib/str.h"
#include "spool.h"

#define MAILDROP_DIR		"maildrop"
#define MAILDROP_NAMES_MAX	64	/* trusted and admins entries */
#define MAILDROP_MAX_SIZE	(64ULL * 1024 * 1024)
#define MAILDROP_STALE		86400	/* an unfinished file is given up */

enum maildrop_mode { MAILDROP_QUEUE, MAILDROP_SMARTHOST };

struct maildrop_conf {
	char			 file[PATH_MAX];
	int			 have_file;
	char			 spool[PATH_MAX];
	char			 domain[256];	/* of a local user's address */
	enum maildrop_mode	 mode;
	int			 rewrite;	/* a foreign sender is replaced,
						   not refused */
	char			 trusted[MAILDROP_NAMES_MAX][64];
	size_t			 ntrusted;	/* may give any sender */
	char			 admins[MAILDROP_NAMES_MAX][64];
	size_t			 nadmins;	/* mailq shows them all */
	char			 group[64];	/* "" : not configured */
	unsigned long long	 max_size;
};

/*
 * Reads hostname, spool and the "sendmail" group of the smtpd.conf at
 * path.  A missing file gives the defaults (have_file 0).  0, or -1 with
 * "file:line: message" in err.
 */
int	maildrop_conf_load(const char *path, struct maildrop_conf *,
	    char *err, size_t errlen);
/* 1 if login is in the list of names. */
int	maildrop_listed(char (*names)[64], size_t n, const char *login);
/*
 * 1 if login (not trusted) may use sender: its own address, login@domain
 * or login alone (case-insensitive).
 */
int	maildrop_own_sender(const struct maildrop_conf *, const char *login,
	    const char *sender);
/*
 * Turns every complete file in spooldir/maildrop into a queue file
 * through sp, and removes it; damaged or refused ones are moved to
 * corrupt/ and logged.  conffile is the smtpd.conf in use.  The number
 * of messages queued.
 */
int	maildrop_pickup(struct spool *sp, const char *spooldir,
	    const char *conffile);

#endif
