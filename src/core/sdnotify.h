/*
 * sdnotify: tells systemd (a Type=notify service) what the daemon is
 * doing -- the sd_notify(3) protocol, one datagram to $NOTIFY_SOCKET,
 * without linking libsystemd.
 */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

/*
 * Sends state ("READY=1", "STOPPING=1", ...; lines separated by '\n').
 * 1 sent, 0 no NOTIFY_SOCKET (not under systemd), -1 error (errno set).
 */
int	sdnotify(const char *state);
/* RELOADING=1 with the MONOTONIC_USEC that Type=notify-reload wants. */
int	sdnotify_reloading(void);

#endif
