/*
 * The pipe agent: runs the route's command (no shell) with the envelope in
 * its arguments and environment and the message (LF line ends) on its
 * standard input, as an unprivileged user, for a bounded time.
 *
 * Exit 0: delivered; 75 (EX_TEMPFAIL): try again later; any other status:
 * a permanent failure, reported with the first line of standard error.
 *
 * Envelope data reaches the program only without control characters, and
 * never as an argument that starts with '-' (it would be an option).
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/str.h"
#include "agent.h"
#include "lib/spawn.h"
#include "recipients.h"

#define PIPE_ENV_MAX	16
#define PIPE_ARG_MAX	8192	/* bytes in one expanded argument */

static void	*pipe_open(const struct route *, const char *, const char *,
		    const struct queue_conf *, struct agent_result *);
static int	 pipe_deliver(void *, const struct route *,
		    const struct agent_msg *, struct agent_rcpt *, size_t);
static void	 pipe_close(void **);

const struct agent_ops agent_pipe_ops = {
	"pipe", pipe_open, pipe_deliver, pipe_close, NULL
};

struct pipe_feed {
	struct fs_lf	 lf;
	char		 from[ADDR_PATH_MAX + 64];
	size_t		 fromlen, fromoff;
};

static void *
pipe_open(const struct route *r, const char *dest, const char *id,
    const struct queue_conf *qc, struct agent_result *res)
{
	return (void *)&agent_pipe_ops;
}

static void
pipe_close(void **sessp)
{
	*sessp = NULL;
}

static ssize_t
pipe_feed(void *arg, char *buf, size_t len)
{
	struct pipe_feed *f = arg;
	size_t n;

	if (f->fromoff < f->fromlen) {
		n = f->fromlen - f->fromoff;
		if (n > len)
			n = len;
		memcpy(buf, f->from + f->fromoff, n);
		f->fromoff += n;
		return (ssize_t)n;
	}
	return fs_lf_read(&f->lf, buf, len);
}

/* The local part and domain of a mailbox, for %u and %d. */
static void
pipe_split(const struct agent_msg *m, const char *mailbox, char *local,
    size_t llen, char *domain, size_t dlen)
{
	const char *at = strrchr(mailbox, '@');
	size_t n = at ? (size_t)(at - mailbox) : strlen(mailbox);

	if (n >= llen)
		n = llen - 1;
	memcpy(local, mailbox, n);
	local[n] = '\0';
	str_lcpy(domain, at ? at + 1 : m->qc->hostname, dlen);
}

/*
 * Expands one template word for recipient rcpt.  A new string or NULL.
 * %u is the user without the tag, as for Maildir paths (Postfix's
 * ${user}), %t the tag (${extension}) and %l the whole local part.
 */
static char *
pipe_word(const char *t, const struct agent_msg *m, const char *rcpt)
{
	char local[ADDR_PATH_MAX + 1], domain[ADDR_PATH_MAX + 1];
	char user[ADDR_PATH_MAX + 1];
	const char *tag = "";
	struct str_var vars[] = { { 's', NULL }, { 'r', NULL }, { 'u', NULL },
	    { 't', NULL }, { 'l', NULL }, { 'd', NULL }, { 'i', NULL } };
	struct str s;
	int rc;

	pipe_split(m, rcpt, local, sizeof(local), domain, sizeof(domain));
	/* The delimiter itself belongs to neither part. */
	if (qc_base_local(m->qc, local, user, sizeof(user)))
		tag = local + strlen(user) + 1;
	str_init(&s, PIPE_ARG_MAX);
	vars[0].value = m->env->sender;
	vars[1].value = rcpt;
	vars[2].value = user;
	vars[3].value = tag;
	vars[4].value = local;
	vars[5].value = domain;
	vars[6].value = m->id;
	rc = str_expand(&s, t, vars, sizeof(vars) / sizeof(vars[0]));
	if (rc == -1 || str_appends(&s, "") == -1) {
		str_free(&s);
		return NULL;
	}
	if (s.s == NULL)
		return strdup("");
	return s.s;
}

/* Control characters (CR, LF, ...) from the envelope become '?'. */
static char *
pipe_clean(char *v)
{
	size_t i;

	if (v == NULL)
		return NULL;
	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			v[i] = '?';
	return v;
}

static char *
pipe_env(const char *name, const char *value)
{
	struct str s;

	str_init(&s, PIPE_ARG_MAX);
	if (str_appendf(&s, "%s=%s", name, value) == -1) {
		str_free(&s);
		return NULL;
	}
	return pipe_clean(s.s);
}

/*
 * 1 if template word t starts with an envelope value (%s %r %u %t %l %d)
 * that
 * expands to something beginning with '-': the program would take it for
 * an option.
 */
static int
pipe_optionlike(const char *t, const char *word)
{
	return t[0] == '%' && strchr("srutld", t[1]) != NULL && t[1] != '\0' &&
	    word[0] == '-';
}

static void
free_vec(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * Runs the command once for rcpts[0..n-1]: 0 when it ran (*mr says how it
 * ended), -1 when it could not (*res says why).
 */
static int
pipe_exec(const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n, struct spawn_result *mr,
    struct agent_result *res)
{
	struct spawn_opts opts;
	struct pipe_feed *feed = NULL;
	char **argv = NULL, *envp[PIPE_ENV_MAX], orcpt[ADDR_PATH_MAX + 64];
	char err[512], date[64];
	const char *semi;
	size_t i, j, ac = 0, maxargs;
	int ne = 0, ok = 1, rc = -1;
	time_t now;

	memset(envp, 0, sizeof(envp));
	memset(res, 0, sizeof(*res));
	maxargs = r->argc + (r->batch ? n : 0) + 1;
	if ((argv = calloc(maxargs, sizeof(*argv))) == NULL ||
	    (feed = calloc(1, sizeof(*feed))) == NULL) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "out of memory");
		goto done;
	}
	for (i = 0; i < r->argc && ok; i++) {
		/* In batch mode a word that is just %r becomes every recipient. */
		if (r->batch && strcmp(r->argv[i], "%r") == 0) {
			for (j = 0; j < n && ok; j++)
				ok = (argv[ac++] = pipe_clean(strdup(
				    rcpts[j].mailbox))) != NULL;
			continue;
		}
		ok = (argv[ac++] = pipe_clean(pipe_word(r->argv[i], m,
		    rcpts[0].mailbox))) != NULL;
		if (ok && pipe_optionlike(r->argv[i], argv[ac - 1])) {
			agent_set(res, AGENT_PERM, 553, r->argv[i][1] == 's' ?
			    "5.1.7" : "5.1.3", "%s begins with '-' and would be "
			    "an option to %.100s", r->argv[i][1] == 's' ?
			    "the sender" : "the recipient", r->argv[0]);
			goto done;
		}
	}
	orcpt[0] = '\0';
	if (rcpts[0].orig != NULL && rcpts[0].orig->orcpt != NULL &&
	    (semi = strchr(rcpts[0].orig->orcpt, ';')) != NULL &&
	    env_xtext_decode(semi + 1, orcpt, sizeof(orcpt)) == -1)
		orcpt[0] = '\0';
	if (ok) {
		ok = (envp[ne++] = pipe_env("PATH",
		    "/usr/local/bin:/usr/bin:/bin")) != NULL &&
		    (envp[ne++] = pipe_env("HOME", "/")) != NULL &&
		    (envp[ne++] = pipe_env("LANG", "C")) != NULL &&
		    (envp[ne++] = pipe_env("SENDER", m->env->sender)) != NULL &&
		    (envp[ne++] = pipe_env("RECIPIENT",
		    rcpts[0].mailbox)) != NULL &&
		    (envp[ne++] = pipe_env("ORIGINAL_RECIPIENT", orcpt)) !=
		    NULL &&
		    (envp[ne++] = pipe_env("QUEUE_ID", m->id)) != NULL &&
		    (envp[ne++] = pipe_env("USER", r->user.name)) != NULL;
	}
	if (!ok) {
		agent_set(res, AGENT_PERM, 550, "5.3.0", "command arguments "
		    "too long");
		goto done;
	}
	fs_lf_init(&feed->lf, m->fd, m->env->body_off);
	if (r->from_line) {
		/* Plan 9 and mbox programs expect "From sender date". */
		now = time(NULL);
		if (ctime_r(&now, date) == NULL)
			str_lcpy(date, "Thu Jan  1 00:00:00 1970\n",
			    sizeof(date));
		feed->fromlen = (size_t)snprintf(feed->from, sizeof(feed->from),
		    "From %s %s", m->env->sender[0] ? m->env->sender :
		    "MAILER-DAEMON", date);
		if (feed->fromlen >= sizeof(feed->from))
			feed->fromlen = sizeof(feed->from) - 1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.cred = &r->user.cred;
	opts.timeout = r->timeout;
	opts.envp = envp;
	opts.cancel = m->cancel;
	if (spawn_run(argv, -1, pipe_feed, feed, &opts, mr, err,
	    sizeof(err)) == -1) {
		agent_set(res, AGENT_TEMP, 451, "4.3.0", "%s", err);
		goto done;
	}
	rc = 0;
done:
	free_vec(argv);
	for (i = 0; i < PIPE_ENV_MAX; i++)
		free(envp[i]);
	free(feed);
	return rc;
}

/* Runs the command once for rcpts[0..n-1] and records the outcome in all. */
static void
pipe_run(const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	struct agent_result res;
	struct spawn_result mr;
	const char *enh;
	size_t i;

	memset(&res, 0, sizeof(res));
	if (pipe_exec(r, m, rcpts, n, &mr, &res) == -1)
		goto done;
	if (mr.cancelled)
		agent_set(&res, AGENT_TEMP, 451, "4.3.2", "command %.100s "
		    "interrupted: the queue runner is stopping", r->argv[0]);
	else if (mr.timed_out)
		agent_set(&res, AGENT_TEMP, 451, "4.4.7", "command %.100s timed "
		    "out after %u s", r->argv[0], r->timeout);
	else if (mr.feed_error)
		agent_set(&res, AGENT_TEMP, 451, "4.3.0", "cannot read the "
		    "queued message");
	else if (mr.status == -1)
		agent_set(&res, AGENT_TEMP, 451, "4.3.0", "command %.100s "
		    "killed by signal %d", r->argv[0], mr.signal);
	else if (mr.status == 0)
		agent_set(&res, AGENT_DELIVERED, 250, "2.0.0", "delivered to "
		    "command %.100s", r->argv[0]);
	else if (mr.status == 75)
		agent_set(&res, AGENT_TEMP, 451, "4.3.0", "command %.100s: %s",
		    r->argv[0], mr.errline[0] ? mr.errline :
		    "temporary failure (exit 75)");
	else {
		/* sysexits.h codes say a little more about the cause. */
		switch (mr.status) {
		case 67:	/* EX_NOUSER */
			enh = "5.1.1";
			break;
		case 68:	/* EX_NOHOST */
			enh = "5.1.2";
			break;
		case 65:	/* EX_DATAERR */
			enh = "5.6.0";
			break;
		case 77:	/* EX_NOPERM */
			enh = "5.7.1";
			break;
		default:
			enh = "5.3.0";
			break;
		}
		agent_set(&res, AGENT_PERM, 550, enh, "command %.100s exited "
		    "%d: %s", r->argv[0], mr.status, mr.errline[0] ?
		    mr.errline : "(no message)");
	}
done:
	for (i = 0; i < n; i++)
		rcpts[i].res = res;
}

/* Batch mode: recipients that would be options fail alone. */
static void
pipe_batch(const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	struct agent_rcpt *ok;
	size_t i, k, nok = 0;
	int arg = 0;

	for (k = 0; k < r->argc; k++)
		if (strcmp(r->argv[k], "%r") == 0)
			arg = 1;
	if (!arg || (ok = calloc(n, sizeof(*ok))) == NULL) {
		pipe_run(r, m, rcpts, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (rcpts[i].mailbox[0] == '-')
			agent_set(&rcpts[i].res, AGENT_PERM, 553, "5.1.3", "the "
			    "recipient begins with '-' and would be an option "
			    "to %.100s", r->argv[0]);
		else
			ok[nok++] = rcpts[i];
	}
	if (nok > 0)
		pipe_run(r, m, ok, nok);
	for (i = 0, k = 0; i < n && k < nok; i++)
		if (rcpts[i].mailbox[0] != '-')
			rcpts[i].res = ok[k++].res;
	free(ok);
}

static int
pipe_deliver(void *sess, const struct route *r, const struct agent_msg *m,
    struct agent_rcpt *rcpts, size_t n)
{
	size_t i;

	if (r->batch) {
		pipe_batch(r, m, rcpts, n);
		return 0;
	}
	for (i = 0; i < n; i++)
		pipe_run(r, m, &rcpts[i], 1);
	return 0;
}

int
agent_pipe_reply(const struct spawn_result *res, char *buf, size_t len)
{
	if (res->cancelled) {
		snprintf(buf, len, "451 4.3.2 Shutting down, try again later");
		return 451;
	}
	if (res->timed_out) {
		snprintf(buf, len, "451 4.4.7 Mailer timed out, try again later");
		return 451;
	}
	if (res->status == -1) {
		snprintf(buf, len, "451 4.3.0 Mailer ended by signal %d, try "
		    "again later", res->signal);
		return 451;
	}
	if (res->status == 0) {
		snprintf(buf, len, "250 2.0.0 Ok: delivered");
		return 250;
	}
	if (res->status == 75) {
		if (res->errline[0] != '\0')
			snprintf(buf, len, "451 4.3.0 %s", res->errline);
		else
			snprintf(buf, len, "451 4.3.0 Temporary failure, try "
			    "again later");
		return 451;
	}
	if (res->errline[0] != '\0')
		snprintf(buf, len, "554 5.3.0 %s", res->errline);
	else
		snprintf(buf, len, "554 5.3.0 Delivery failed (mailer exit "
		    "status %d)", res->status);
	return 554;
}

/*
 * smtpd -m: the message goes through this agent at once, as a route
 * "pipe mailer -r -- %r" with batch and from_line would take it, and the
 * program's exit is the reply to the data.
 */
int
agent_pipe_handoff(const struct agent_handoff *h, char *reply, size_t len)
{
	struct route r;
	struct envelope env;
	struct agent_msg msg;
	struct agent_rcpt *rcpts = NULL;
	struct agent_result res;
	struct spawn_result mr;
	struct str prog;
	char *argv[4];
	const char *p;
	off_t off;
	size_t i;
	int code = 451;

	memset(&r, 0, sizeof(r));
	memset(&env, 0, sizeof(env));
	str_init(&prog, PIPE_ARG_MAX);
	/* The program's name is no template: a '%' in it stays. */
	for (p = h->mailer; *p != '\0'; p++)
		if ((*p == '%' && str_appendc(&prog, '%') == -1) ||
		    str_appendc(&prog, *p) == -1)
			break;
	if (*p != '\0' || str_appends(&prog, "") == -1 || prog.s == NULL ||
	    h->nrcpts > 100000 ||
	    (rcpts = calloc(h->nrcpts, sizeof(*rcpts))) == NULL ||
	    (off = lseek(h->fd, 0, SEEK_CUR)) == -1) {
		snprintf(reply, len, "451 4.3.0 Out of memory, try again later");
		goto out;
	}
	argv[0] = prog.s;
	argv[1] = (char *)"-r";
	/* A recipient is never an option, whatever the client sent. */
	argv[2] = (char *)"--";
	argv[3] = (char *)"%r";
	r.action = ROUTE_PIPE;
	r.argv = argv;
	r.argc = 4;
	if (h->user != NULL)
		r.user = *h->user;
	r.timeout = h->timeout;
	r.batch = 1;
	r.from_line = 1;
	env.sender = h->sender;
	env.body_off = off;
	msg.id = h->id;
	msg.env = &env;
	msg.fd = h->fd;
	msg.qc = h->qc;
	msg.cancel = NULL;
	for (i = 0; i < h->nrcpts; i++)
		rcpts[i].mailbox = h->rcpts[i];
	if (pipe_exec(&r, &msg, rcpts, h->nrcpts, &mr, &res) == -1) {
		log_err("mailer: %s", res.reply.text);
		snprintf(reply, len, "451 4.3.0 Local delivery is not "
		    "available, try again later");
		goto out;
	}
	code = agent_pipe_reply(&mr, reply, len);
	if (code != 250)
		log_warn("mailer %.200s: status=%d signal=%d timeout=%d: %s",
		    h->mailer, mr.status, mr.signal, mr.timed_out, mr.errline);
out:
	free(rcpts);
	str_free(&prog);
	return code;
}
