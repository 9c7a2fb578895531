/*
 * maildrop: local submission into the spool (sendmail(8) and the queue
 * runner's pickup).  See maildrop.h and smtpd-spool(5), MAILDROP.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/conf.h"
#include "lib/addr.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "maildrop.h"
#include "envelope.h"

static int	pick_one(struct spool *, const struct maildrop_conf *, int,
		    const char *, const char *);
static void	give_up(const char *, const char *, const char *,
		    const char *);

static const char *const sendmail_keys[] = {
	"mode", "sender_mismatch", "domain", "group", "max_message_size",
	"trusted", "admins", NULL
};

static int
name_list(const struct conf_ctx *cx, config_setting_t *g, const char *key,
    char (*names)[64], size_t *n)
{
	char **v;
	size_t i, nv;

	if (conf_empty_list(g, key)) {
		/* An empty list names nobody. */
		*n = 0;
		return 0;
	}
	if (conf_get_strings(cx, g, key, &v, &nv, MAILDROP_NAMES_MAX) == -1)
		return -1;
	if (v == NULL)
		return 0;
	for (i = 0; i < nv; i++)
		if (v[i][0] == '\0' || str_lcpy(names[i], v[i], 64) >= 64) {
			conf_free_strings(&v, nv);
			return conf_err(cx, config_setting_get_member(g, key),
			    "sendmail.%s: want user names", key);
		}
	*n = nv;
	conf_free_strings(&v, nv);
	return 0;
}

/* "queue" or "smarthost"; "refuse" or "rewrite": 0 or 1, -1 if neither. */
static int
one_of(const char *v, const char *zero, const char *one)
{
	if (strcmp(v, zero) == 0)
		return 0;
	return strcmp(v, one) == 0 ? 1 : -1;
}

static int
sendmail_group(const struct conf_ctx *cx, config_setting_t *g,
    struct maildrop_conf *mc)
{
	const char *mode = NULL, *mismatch = NULL, *dom = NULL, *grp = NULL;
	size_t size = (size_t)mc->max_size;
	int k;

	if (!config_setting_is_group(g))
		return conf_err(cx, g, "sendmail: want a group { ... }");
	if (conf_check_keys(cx, g, sendmail_keys, "sendmail") == -1 ||
	    conf_get_string(cx, g, "mode", &mode) == -1 ||
	    conf_get_string(cx, g, "sender_mismatch", &mismatch) == -1 ||
	    conf_get_string(cx, g, "domain", &dom) == -1 ||
	    conf_get_string(cx, g, "group", &grp) == -1 ||
	    conf_get_size(cx, g, "max_message_size", 1024,
	    (size_t)1 << 40, &size) == -1)
		return -1;
	mc->max_size = size;
	if (mode != NULL) {
		if ((k = one_of(mode, "queue", "smarthost")) == -1)
			return conf_err(cx, config_setting_get_member(g,
			    "mode"), "sendmail.mode: want \"queue\" or "
			    "\"smarthost\"");
		mc->mode = k ? MAILDROP_SMARTHOST : MAILDROP_QUEUE;
	}
	if (mismatch != NULL) {
		if ((k = one_of(mismatch, "refuse", "rewrite")) == -1)
			return conf_err(cx, config_setting_get_member(g,
			    "sender_mismatch"), "sendmail.sender_mismatch: "
			    "want \"refuse\" or \"rewrite\"");
		mc->rewrite = k;
	}
	if (dom != NULL && (*dom == '\0' || str_lcpy(mc->domain, dom,
	    sizeof(mc->domain)) >= sizeof(mc->domain)))
		return conf_err(cx, config_setting_get_member(g, "domain"),
		    "sendmail.domain: want a domain");
	if (grp != NULL && str_lcpy(mc->group, grp, sizeof(mc->group)) >=
	    sizeof(mc->group))
		return conf_err(cx, config_setting_get_member(g, "group"),
		    "sendmail.group: too long");
	if (name_list(cx, g, "trusted", mc->trusted, &mc->ntrusted) == -1 ||
	    name_list(cx, g, "admins", mc->admins, &mc->nadmins) == -1)
		return -1;
	return 0;
}

int
maildrop_conf_load(const char *path, struct maildrop_conf *mc, char *err,
    size_t errlen)
{
	struct conf_ctx cx = { path, err, errlen };
	config_setting_t *root, *g;
	config_t cf;
	const char *v = NULL;
	int r = -1;

	memset(mc, 0, sizeof(*mc));
	str_lcpy(mc->file, path, sizeof(mc->file));
	str_lcpy(mc->spool, conf_default_spool(), sizeof(mc->spool));
	str_lcpy(mc->trusted[0], "root", sizeof(mc->trusted[0]));
	mc->ntrusted = 1;
	str_lcpy(mc->admins[0], "root", sizeof(mc->admins[0]));
	mc->nadmins = 1;
	mc->max_size = MAILDROP_MAX_SIZE;
	config_init(&cf);
	if (conf_read(&cf, path, 1, &mc->have_file, err, errlen) == -1)
		goto out;
	root = config_root_setting(&cf);
	if (!mc->have_file) {
		/* The name smtpd and smtpq take. */
		net_host_name(mc->domain, sizeof(mc->domain));
		r = 0;
		goto out;
	}
	if (conf_get_path(&cx, root, "spool", mc->spool,
	    sizeof(mc->spool)) == -1 ||
	    conf_get_string(&cx, root, "defaultdomain", &v) == -1 ||
	    conf_get_string(&cx, root, "hostname", &v) == -1)
		goto out;
	if (v != NULL && *v != '\0')
		str_lcpy(mc->domain, v, sizeof(mc->domain));
	else
		net_host_name(mc->domain, sizeof(mc->domain));
	if ((g = config_setting_get_member(root, "sendmail")) != NULL &&
	    sendmail_group(&cx, g, mc) == -1)
		goto out;
	r = 0;
out:
	config_destroy(&cf);
	return r;
}

int
maildrop_listed(char (*names)[64], size_t n, const char *login)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], login) == 0)
			return 1;
	return 0;
}

int
maildrop_own_sender(const struct maildrop_conf *mc, const char *login,
    const char *sender)
{
	size_t ll = strlen(login);

	if (strcasecmp(sender, login) == 0)
		return 1;
	return strncasecmp(sender, login, ll) == 0 && sender[ll] == '@' &&
	    strcasecmp(sender + ll + 1, mc->domain) == 0;
}

/* Moves a refused file aside to corrupt/ and says why. */
static void
give_up(const char *spooldir, const char *dropdir, const char *name,
    const char *why)
{
	char from[PATH_MAX], to[PATH_MAX];

	snprintf(from, sizeof(from), "%s/%s", dropdir, name);
	snprintf(to, sizeof(to), "%s/corrupt/maildrop-%s", spooldir, name);
	if (rename(from, to) == -1 && unlink(from) == -1)
		log_err("maildrop: %s: cannot remove it: %s", name,
		    strerror(errno));
	log_warn("maildrop: %s refused (kept as corrupt/maildrop-%s): %s",
	    name, name, why);
}

/*
 * One file: 1 queued, 0 not yet complete, -1 refused or failed (the
 * file is then moved aside, or left for the next scan on an I/O error).
 */
static int
pick_one(struct spool *sp, const struct maildrop_conf *mc, int dfd,
    const char *dropdir, const char *name)
{
	struct envelope se;
	struct spool_msg *m;
	struct envelope *env = NULL;
	struct passwd pw, *pwp = NULL;
	struct stat st;
	struct str hdr;
	char pwbuf[4096], err[256], sender[ADDR_PATH_MAX + 1], date[64];
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r = -1;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_err("maildrop: %s: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		give_up(mc->spool, dropdir, name, "not a regular file");
		return -1;
	}
	if ((st.st_mode & 07777) != 0640) {
		close(fd);
		/* Still being written, or abandoned by its writer. */
		if (st.st_mtime + MAILDROP_STALE < time(NULL) &&
		    unlinkat(dfd, name, 0) == 0)
			log_info("maildrop: %s: removed, unfinished for a day",
			    name);
		return 0;
	}
	if (st.st_nlink != 1 || (unsigned long long)st.st_size >
	    mc->max_size + 65536) {
		close(fd);
		give_up(mc->spool, dropdir, name, st.st_nlink != 1 ?
		    "more than one link" : "larger than max_message_size");
		return -1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		give_up(mc->spool, dropdir, name, "short read");
		goto out;
	}
	if (envelope_parse(buf, got, &env, err, sizeof(err)) == -1) {
		give_up(mc->spool, dropdir, name, err);
		goto out;
	}
	if (env->nrcpts == 0) {
		give_up(mc->spool, dropdir, name, "no recipients");
		goto out;
	}
	if (getpwuid_r(st.st_uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
	    pwp == NULL) {
		give_up(mc->spool, dropdir, name, "its owner has no login");
		goto out;
	}
	str_lcpy(sender, env->sender, sizeof(sender));
	if (st.st_uid != 0 && !maildrop_listed((char (*)[64])mc->trusted,
	    mc->ntrusted, pw.pw_name) && *sender != '\0' &&
	    !maildrop_own_sender(mc, pw.pw_name, sender)) {
		if (!mc->rewrite) {
			give_up(mc->spool, dropdir, name, "sender not the "
			    "owner's address");
			goto out;
		}
		snprintf(sender, sizeof(sender), "%s@%s", pw.pw_name,
		    mc->domain);
	}
	/* What a local user may say; the rest is the queue's to write. */
	memset(&se, 0, sizeof(se));
	se.sender = sender;
	se.rcpts = env->rcpts;
	se.nrcpts = env->nrcpts;
	se.ret = env->ret;
	se.envid = env->envid;
	se.protocol = "local";
	se.body = env->body;
	se.smtputf8 = env->smtputf8;
	se.user = pw.pw_name;
	se.arrival = time(NULL);
	if ((m = spool_begin(sp, &se)) == NULL) {
		log_err("maildrop: %s: cannot queue it: %s", name,
		    strerror(errno));
		goto out;
	}
	fs_rfc5322_date(date, sizeof(date), se.arrival);
	str_init(&hdr, 1024);
	(void)str_appendf(&hdr, "Received: by %s (smtpd, from userid %lu)\r\n"
	    "\tid %s; %s\r\n", mc->domain, (unsigned long)st.st_uid,
	    spool_msg_id(m), date);
	if (spool_write(m, hdr.s, hdr.len) == -1 ||
	    spool_write(m, buf + env->body_off, got -
	    (size_t)env->body_off) == -1 || spool_commit(&m) == -1) {
		str_free(&hdr);
		if (m != NULL)
			spool_abort(&m);
		log_err("maildrop: %s: cannot queue it: %s", name,
		    strerror(errno));
		goto out;
	}
	str_free(&hdr);
	if (unlinkat(dfd, name, 0) == -1)
		log_err("maildrop: %s: queued but not removed: %s", name,
		    strerror(errno));
	log_info("maildrop: %s queued for %s: from=<%s> nrcpts=%zu", name,
	    pw.pw_name, sender, env->nrcpts);
	r = 1;
out:
	explicit_bzero(pwbuf, sizeof(pwbuf));
	envelope_free(&env);
	free(buf);
	return r;
}

int
maildrop_pickup(struct spool *sp, const char *spooldir, const char *conffile)
{
	struct maildrop_conf mc;
	struct dirent *de;
	char dropdir[PATH_MAX], err[512];
	DIR *d;
	int queued = 0, n = 0;

	snprintf(dropdir, sizeof(dropdir), "%s/%s", spooldir, MAILDROP_DIR);
	if ((d = opendir(dropdir)) == NULL)
		return 0;	/* no local submission here */
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0) {
			if (maildrop_conf_load(conffile, &mc, err,
			    sizeof(err)) == -1) {
				log_err("maildrop: %s", err);
				break;
			}
			/* Where the messages are going, whatever it says. */
			str_lcpy(mc.spool, spooldir, sizeof(mc.spool));
		}
		if (pick_one(sp, &mc, dirfd(d), dropdir, de->d_name) == 1)
			queued++;
	}
	closedir(d);
	return queued;
}
