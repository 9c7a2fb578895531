/*
 * daemon: smtpd's processes.  Started as root, smtpd is a small parent
 * (parent.c) that binds the listeners and supervises three children: the
 * SMTP front (front.c: acceptor and worker threads, as an unprivileged
 * user), the key process (keyproc.c: TLS private key and AUTH secrets)
 * and the queue runner.  Started as another user, it is one process:
 * the front with the key, the secrets and the runner inside.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include "conf/conffile.h"
#include "listeners.h"

struct config;

/* What the command line said, for every process to read the config. */
struct smtpd_args {
	const char		*conffile;
	int			 missing_ok;	/* no -C given */
	struct conf_overrides	 ov;
	const char		*mailer;	/* -m, or NULL */
	int			 debug;		/* -d */
};

/* The front's sockets: listeners and, split, the key process's. */
struct front_fds {
	int	 listen[LISTENERS_MAX];
	int	 lflags[LISTENERS_MAX];	/* LISTEN_* (server.h) */
	int	 nlisten;
	int	 key[8];	/* KEYPROC_CHANNELS; none: in-process */
	int	 nkey;
	int	 notify;	/* a byte when started and reloaded, or -1 */
};

/*
 * A configuration snapshot of cf with the TLS credentials and the AUTH
 * secrets it names (new references; cf is referenced, not taken over).
 * remote_key: the key stays in the key process (the front of a split
 * daemon), and the secrets too.  At start-up (strict, old NULL) a failure
 * is said on stderr and gives NULL; on SIGHUP it is logged and old's
 * credentials or table stay in the new snapshot.
 */
struct config	*load_config(struct conf_file *cf, const struct config *old,
		    int strict, int remote_key);
/* Writes one byte to fd (a pipe to the parent), unless fd is -1. */
void	notify_parent(int fd);
/*
 * Opens every listener of p into fds (listeners_open(): bound, or taken
 * over from systemd); front_main() makes them listen when it is ready.
 * 0, or -1 (logged).
 */
int	bind_listeners(const struct policy *p, struct front_fds *fds);
/*
 * Runs the daemon's SMTP side until SIGTERM: with fds->nkey, as the front
 * of a split daemon; without, as the whole daemon in one process (with
 * the queue runner unless -m or queue.runner = false).  Takes over the
 * reference to cf.  Returns the exit status.
 */
int	front_main(const struct smtpd_args *, struct conf_file *cf,
	    struct front_fds *fds);
/*
 * The parent of a split daemon (started as root); takes over the
 * reference to cf.  Returns the status.
 */
int	parent_main(const struct smtpd_args *, struct conf_file *cf);

#endif
