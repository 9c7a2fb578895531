/*
 * The metrics listener.  Scrapes are rare and small, so one thread
 * serves one connection at a time, each with a bounded request and a
 * deadline: a client that stalls holds it for REQ_TIMEOUT_MS at most.
 * It is bound to loopback unless the configuration says otherwise.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/net.h"
#include "lib/str.h"
#include "queue/qstats.h"
#include "queue/ulimits.h"
#include "metricsd.h"

#define REQ_MAX		4096
#define REQ_TIMEOUT_MS	5000
#define BODY_MAX	(1024 * 1024)

struct metricsd {
	int		 lfd;
	int		 wake[2];
	pthread_t	 thread;
	char		 spool[PATH_MAX];
};

static void
respond(int fd, int status, const char *reason, const char *type,
    const char *body, size_t len, long deadline)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", status, reason, type, len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	if (net_send_all(fd, head, (size_t)n, deadline) == 0 && len > 0)
		(void)net_send_all(fd, body, len, deadline);
}

/*
 * Reads the request head (up to an empty line) within the deadline.
 * Its length, or -1 (too long, too slow, closed early).
 */
static ssize_t
read_head(int fd, char *buf, size_t size, long deadline)
{
	struct pollfd pfd;
	size_t have = 0;
	ssize_t n;

	while (have + 1 < size) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (deadline - net_now_ms() <= 0 ||
		    poll(&pfd, 1, (int)(deadline - net_now_ms())) <= 0)
			return -1;
		n = recv(fd, buf + have, size - 1 - have, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL ||
		    strstr(buf, "\n\n") != NULL)
			return (ssize_t)have;
	}
	return -1;
}

static void
serve(struct metricsd *md, int fd)
{
	char req[REQ_MAX], method[16], path[256], version[16];
	long deadline = net_now_ms() + REQ_TIMEOUT_MS;
	struct qstats qs;
	struct str body;
	char *eol;

	if (read_head(fd, req, sizeof(req), deadline) == -1) {
		respond(fd, 400, "Bad Request", "text/plain", "bad request\n",
		    12, deadline);
		return;
	}
	if ((eol = strpbrk(req, "\r\n")) != NULL)
		*eol = '\0';
	if (sscanf(req, "%15s %255s %15s", method, path, version) != 3 ||
	    (strcmp(version, "HTTP/1.0") != 0 &&
	    strcmp(version, "HTTP/1.1") != 0)) {
		respond(fd, 400, "Bad Request", "text/plain", "bad request\n",
		    12, deadline);
		return;
	}
	if (strcmp(method, "GET") != 0) {
		respond(fd, 405, "Method Not Allowed", "text/plain",
		    "GET only\n", 9, deadline);
		return;
	}
	if (strcmp(path, "/metrics") != 0) {
		respond(fd, 404, "Not Found", "text/plain", "not found\n", 10,
		    deadline);
		return;
	}
	str_init(&body, BODY_MAX);
	if (metrics_render(&body) == -1 ||
	    (qstats_count(md->spool, &qs) == 0 &&
	    qstats_render(&qs, &body) == -1) ||
	    ulimits_render(md->spool, &body) == -1) {
		str_free(&body);
		respond(fd, 500, "Internal Server Error", "text/plain",
		    "cannot render\n", 14, deadline);
		return;
	}
	respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    str_cstr(&body), body.len, deadline);
	str_free(&body);
}

static void *
metricsd_main(void *arg)
{
	struct metricsd *md = arg;
	struct pollfd pfd[2];
	int fd;

	pfd[0].fd = md->lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = md->wake[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_err("metrics: poll: %s", strerror(errno));
			usleep(100 * 1000);
			continue;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(md->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		serve(md, fd);
		(void)shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

struct metricsd *
metricsd_start(const char *addr, const char *spool, char *err, size_t errlen)
{
	struct metricsd *md;

	if ((md = calloc(1, sizeof(*md))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	str_lcpy(md->spool, spool, sizeof(md->spool));
	if ((md->lfd = net_listen(addr, 16, err, errlen)) == -1) {
		free(md);
		return NULL;
	}
	(void)fcntl(md->lfd, F_SETFL, fcntl(md->lfd, F_GETFL) | O_NONBLOCK);
	if (pipe2(md->wake, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(md->lfd);
		free(md);
		return NULL;
	}
	if (pthread_create(&md->thread, NULL, metricsd_main, md) != 0) {
		snprintf(err, errlen, "cannot start the metrics thread");
		close(md->lfd);
		close(md->wake[0]);
		close(md->wake[1]);
		free(md);
		return NULL;
	}
	return md;
}

void
metricsd_stop(struct metricsd **mdp)
{
	struct metricsd *md = *mdp;

	if (md == NULL)
		return;
	*mdp = NULL;
	if (write(md->wake[1], "x", 1) != 1)
		log_err("metrics: cannot wake the thread: %s", strerror(errno));
	pthread_join(md->thread, NULL);
	close(md->lfd);
	close(md->wake[0]);
	close(md->wake[1]);
	free(md);
}
