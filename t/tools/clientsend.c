/*
 * clientsend: drives the client library the way the queue does, for the
 * end-to-end tests: one connection, one message per file (read from the
 * file descriptor), RSET between them, DSN parameters, and a line of
 * results per recipient.
 *
 *   clientsend [-d] [-s] [-N notify] [-O orcpt] [-R ret] [-E envid]
 *       dest sender rcpt[,rcpt...] file...
 *
 * Prints "message N: STATUS CODE TEXT" and "  rcpt ADDR: STATUS CODE
 * STATUS-CODE TEXT" lines; exits with the worst status.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "client/client.h"

#define MAX_RCPTS	16

int
main(int argc, char **argv)
{
	struct client_rcpt rcpts[MAX_RCPTS];
	struct client_result res;
	struct client_opts o;
	struct client_msg m;
	struct client_conn *c;
	const char *notify = NULL, *orcpt = NULL, *ret = NULL, *envid = NULL;
	char *list, *r;
	size_t n = 0, i;
	int ch, fd, st, worst = EX_OK, f;

	(void)signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));
	o.helo = "clientsend.test";
	while ((ch = getopt(argc, argv, "dsN:O:R:E:")) != -1) {
		switch (ch) {
		case 'd':
			o.debug = 1;
			break;
		case 's':
			o.tls = CLIENT_TLS_OPPORTUNISTIC;
			break;
		case 'N':
			notify = optarg;
			break;
		case 'O':
			orcpt = optarg;
			break;
		case 'R':
			ret = optarg;
			break;
		case 'E':
			envid = optarg;
			break;
		default:
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 4)
		return EX_USAGE;
	list = argv[2];
	for (r = strtok(list, ","); r != NULL && n < MAX_RCPTS;
	    r = strtok(NULL, ",")) {
		memset(&rcpts[n], 0, sizeof(rcpts[n]));
		rcpts[n].addr = r;
		rcpts[n].notify = notify;
		rcpts[n].orcpt = orcpt;
		n++;
	}
	if ((c = client_connect(argv[0], &o, &res)) == NULL) {
		printf("connect: %d %d %s: %s\n", client_exit_status(&res),
		    client_result_code(&res), res.host, res.text);
		return client_exit_status(&res);
	}
	for (f = 3; f < argc; f++) {
		if ((fd = open(argv[f], O_RDONLY)) == -1) {
			perror(argv[f]);
			return EX_NOINPUT;
		}
		memset(&m, 0, sizeof(m));
		m.sender = argv[1];
		m.rcpts = rcpts;
		m.nrcpts = n;
		m.fd = fd;
		m.ret = ret;
		m.envid = envid;
		(void)client_send(c, &m, &res);
		close(fd);
		st = client_exit_status(&res);
		printf("message %d: %d %d %s\n", f - 2, st,
		    client_result_code(&res), res.text);
		for (i = 0; i < n; i++)
			printf("  rcpt %s: %d %d %s %s\n", rcpts[i].addr,
			    client_rcpt_exit_status(&rcpts[i]),
			    client_rcpt_code(&rcpts[i]),
			    client_rcpt_status(&rcpts[i])[0] ?
			    client_rcpt_status(&rcpts[i]) : "-",
			    rcpts[i].reply.text);
		if (client_severity(st) > client_severity(worst))
			worst = st;
	}
	client_quit(&c);
	return worst;
}
