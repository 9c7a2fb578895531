/*
 * smarthost: sendmail on a host without smtpd -- the message goes through
 * an account of smtp.conf (msmtp's way), chosen by -a, the envelope
 * sender or the From: address, with the client library; when the
 * smarthost cannot be reached it waits in the offline queue.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "client/creds.h"
#include "client/cconf.h"
#include "client/client.h"
#include "sendmail/sendmail.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif

struct job {
	const char		*sender;
	struct client_rcpt	*rcpts;
	size_t			 nrcpts;
	const char		*envid;		/* decoded */
	const char		*ret;
	const char		*data;
	size_t			 datalen;
	int			 eightbit, smtputf8;
};

struct flush_ctx {
	const char	*login;
	int		 quiet;
	int		 worst;
	size_t		 sent;
};

static int	deliver(const struct cconf *, const struct cconf_account *,
		    const char *, struct job *, int, struct client_result *);
static void	report(const struct client_result *, const struct job *,
		    const char *);
static int	flush_one(struct offline_msg *, void *);
static void	offline_path(char *, size_t);

int
smarthost_conf_path(char *buf, size_t len)
{
	if (cconf_user_path(buf, len) == 0 && access(buf, F_OK) == 0)
		return 0;
	return snprintf(buf, len, "%s/smtp.conf", SYSCONFDIR) < (int)len ?
	    0 : -1;
}

/* Loads the account; exits 78 when there is none to use. */
static void
load_account(const char *name, const char *sender, const char *from_hdr,
    struct cconf *cf, struct cconf_account *acct)
{
	char path[PATH_MAX], err[512];
	int r;

	if (smarthost_conf_path(path, sizeof(path)) == -1)
		sm_die(EX_CONFIG, "cannot name smtp.conf");
	cconf_init(cf);
	r = cconf_load_account(cf, path, name, sender, from_hdr, acct, err,
	    sizeof(err));
	if (r == 1)
		sm_die(EX_CONFIG, "no local queue and no smarthost: %s does "
		    "not exist (see sendmail(8))", path);
	if (r == -1)
		sm_die(EX_CONFIG, "%s", err);
}

/* One transaction through the account.  Its exit status. */
static int
deliver(const struct cconf *cf, const struct cconf_account *acct,
    const char *login, struct job *j, int verbose, struct client_result *res)
{
	struct client_opts o;
	struct client_conn *conn;
	struct client_msg msg;
	struct creds cr;
	struct creds_query cq;
	char helo[256], keypath[PATH_MAX], netrcpath[PATH_MAX], err[512];
	char xenvid[512];
	const char *user = acct->user[0] ? acct->user : login;

	memset(res, 0, sizeof(*res));
	if (gethostname(helo, sizeof(helo)) == -1)
		str_lcpy(helo, "localhost", sizeof(helo));
	helo[sizeof(helo) - 1] = '\0';
	memset(&o, 0, sizeof(o));
	o.helo = helo;
	o.tls = acct->tls;
	o.tls_verify = cf->tls_verify;
	o.tls_cafile = cf->tls_cafile;
	o.tls_pin = cf->tls_pin;
	o.tls_policy = cf->tls_policy;
	o.sts_cache = cf->sts_cache;
	o.auth_cleartext_ok = cf->auth_cleartext;
	o.auth_mech = cf->auth_mech;
	o.connect_timeout = cf->connect_timeout;
	o.command_timeout = cf->command_timeout;
	o.data_timeout = cf->data_timeout;
	o.debug = verbose;

	memset(&cr, 0, sizeof(cr));
	if (acct->auth) {
		memset(&cq, 0, sizeof(cq));
		cq.service = "smtp";
		cq.server = acct->server;
		cq.user = user;
		if (cf->keyfile != NULL)
			cq.keyfile = cf->keyfile;
		else if (creds_default_keyfile(keypath, sizeof(keypath)) == 0)
			cq.keyfile = keypath;
		if (cf->netrc != NULL)
			cq.netrc = cf->netrc;
		else if (creds_default_netrc(netrcpath, sizeof(netrcpath)) == 0)
			cq.netrc = netrcpath;
		cq.command = cf->password_command;
		cq.command_token = cf->auth_mech == CLIENT_AUTH_XOAUTH2;
		cq.command_timeout = cf->password_timeout;
		switch (creds_lookup(&cq, &cr, err, sizeof(err))) {
		case CREDS_OK:
			break;
		case CREDS_ERROR:
			sm_die(EX_CONFIG, "account %s: credentials: %s",
			    acct->name, err);
		case CREDS_NOTFOUND:
			sm_die(EX_CONFIG, "account %s: no password for %s at "
			    "%s", acct->name, user, acct->server);
		}
		o.auth_user = user;
		o.auth_secret = cr.secret;
		o.auth_xoauth2 = cr.is_token;
	}
	conn = client_connect(acct->host, &o, res);
	creds_wipe(&cr);
	if (conn == NULL)
		return client_exit_status(res);
	memset(&msg, 0, sizeof(msg));
	msg.sender = j->sender;
	msg.rcpts = j->rcpts;
	msg.nrcpts = j->nrcpts;
	if (j->envid != NULL && env_xtext_encode(j->envid, xenvid,
	    sizeof(xenvid)) >= 0)
		msg.envid = xenvid;
	msg.ret = j->ret;
	msg.smtputf8 = j->smtputf8;
	msg.eightbit = j->eightbit;
	msg.fd = -1;
	msg.data = j->data;
	msg.datalen = j->datalen;
	(void)client_send(conn, &msg, res);
	client_quit(&conn);
	return client_exit_status(res);
}

/* One line, or one per refused recipient when they differ. */
static void
report(const struct client_result *res, const struct job *j,
    const char *what)
{
	size_t i;
	int same = 1;

	for (i = 1; i < j->nrcpts; i++)
		if (client_rcpt_exit_status(&j->rcpts[i]) !=
		    client_rcpt_exit_status(&j->rcpts[0]) ||
		    strcmp(j->rcpts[i].reply.text, j->rcpts[0].reply.text) != 0)
			same = 0;
	if (same || j->nrcpts == 1 || j->rcpts[0].reply.code == 0) {
		fprintf(stderr, "sendmail: %s: %s%s\n", res->host, res->text,
		    what);
		return;
	}
	for (i = 0; i < j->nrcpts; i++)
		if (client_rcpt_severity(&j->rcpts[i]) != 0)
			fprintf(stderr, "sendmail: %s: <%s>: %d %s%s\n",
			    res->host, j->rcpts[i].addr,
			    j->rcpts[i].reply.code, j->rcpts[i].reply.text,
			    what);
}

int
smarthost_send(const struct sm_opts *o, struct sm_msg *m, const char *login)
{
	struct cconf cf;
	struct cconf_account acct;
	struct client_result res;
	struct client_rcpt *cr;
	struct env_rcpt *left;
	struct job j;
	char dir[PATH_MAX], notify[ENV_NOTIFY_STRMAX];
	size_t i, nleft = 0;
	int status;

	load_account(o->account, m->sender, m->from_hdr, &cf, &acct);
	if ((cr = calloc(m->nrcpts, sizeof(*cr))) == NULL ||
	    (left = calloc(m->nrcpts, sizeof(*left))) == NULL)
		sm_die(EX_OSERR, "out of memory");
	/* -N is one list for every recipient. */
	if (env_notify_format(o->notify, notify, sizeof(notify)) == -1)
		sm_die(EX_SOFTWARE, "NOTIFY bits 0x%x", (unsigned)o->notify);
	for (i = 0; i < m->nrcpts; i++) {
		cr[i].addr = m->rcpts[i].mailbox;
		cr[i].notify = notify[0] != '\0' ? notify : NULL;
	}
	memset(&j, 0, sizeof(j));
	j.sender = m->sender;
	j.rcpts = cr;
	j.nrcpts = m->nrcpts;
	j.envid = o->envid;
	j.ret = env_ret_name(o->ret);
	j.data = m->data.s;
	j.datalen = m->data.len;
	j.eightbit = m->eightbit;
	j.smtputf8 = m->smtputf8;
	status = deliver(&cf, &acct, login, &j, o->verbose, &res);
	if (status == EX_TEMPFAIL) {
		/* Those the server did not take, or all if none was tried. */
		for (i = 0; i < m->nrcpts; i++)
			if (cr[i].reply.code == 0 ||
			    client_rcpt_severity(&cr[i]) != 0)
				left[nleft++] = m->rcpts[i];
		if (offline_dir(cf.queue_dir, dir, sizeof(dir)) == 0 &&
		    offline_put(dir, cf.queue_max, acct.name, o, m, left,
		    nleft) == EX_OK) {
			report(&res, &j, "; kept in the offline queue for "
			    "sendmail -q");
			status = EX_OK;
		} else
			report(&res, &j, "");
	} else if (status != EX_OK)
		report(&res, &j, "");
	else if (o->verbose)
		fprintf(stderr, "sendmail: %s: %s\n", res.host, res.text);
	free(cr);
	free(left);
	cconf_free(&cf);
	/* A link that works again takes what waited for it. */
	if (status == EX_OK && res.reply.code != 0)
		(void)smarthost_flush(login, 1);
	return status;
}

/* The offline queue's directory (queue_dir is a global setting). */
static void
offline_path(char *dir, size_t len)
{
	struct cconf cf;
	char path[PATH_MAX], err[512];

	cconf_init(&cf);
	if (smarthost_conf_path(path, sizeof(path)) == 0 &&
	    cconf_load(&cf, path, 0, "", err, sizeof(err)) == -1)
		sm_die(EX_CONFIG, "%s", err);
	if (offline_dir(cf.queue_dir, dir, len) == -1)
		sm_die(EX_CONFIG, "cannot name the offline queue (no HOME)");
	cconf_free(&cf);
}

static int
flush_one(struct offline_msg *om, void *arg)
{
	struct flush_ctx *fc = arg;
	struct cconf cf;
	struct cconf_account acct;
	struct client_result res;
	struct client_rcpt *cr;
	struct job j;
	char (*notes)[ENV_NOTIFY_STRMAX];
	char envid[256];
	size_t i;
	int status;

	load_account(om->account[0] ? om->account : NULL, om->env->sender,
	    NULL, &cf, &acct);
	if ((cr = calloc(om->env->nrcpts, sizeof(*cr))) == NULL ||
	    (notes = calloc(om->env->nrcpts, sizeof(*notes))) == NULL) {
		free(cr);
		cconf_free(&cf);
		return EX_TEMPFAIL;
	}
	for (i = 0; i < om->env->nrcpts; i++) {
		cr[i].addr = om->env->rcpts[i].mailbox;
		if (env_notify_format(om->env->rcpts[i].notify, notes[i],
		    sizeof(notes[i])) == -1)
			notes[i][0] = '\0';
		cr[i].notify = notes[i][0] != '\0' ? notes[i] : NULL;
	}
	memset(&j, 0, sizeof(j));
	if (om->env->envid != NULL && env_xtext_decode(om->env->envid,
	    envid, sizeof(envid)) >= 0)
		j.envid = envid;
	j.sender = om->env->sender;
	j.rcpts = cr;
	j.nrcpts = om->env->nrcpts;
	j.ret = env_ret_name(om->env->ret);
	j.data = om->data;
	j.datalen = om->datalen;
	j.eightbit = om->env->body != ENV_BODY_UNSET;
	status = deliver(&cf, &acct, fc->login, &j, 0, &res);
	if (status == EX_OK) {
		fc->sent++;
		if (!fc->quiet)
			printf("%s: sent through %s\n", om->name, res.host);
	} else {
		report(&res, &j, status == EX_TEMPFAIL ? "; kept" :
		    "; moved to failed/");
		if (client_severity(status) > client_severity(fc->worst))
			fc->worst = status;
	}
	free(notes);
	free(cr);
	cconf_free(&cf);
	return status;
}

int
smarthost_flush(const char *login, int quiet)
{
	struct flush_ctx fc;
	char dir[PATH_MAX];
	size_t left;
	int r;

	offline_path(dir, sizeof(dir));
	memset(&fc, 0, sizeof(fc));
	fc.login = login;
	fc.quiet = quiet;
	r = offline_each(dir, flush_one, &fc, &left);
	if (r == 1) {
		if (!quiet)
			fprintf(stderr, "sendmail: another sendmail -q is "
			    "flushing %s\n", dir);
		return EX_TEMPFAIL;
	}
	if (r == -1)
		sm_die(EX_IOERR, "%s: %s", dir, strerror(errno));
	if (!quiet)
		printf("%zu sent, %zu left in %s\n", fc.sent, left, dir);
	if (fc.worst != EX_OK && fc.worst != EX_TEMPFAIL)
		return fc.worst;
	return left > 0 ? EX_TEMPFAIL : EX_OK;
}

static int
list_one(struct offline_msg *om, void *arg)
{
	size_t i, *count = arg;

	(*count)++;
	printf("%s %8zu %-8s <%s>\n", om->name, om->datalen,
	    om->account[0] ? om->account : "-", om->env->sender);
	for (i = 0; i < om->env->nrcpts; i++)
		printf("    <%s>\n", om->env->rcpts[i].mailbox);
	return EX_TEMPFAIL;	/* keep it */
}

/* mailq on a host without a queue: what waits in the offline queue. */
int
smarthost_list(const char *login)
{
	char dir[PATH_MAX];
	size_t count = 0, left;

	(void)login;
	offline_path(dir, sizeof(dir));
	if (offline_each(dir, list_one, &count, &left) == -1)
		sm_die(EX_IOERR, "%s: %s", dir, strerror(errno));
	if (count == 0)
		printf("offline queue %s is empty\n", dir);
	else
		printf("-- %zu message%s in %s\n", count, count == 1 ? "" :
		    "s", dir);
	return EX_OK;
}
