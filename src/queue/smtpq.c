/*
 * smtpq: looks after the mail queue smtpd fills -- lists, shows, flushes,
 * holds, releases and removes messages, and runs the queue runner.
 *
 * Commands that change a message take the message's lock, so they are
 * safe while a runner (in smtpd or "smtpq run") is at work; they then
 * wake the runner through its FIFO.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "conf/conffile.h"
#include "lib/conf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "keygen.h"
#include "envelope.h"
#include "qstats.h"
#include "ulimits.h"
#include "qstore.h"
#include "makemap.h"
#include <libconfig.h>

#include "queueconf.h"
#include "runner.h"
#include "smtpq.h"
#include "spool.h"
#include "tlsrpt.h"

#ifndef SMTPD_CONF
#define SMTPD_CONF "/etc/smtpd.conf"
#endif

#define SMTPQ_OPTS	"C:dV"
#define TOP_DOMAINS	10

struct msginfo {
	char			 id[SPOOL_ID_LEN + 1];
	int			 fd;
	struct envelope		*env;
	struct qstore_state	*st;	/* NULL: never attempted */
	int			 held;
	char			 err[256];	/* why env is NULL */
};

static struct queue_conf	*qc;
static struct qstore		*qs;

void
usage(void)
{
	fprintf(stderr,
	    "usage: smtpq [-dV] [-C conffile] command [argument ...]\n"
	    "commands:\n"
	    "  list                  the queued messages and their recipients\n"
	    "  show ID               one message: envelope, state and text\n"
	    "  flush [ID | domain]   try now (everything, one message, or\n"
	    "                        messages with recipients in domain)\n"
	    "  hold ID ...           stop delivering a message\n"
	    "  release ID ...        resume delivering a held message\n"
	    "  remove ID ...         delete a message without a bounce\n"
	    "  stats                 counts, sizes, ages, busiest destinations\n"
	    "  stats --prometheus    queue sizes for a textfile collector\n"
	    "  run [-o]              be the queue runner (-o: one pass)\n"
	    "  check                 print the queue settings and routes\n"
	    "  tlsrpt [--now] [--day YYYY-MM-DD]\n"
	    "                        queue the TLS reports of finished days\n"
	    "  passwd [-f file] user set user's AUTH password (read from\n"
	    "                        standard input) in the secrets file\n"
	    "  makemap [-t cdb] file compile a \"key value\" file into "
	    "file.cdb\n"
	    "  dkim-keygen [-t rsa|ed25519] [-b bits] domain selector keyfile\n"
	    "                        make a DKIM key, print its DNS record\n");
	exit(EX_USAGE);
}

/*
 * The queue's settings as smtpd compiles them: the whole file is read and
 * checked, so that smtpq and smtpd agree on it (or both refuse it).
 */
static struct queue_conf *
load_queue(const char *conffile, int missing_ok, char *err, size_t errlen)
{
	struct conf_file *cf;
	struct queue_conf *q;

	if ((cf = conf_file_load(conffile, missing_ok, NULL, err, errlen)) ==
	    NULL)
		return NULL;
	q = queueconf_ref(cf->queue);
	conf_file_unref(&cf);
	return q;
}

/* Upper-cases a queue id typed by hand; 0 if it is not one. */
static int
norm_id(const char *in, char *out)
{
	size_t i;

	if (strlen(in) != SPOOL_ID_LEN)
		return 0;
	for (i = 0; i <= SPOOL_ID_LEN; i++)
		out[i] = (char)toupper((unsigned char)in[i]);
	return qstore_valid_id(out);
}

static void
info_free(struct msginfo *mi)
{
	if (mi->fd != -1)
		close(mi->fd);
	mi->fd = -1;
	envelope_free(&mi->env);
	qstore_state_free(&mi->st);
}

/* Reads a message's envelope and state.  0, or -1 if it is gone. */
static int
info_load(const char *id, struct msginfo *mi)
{
	int rc;

	memset(mi, 0, sizeof(*mi));
	str_lcpy(mi->id, id, sizeof(mi->id));
	if ((mi->fd = qstore_open_msg(qs, id)) == -1)
		return -1;
	if (envelope_read(mi->fd, &mi->env, mi->err, sizeof(mi->err)) != 0)
		return 0;
	rc = qstore_state_load(qs, id, &mi->st, mi->err, sizeof(mi->err));
	if (rc < 0) {
		/* The runner starts this message over; show the envelope. */
		mi->st = NULL;
	}
	mi->held = qstore_held(qs, id);
	return 0;
}

static const char *
msg_state(const struct msginfo *mi)
{
	size_t i;

	if (mi->env == NULL)
		return "damaged";
	if (mi->held)
		return "held";
	if (mi->st == NULL)
		return "queued";
	for (i = 0; i < mi->st->n; i++)
		if (mi->st->r[i].state == QS_PENDING &&
		    mi->st->r[i].attempts > 0)
			return "deferred";
	return "queued";
}

static void
print_rcpt_state(const struct qstore_rcpt *q, time_t now)
{
	char age[32];

	printf("    <%s> %s", q->mailbox, qstore_rstate_name(q->state));
	if (q->attempts)
		printf(" attempts=%u", q->attempts);
	if (q->state == QS_PENDING && q->attempts) {
		conf_format_age(age, sizeof(age), (long long)(q->next - now));
		printf(" next=%s", q->next <= now ? "now" : age);
	}
	if (q->reply.code || q->reply.text[0])
		printf(" reply=\"%d %s%s%s\"", q->reply.code, q->reply.status,
		    q->reply.status[0] ? " " : "", q->reply.text);
	printf("\n");
}

static int
cmd_list(void)
{
	struct msginfo mi;
	char (*ids)[32], age[32];
	size_t i, j, n, count = 0;
	unsigned long long bytes = 0;
	time_t now = time(NULL);

	if (qstore_list(qs, &ids, &n) == -1) {
		fprintf(stderr, "smtpq: %s/queue: %s\n", qstore_dir(qs),
		    strerror(errno));
		return EX_IOERR;
	}
	for (i = 0; i < n; i++) {
		if (info_load(ids[i], &mi) == -1)
			continue;	/* delivered since we listed it */
		count++;
		if (mi.env == NULL) {
			printf("%s %8s %5s %-8s (%s)\n", mi.id, "-", "-",
			    "damaged", mi.err);
			info_free(&mi);
			continue;
		}
		bytes += (unsigned long long)mi.env->size;
		conf_format_age(age, sizeof(age), (long long)(now - mi.env->arrival));
		printf("%s %8lld %5s %-8s <%s>\n", mi.id,
		    (long long)mi.env->size, age, msg_state(&mi),
		    mi.env->sender);
		if (mi.st != NULL)
			for (j = 0; j < mi.st->n; j++)
				print_rcpt_state(&mi.st->r[j], now);
		else
			for (j = 0; j < mi.env->nrcpts; j++)
				printf("    <%s> pending\n",
				    mi.env->rcpts[j].mailbox);
		info_free(&mi);
	}
	qstore_free_ids(&ids);
	if (count == 0)
		printf("queue is empty\n");
	else
		printf("-- %zu message%s, %llu bytes\n", count,
		    count == 1 ? "" : "s", bytes);
	return EX_OK;
}

static int
cmd_show(const char *arg)
{
	struct msginfo mi;
	char id[SPOOL_ID_LEN + 1], date[64], age[32], buf[65536];
	char notify[ENV_NOTIFY_STRMAX];
	const struct env_rcpt *o;
	time_t now = time(NULL);
	struct fs_lf *lf;
	size_t i, j;
	ssize_t n;

	if (!norm_id(arg, id)) {
		fprintf(stderr, "smtpq: %s: not a queue id\n", arg);
		return EX_USAGE;
	}
	if (info_load(id, &mi) == -1) {
		fprintf(stderr, "smtpq: %s: no such message\n", id);
		return EX_NOINPUT;
	}
	printf("id: %s\n", id);
	if (mi.env == NULL) {
		printf("state: damaged (%s)\n", mi.err);
		info_free(&mi);
		return EX_DATAERR;
	}
	fs_rfc5322_date(date, sizeof(date), mi.env->arrival);
	conf_format_age(age, sizeof(age), (long long)(now - mi.env->arrival));
	printf("state: %s\n", msg_state(&mi));
	printf("size: %lld\n", (long long)mi.env->size);
	printf("arrival: %s (%s ago)\n", date, age);
	printf("from: <%s>\n", mi.env->sender);
	if (mi.env->ret != ENV_RET_UNSET)
		printf("ret: %s\n", env_ret_name(mi.env->ret));
	if (mi.env->envid)
		printf("envid: %s\n", mi.env->envid);
	if (mi.env->auth)
		printf("auth: %s\n", mi.env->auth);
	if (mi.env->helo)
		printf("helo: %s\n", mi.env->helo);
	if (mi.env->peer)
		printf("peer: %s%s%s%s\n", mi.env->peer,
		    mi.env->peer_name ? " (" : "",
		    mi.env->peer_name ? mi.env->peer_name : "",
		    mi.env->peer_name ? ")" : "");
	if (mi.env->protocol)
		printf("protocol: %s\n", mi.env->protocol);
	if (mi.env->body != ENV_BODY_UNSET)
		printf("body: %s\n", env_body_name(mi.env->body));
	for (i = 0; i < mi.env->nrcpts; i++) {
		o = &mi.env->rcpts[i];
		printf("rcpt: <%s>", o->mailbox);
		if (o->notify != 0 && env_notify_format(o->notify, notify,
		    sizeof(notify)) == 0)
			printf(" notify=%s", notify);
		if (o->orcpt)
			printf(" orcpt=%s", o->orcpt);
		printf("\n");
		if (mi.st == NULL) {
			printf("    <%s> pending\n", o->mailbox);
			continue;
		}
		for (j = 0; j < mi.st->n; j++)
			if (mi.st->r[j].orig == i)
				print_rcpt_state(&mi.st->r[j], now);
	}
	if (mi.st != NULL && mi.st->warned)
		printf("delay warning: sent\n");
	printf("\n");
	fflush(stdout);
	/* The message as queued, CRLF shown as LF. */
	if ((lf = malloc(sizeof(*lf))) == NULL) {
		fprintf(stderr, "smtpq: out of memory\n");
		info_free(&mi);
		return EX_OSERR;
	}
	fs_lf_init(lf, mi.fd, mi.env->body_off);
	while ((n = fs_lf_read(lf, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	free(lf);
	info_free(&mi);
	return EX_OK;
}

/*
 * Makes every pending recipient of id due now.  0; 1 if it is gone;
 * -1 on error (printed).
 */
static int
flush_one(const char *id)
{
	struct qstore_state *st = NULL;
	char err[512];
	size_t i;
	int fd, rc;

	if ((fd = qstore_open_msg(qs, id)) == -1)
		return errno == ENOENT ? 1 : -1;
	if ((rc = qstore_lock(fd)) != 0) {
		close(fd);
		if (rc == 1)
			return 1;
		fprintf(stderr, "smtpq: %s: cannot lock: %s\n", id,
		    strerror(errno));
		return -1;
	}
	rc = qstore_state_load(qs, id, &st, err, sizeof(err));
	if (rc == 0) {
		for (i = 0; i < st->n; i++)
			if (st->r[i].state == QS_PENDING)
				st->r[i].next = 0;
		if (qstore_state_save(qs, id, st, err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpq: %s: %s\n", id, err);
			rc = -1;
		}
		qstore_state_free(&st);
	} else if (rc == 1)
		rc = 0;		/* never tried: due already */
	else {
		fprintf(stderr, "smtpq: %s: %s\n", id, err);
		rc = -1;
	}
	qstore_unlock(fd);
	close(fd);
	return rc;
}

/* As flush_one, but 2 (and nothing done) if the message is held. */
static int
flush_one_unheld(const char *id)
{
	return qstore_held(qs, id) ? 2 : flush_one(id);
}

static int
has_domain(const struct msginfo *mi, const char *domain)
{
	const char *at;
	size_t i;

	if (mi->st != NULL) {
		for (i = 0; i < mi->st->n; i++) {
			at = strrchr(mi->st->r[i].mailbox, '@');
			if (mi->st->r[i].state == QS_PENDING && at != NULL &&
			    strcasecmp(at + 1, domain) == 0)
				return 1;
		}
		return 0;
	}
	for (i = 0; i < mi->env->nrcpts; i++) {
		at = strrchr(mi->env->rcpts[i].mailbox, '@');
		if (at != NULL && strcasecmp(at + 1, domain) == 0)
			return 1;
	}
	return 0;
}

static void
report_wake(int rc)
{
	if (rc == 0)
		fprintf(stderr, "smtpq: no queue runner is running; the "
		    "messages go out when one starts (smtpq run)\n");
	else if (rc == -1)
		fprintf(stderr, "smtpq: cannot wake the queue runner: %s\n",
		    strerror(errno));
}

static int
cmd_flush(const char *arg)
{
	struct msginfo mi;
	char (*ids)[32], id[SPOOL_ID_LEN + 1], line[64];
	size_t i, n, done = 0, held = 0;
	int rc, wake = 1, status = EX_OK;

	if (arg != NULL && norm_id(arg, id)) {
		rc = flush_one_unheld(id);
		if (rc == 1) {
			fprintf(stderr, "smtpq: %s: no such message\n", id);
			return EX_NOINPUT;
		}
		if (rc == 2) {
			fprintf(stderr, "smtpq: %s: held, not flushed (release "
			    "it to deliver it)\n", id);
			return EX_DATAERR;
		}
		if (rc == -1)
			return EX_IOERR;
		snprintf(line, sizeof(line), "wake %s", id);
		report_wake(qstore_wake(qs, line));
		printf("%s: flushed\n", id);
		return EX_OK;
	}
	if (qstore_list(qs, &ids, &n) == -1) {
		fprintf(stderr, "smtpq: %s/queue: %s\n", qstore_dir(qs),
		    strerror(errno));
		return EX_IOERR;
	}
	for (i = 0; i < n; i++) {
		if (arg != NULL) {
			if (info_load(ids[i], &mi) == -1)
				continue;
			rc = mi.env != NULL && has_domain(&mi, arg);
			info_free(&mi);
			if (!rc)
				continue;
		}
		rc = flush_one_unheld(ids[i]);
		if (rc == -1)
			status = EX_IOERR;
		if (rc == 2)
			held++;
		if (rc != 0)
			continue;
		done++;
		if (arg != NULL && wake == 1) {
			snprintf(line, sizeof(line), "wake %s", ids[i]);
			wake = qstore_wake(qs, line);
		}
	}
	qstore_free_ids(&ids);
	if (arg == NULL)
		wake = qstore_wake(qs, "wake *");
	if (done > 0 || arg == NULL)
		report_wake(wake);
	printf("flushed %zu message%s, skipped %zu held\n", done,
	    done == 1 ? "" : "s", held);
	return status;
}

static int
cmd_remove(int argc, char **argv)
{
	char id[SPOOL_ID_LEN + 1], path[PATH_MAX];
	int i, fd, rc = 0, status = EX_OK;

	for (i = 0; i < argc; i++) {
		if (!norm_id(argv[i], id)) {
			fprintf(stderr, "smtpq: %s: not a queue id\n", argv[i]);
			status = EX_USAGE;
			continue;
		}
		if ((fd = qstore_open_msg(qs, id)) == -1 ||
		    (rc = qstore_lock(fd)) == 1) {
			if (fd != -1)
				close(fd);
			fprintf(stderr, "smtpq: %s: no such message\n", id);
			status = EX_NOINPUT;
			continue;
		}
		if (rc == -1 || qstore_remove(qs, id) == -1) {
			fprintf(stderr, "smtpq: %s: %s\n", id, strerror(errno));
			if (rc == 0)
				qstore_unlock(fd);
			close(fd);
			status = EX_IOERR;
			continue;
		}
		/* Make the removal stick. */
		snprintf(path, sizeof(path), "%s/queue", qstore_dir(qs));
		(void)fs_sync_dir(path);
		qstore_unlock(fd);
		close(fd);
		log_info("%s queue removed by smtpq (uid %ld)", id,
		    (long)getuid());
		printf("%s: removed\n", id);
	}
	return status;
}

static int
cmd_hold(int argc, char **argv, int on)
{
	char id[SPOOL_ID_LEN + 1], line[64];
	int i, fd, rc, status = EX_OK;

	for (i = 0; i < argc; i++) {
		if (!norm_id(argv[i], id)) {
			fprintf(stderr, "smtpq: %s: not a queue id\n", argv[i]);
			status = EX_USAGE;
			continue;
		}
		if ((fd = qstore_open_msg(qs, id)) == -1) {
			fprintf(stderr, "smtpq: %s: no such message\n", id);
			status = EX_NOINPUT;
			continue;
		}
		close(fd);
		if ((rc = qstore_set_hold(qs, id, on)) == -1) {
			fprintf(stderr, "smtpq: %s: %s\n", id, strerror(errno));
			status = EX_IOERR;
			continue;
		}
		if (rc == 1 && on) {
			printf("%s: already held\n", id);
			continue;
		}
		if (rc == 1) {
			fprintf(stderr, "smtpq: %s: not held\n", id);
			status = EX_DATAERR;
			continue;
		}
		log_info("%s queue %s by smtpq", id, on ? "held" : "released");
		printf("%s: %s\n", id, on ? "held" : "released");
		if (!on) {
			if (flush_one(id) == -1)
				status = EX_IOERR;
			snprintf(line, sizeof(line), "wake %s", id);
			(void)qstore_wake(qs, line);
		}
	}
	return status;
}

struct domcount {
	char		 domain[256];
	unsigned long	 n;
};

static void
count_domain(struct domcount *top, size_t *ntop, size_t max,
    const char *mailbox)
{
	const char *at = strrchr(mailbox, '@');
	const char *dom = at ? at + 1 : "(local)";
	size_t i;

	for (i = 0; i < *ntop; i++)
		if (strcasecmp(top[i].domain, dom) == 0) {
			top[i].n++;
			return;
		}
	if (*ntop < max) {
		str_lcpy(top[*ntop].domain, dom, sizeof(top[0].domain));
		top[*ntop].n = 1;
		(*ntop)++;
	}
}

static int
domcmp(const void *a, const void *b)
{
	const struct domcount *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 :
	    strcmp(x->domain, y->domain);
}

/* smtpd's counts for limits.user_messages and user_recipients. */
static int
print_user_limits(const char *spool)
{
	struct str o;
	int rc = EX_OK;

	str_init(&o, 1024 * 1024);
	if (ulimits_text(spool, &o) == -1 ||
	    fwrite(str_cstr(&o), 1, o.len, stdout) != o.len) {
		fprintf(stderr, "smtpq: cannot write the user limits\n");
		rc = EX_IOERR;
	}
	str_free(&o);
	return rc;
}

static int
cmd_stats(void)
{
	struct msginfo mi;
	struct domcount *doms;
	char (*ids)[32], age[32];
	size_t i, j, n, ndoms = 0;
	unsigned long msgs = 0, held = 0, damaged = 0, deferred = 0;
	unsigned long pending = 0, delivered = 0, failed = 0;
	unsigned long long bytes = 0;
	time_t now = time(NULL), oldest = 0;
	long pid;

	if ((doms = calloc(10000, sizeof(*doms))) == NULL ||
	    qstore_list(qs, &ids, &n) == -1) {
		free(doms);
		fprintf(stderr, "smtpq: %s/queue: %s\n", qstore_dir(qs),
		    strerror(errno));
		return EX_IOERR;
	}
	for (i = 0; i < n; i++) {
		if (info_load(ids[i], &mi) == -1)
			continue;
		msgs++;
		if (mi.env == NULL) {
			damaged++;
			info_free(&mi);
			continue;
		}
		if (mi.held)
			held++;
		if (strcmp(msg_state(&mi), "deferred") == 0)
			deferred++;
		bytes += (unsigned long long)mi.env->size;
		if (oldest == 0 || mi.env->arrival < oldest)
			oldest = mi.env->arrival;
		if (mi.st == NULL) {
			pending += mi.env->nrcpts;
			for (j = 0; j < mi.env->nrcpts; j++)
				count_domain(doms, &ndoms, 10000,
				    mi.env->rcpts[j].mailbox);
		} else
			for (j = 0; j < mi.st->n; j++) {
				switch (mi.st->r[j].state) {
				case QS_PENDING:
					pending++;
					count_domain(doms, &ndoms, 10000,
					    mi.st->r[j].mailbox);
					break;
				case QS_FAILED:
					failed++;
					break;
				default:
					delivered++;
					break;
				}
			}
		info_free(&mi);
	}
	qstore_free_ids(&ids);
	printf("messages: %lu (deferred %lu, held %lu, damaged %lu)\n", msgs,
	    deferred, held, damaged);
	printf("recipients: %lu pending, %lu delivered, %lu failed\n",
	    pending, delivered, failed);
	printf("size: %llu bytes\n", bytes);
	if (oldest) {
		conf_format_age(age, sizeof(age), (long long)(now - oldest));
		printf("oldest: %s\n", age);
	}
	pid = qstore_runner_pid(qs);
	if (pid > 1)
		printf("runner: running (pid %ld)\n", pid);
	else if (pid == 1)
		printf("runner: running\n");
	else
		printf("runner: not running\n");
	qsort(doms, ndoms, sizeof(*doms), domcmp);
	if (ndoms > 0)
		printf("pending recipients by domain:\n");
	for (i = 0; i < ndoms && i < TOP_DOMAINS; i++)
		printf("  %-40s %lu\n", doms[i].domain, doms[i].n);
	free(doms);
	return print_user_limits(qstore_dir(qs));
}

static int
cmd_run(int argc, char **argv, const char *conffile, int conf_given)
{
	struct queue_conf *nqc;
	struct runner *r;
	char err[1024];
	sigset_t sigs;
	int ch, once = 0, sig;

	optind = 1;
	while ((ch = getopt(argc, argv, "o")) != -1) {
		switch (ch) {
		case 'o':
			once = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (once) {
		if (runner_run_once(qc->spool, qc, err, sizeof(err)) == -1) {
			fprintf(stderr, "smtpq: %s\n", err);
			return EX_TEMPFAIL;
		}
		return EX_OK;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if ((r = runner_start(qc->spool, qc, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smtpq: %s\n", err);
		log_err("%s", err);
		return EX_TEMPFAIL;
	}
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		nqc = load_queue(conffile, !conf_given, err, sizeof(err));
		if (nqc == NULL) {
			log_err("reload failed, keeping the running config: %s",
			    err);
			continue;
		}
		if (strcmp(nqc->spool, qc->spool) != 0)
			log_warn("reload: a new spool takes a restart");
		runner_reconfigure(r, nqc);
		queueconf_unref(&qc);
		qc = nqc;
		log_info("reloaded %s", conffile);
	}
	log_info("stopping on signal %d", sig);
	runner_stop(&r);
	return EX_OK;
}

/*
 * Only the runner makes a missing spool: the other commands would
 * otherwise report a mistyped spool as an empty queue.
 */
static enum qstore_mode
store_mode(const char *cmd)
{
	if (strcmp(cmd, "run") == 0)
		return QSTORE_CREATE;
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "show") == 0 ||
	    strcmp(cmd, "stats") == 0)
		return QSTORE_READ;
	if (strcmp(cmd, "flush") == 0 || strcmp(cmd, "hold") == 0 ||
	    strcmp(cmd, "release") == 0 || strcmp(cmd, "remove") == 0 ||
	    strcmp(cmd, "tlsrpt") == 0)
		return QSTORE_WRITE;
	usage();
}

int
main(int argc, char *argv[])
{
	const char *conffile = SMTPD_CONF, *cmd;
	enum qstore_mode mode;
	char err[1024];
	int ch, debug = 0, conf_given = 0, rc;

	while ((ch = getopt(argc, argv, "+" SMTPQ_OPTS)) != -1) {
		switch (ch) {
		case 'C':
			conffile = optarg;
			conf_given = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'V':
			printf("smtpq %s; delivery agents: maildir pipe relay "
			    "lmtp (relay: by MX and smarthost, STARTTLS, AUTH, "
			    "DSN)\n", PACKAGE_VERSION);
			return EX_OK;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	log_init("smtpq", debug, debug);
	signal(SIGPIPE, SIG_IGN);
	if (gnutls_global_init() < 0) {
		fprintf(stderr, "smtpq: cannot initialise GnuTLS\n");
		return EX_SOFTWARE;
	}
	if (strcmp(cmd, "makemap") == 0) {
		rc = makemap_main(argc, argv);
		gnutls_global_deinit();
		return rc;
	}
	if (strcmp(cmd, "dkim-keygen") == 0) {
		rc = keygen_main(argc, argv);
		gnutls_global_deinit();
		return rc;
	}
	if (strcmp(cmd, "passwd") == 0) {
		rc = smtpq_passwd(argc, argv, conffile);
		gnutls_global_deinit();
		return rc;
	}
	if ((qc = load_queue(conffile, !conf_given, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "smtpq: %s\n", err);
		return EX_CONFIG;
	}
	if (strcmp(cmd, "check") == 0) {
		if (argc != 1)
			usage();
		if (qc->have_file)
			printf("config file: %s\n", qc->file);
		else
			printf("config file: none (%s does not exist); built-in "
			    "defaults\n", qc->file);
		queueconf_print(qc, stdout);
		queueconf_unref(&qc);
		return EX_OK;
	}
	mode = store_mode(cmd);
	if ((qs = qstore_open(qc->spool, mode, err, sizeof(err))) == NULL) {
		rc = mode != QSTORE_CREATE && (errno == ENOENT ||
		    errno == ENOTDIR) ? EX_NOINPUT : EX_CANTCREAT;
		fprintf(stderr, "smtpq: %s\n", err);
		queueconf_unref(&qc);
		gnutls_global_deinit();
		return rc;
	}
	if (strcmp(cmd, "list") == 0 && argc == 1)
		rc = cmd_list();
	else if (strcmp(cmd, "show") == 0 && argc == 2)
		rc = cmd_show(argv[1]);
	else if (strcmp(cmd, "flush") == 0 && argc <= 2)
		rc = cmd_flush(argc == 2 ? argv[1] : NULL);
	else if (strcmp(cmd, "remove") == 0 && argc >= 2)
		rc = cmd_remove(argc - 1, argv + 1);
	else if (strcmp(cmd, "hold") == 0 && argc >= 2)
		rc = cmd_hold(argc - 1, argv + 1, 1);
	else if (strcmp(cmd, "release") == 0 && argc >= 2)
		rc = cmd_hold(argc - 1, argv + 1, 0);
	else if (strcmp(cmd, "stats") == 0 && argc == 1)
		rc = cmd_stats();
	else if (strcmp(cmd, "stats") == 0 && argc == 2 &&
	    strcmp(argv[1], "--prometheus") == 0)
		rc = qstats_print_prometheus(qstore_dir(qs));
	else if (strcmp(cmd, "run") == 0)
		rc = cmd_run(argc, argv, conffile, conf_given);
	else if (strcmp(cmd, "tlsrpt") == 0) {
		if ((rc = tlsrpt_main(argc, argv, qc)) == EX_OK)
			(void)qstore_wake(qs, "scan");
	}
	else
		usage();
	qstore_close(&qs);
	queueconf_unref(&qc);
	gnutls_global_deinit();
	return rc;
}
