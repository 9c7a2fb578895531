/*
 * smtpq's commands kept in files of their own.
 */
#ifndef SMTPQ_H
#define SMTPQ_H

/* Prints smtpq's usage and exits with EX_USAGE. */
void	usage(void) __attribute__((noreturn));

/*
 * smtpq passwd [-f file] user: reads user's new password from standard
 * input and writes it, hashed, into the secrets file (file, or the
 * auth.secrets of conffile).  A sysexits status.
 */
int	smtpq_passwd(int argc, char **argv, const char *conffile);

#endif
