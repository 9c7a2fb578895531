/*
 * args: sendmail's command line, as the programs that call
 * /usr/sbin/sendmail write it (cron, mailx, mutt, PHP's mail(), git
 * send-email): old-style options such as -oi, -oem and -FName, values
 * attached or apart, and the options of other MTAs that mean nothing
 * here accepted and ignored.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "queue/envelope.h"
#include "sendmail/sendmail.h"

static void	usage(void) __attribute__((noreturn));
static const char *value(int, char **, int *, const char *);

static void
usage(void)
{
	fprintf(stderr, "usage: sendmail [-tiv] [-a account] [-B type] "
	    "[-b mode] [-C conffile] [-F fullname] [-f sender] "
	    "[-N dsn] [-q] [-R ret] [-V envid] [--] [recipient ...]\n");
	exit(EX_USAGE);
}

/* The value of an option: the rest of the word, else the next one. */
static const char *
value(int argc, char **argv, int *i, const char *rest)
{
	if (*rest != '\0')
		return rest;
	if (*i + 1 >= argc) {
		fprintf(stderr, "sendmail: option %s needs a value\n",
		    argv[*i]);
		usage();
	}
	return argv[++*i];
}

void
sm_parse_args(int argc, char **argv, struct sm_opts *o)
{
	const char *prog, *a, *v;
	int i, n;

	memset(o, 0, sizeof(*o));
	prog = (prog = strrchr(argv[0], '/')) != NULL ? prog + 1 : argv[0];
	if (strcmp(prog, "mailq") == 0)
		o->action = SM_LIST;
	else if (strcmp(prog, "newaliases") == 0)
		o->action = SM_ALIASES;
	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
		case 'n':
		case 'm':
		case 'U':
			/* -t -i -v; -n -m -U mean nothing here. */
			if (a[2] != '\0')
				usage();
			if (a[1] == 't')
				o->tflag = 1;
			else if (a[1] == 'i')
				o->iflag = 1;
			else if (a[1] == 'v')
				o->verbose = 1;
			break;
		case 'f':
		case 'r':
			o->sender = value(argc, argv, &i, a + 2);
			break;
		case 'F':
			o->fullname = value(argc, argv, &i, a + 2);
			break;
		case 'C':
			o->conffile = value(argc, argv, &i, a + 2);
			break;
		case 'a':
			o->account = value(argc, argv, &i, a + 2);
			break;
		case 'N':
			v = value(argc, argv, &i, a + 2);
			if ((n = env_notify_parse(v)) <= 0) {
				fprintf(stderr, "sendmail: -N: want never, or "
				    "success, failure and delay\n");
				exit(EX_USAGE);
			}
			o->notify = n;
			break;
		case 'R':
			v = value(argc, argv, &i, a + 2);
			if (strcasecmp(v, "full") == 0)
				o->ret = ENV_RET_FULL;
			else if (strcasecmp(v, "hdrs") == 0)
				o->ret = ENV_RET_HDRS;
			else {
				fprintf(stderr, "sendmail: -R: want full or "
				    "hdrs\n");
				exit(EX_USAGE);
			}
			break;
		case 'V':
			o->envid = value(argc, argv, &i, a + 2);
			if (strlen(o->envid) > 100) {
				fprintf(stderr, "sendmail: -V: at most 100 "
				    "characters\n");
				exit(EX_USAGE);
			}
			break;
		case 'B':
			v = value(argc, argv, &i, a + 2);
			if (strcasecmp(v, "8BITMIME") != 0 &&
			    strcasecmp(v, "7BIT") != 0) {
				fprintf(stderr, "sendmail: -B: want 7BIT or "
				    "8BITMIME\n");
				exit(EX_USAGE);
			}
			break;	/* the body is looked at anyway */
		case 'h':
		case 'L':
			(void)value(argc, argv, &i, a + 2);
			break;	/* hop count, syslog label */
		case 'o':
			/* -oi as -i; -oem, -odi, -oXfoo and the like
			 * concern other MTAs.  -o alone takes a word. */
			if (strcmp(a, "-oi") == 0)
				o->iflag = 1;
			else if (a[2] == '\0')
				(void)value(argc, argv, &i, a + 2);
			break;
		case 'e':
			break;	/* -em, -ee ...: how to report errors */
		case 'b':
			/* -bm, -bs, -bp, -bi (or -b m ...). */
			v = value(argc, argv, &i, a + 2);
			if (strcmp(v, "m") == 0)
				o->action = SM_DELIVER;
			else if (strcmp(v, "s") == 0)
				o->action = SM_SMTP;
			else if (strcmp(v, "p") == 0)
				o->action = SM_LIST;
			else if (strcmp(v, "i") == 0)
				o->action = SM_ALIASES;
			else {
				fprintf(stderr, "sendmail: -b%s is not "
				    "supported\n", v);
				usage();
			}
			break;
		case 'q':
			/* -q, and -q30m of a daemon: one flush now. */
			o->action = SM_FLUSH;
			break;
		default:
			fprintf(stderr, "sendmail: unknown option %s\n", a);
			usage();
		}
	}
	o->rcpts = argv + i;
	o->nrcpts = argc - i;
	if (o->nrcpts > SM_RCPTS_MAX) {
		fprintf(stderr, "sendmail: too many recipients (at most %d)\n",
		    SM_RCPTS_MAX);
		exit(EX_USAGE);
	}
}
