/*
 * smtpq passwd: sets an AUTH password in smtpd's secrets file.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "auth/secrets.h"
#include "conf/conffile.h"
#include "lib/fsutil.h"
#include "lib/str.h"
#include "smtpq.h"

/* Reads one line of password, without echo when it comes from a terminal. */
static int
read_password(const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(0), r = 0;
	size_t n;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		if (tcgetattr(0, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			(void)tcsetattr(0, TCSAFLUSH, &quiet);
		} else
			tty = 0;
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		r = -1;
	if (tty) {
		(void)tcsetattr(0, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (r == -1)
		return -1;
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == len - 1)
		return -1;	/* longer than the buffer */
	buf[n] = '\0';
	return 0;
}

/*
 * The secrets file named by auth.secrets in the config, compiled as
 * smtpd compiles it (relative to the config's directory); "" if none.
 * 0, or -1 with the config's error in err.
 */
static int
config_secrets(const char *conffile, char *buf, size_t len, char *err,
    size_t errlen)
{
	struct conf_file *cf;

	buf[0] = '\0';
	if ((cf = conf_file_load(conffile, 0, NULL, err, errlen)) == NULL)
		return -1;
	if (str_lcpy(buf, cf->auth.secrets, len) >= len) {
		snprintf(err, errlen, "%s: auth.secrets is too long", conffile);
		conf_file_unref(&cf);
		return -1;
	}
	conf_file_unref(&cf);
	return 0;
}

/*
 * smtpq passwd: writes user's line with a freshly hashed password into the
 * secrets file, replacing an old one, as a whole new file (mode 0600)
 * renamed over the old.  The new file is FILE.new, made with O_EXCL and
 * O_NOFOLLOW: nothing planted there is followed or reused, and two runs
 * at once cannot lose each other's change (the second one stops).
 */
int
smtpq_passwd(int argc, char **argv, const char *conffile)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], line[4096], entry[1024];
	char pass[1100], again[1100], err[256];
	const char *user, *file = NULL;
	FILE *in, *out;
	size_t ulen;
	int ch, fd, rc = EX_OK;

	optind = 1;
	while ((ch = getopt(argc, argv, "f:")) != -1) {
		if (ch != 'f')
			usage();
		file = optarg;
	}
	if (argc - optind != 1)
		usage();
	user = argv[optind];
	if (secrets_check_user(user) == -1) {
		fprintf(stderr, "smtpq: %s: not a valid user name\n", user);
		return EX_USAGE;
	}
	if (file == NULL) {
		if (config_secrets(conffile, path, sizeof(path), err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "smtpq: %s\n", err);
			return EX_CONFIG;
		}
		if (path[0] == '\0') {
			fprintf(stderr, "smtpq: %s names no auth.secrets; use -f\n",
			    conffile);
			return EX_CONFIG;
		}
		file = path;
	}
	if (read_password("Password: ", pass, sizeof(pass)) == -1 ||
	    pass[0] == '\0' || strlen(pass) > SECRETS_PASS_MAX ||
	    (isatty(0) && (read_password("Again: ", again, sizeof(again)) == -1 ||
	    strcmp(pass, again) != 0))) {
		fprintf(stderr, "smtpq: no password (1 to %d bytes), or they "
		    "differ\n", SECRETS_PASS_MAX);
		str_wipe(pass, sizeof(pass));
		str_wipe(again, sizeof(again));
		return EX_DATAERR;
	}
	str_wipe(again, sizeof(again));
	if (secrets_crypt_line(user, pass, entry, sizeof(entry), err,
	    sizeof(err)) == -1) {
		str_wipe(pass, sizeof(pass));
		fprintf(stderr, "smtpq: %s\n", err);
		return EX_SOFTWARE;
	}
	str_wipe(pass, sizeof(pass));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", file) >= sizeof(tmp)) {
		fprintf(stderr, "smtpq: %s: path too long\n", file);
		return EX_USAGE;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		fprintf(stderr, "smtpq: %s: %s%s\n", tmp, strerror(errno),
		    errno == EEXIST ? " (another smtpq passwd running, or left "
		    "over: check and remove it)" : "");
		str_wipe(entry, sizeof(entry));
		return EX_CANTCREAT;
	}
	/* The umask may have taken bits away; it must not have added any. */
	if (fchmod(fd, 0600) == -1 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "smtpq: %s: %s\n", tmp, strerror(errno));
		(void)close(fd);
		(void)unlink(tmp);
		str_wipe(entry, sizeof(entry));
		return EX_CANTCREAT;
	}
	ulen = strlen(user);
	if ((in = fopen(file, "r")) != NULL) {
		while (fgets(line, sizeof(line), in) != NULL)
			if (!(strncmp(line, user, ulen) == 0 && line[ulen] == ':'))
				fputs(line, out);
		fclose(in);
	} else if (errno != ENOENT) {
		fprintf(stderr, "smtpq: %s: %s\n", file, strerror(errno));
		fclose(out);
		(void)unlink(tmp);
		str_wipe(entry, sizeof(entry));
		return EX_NOINPUT;
	}
	fprintf(out, "%s\n", entry);
	str_wipe(entry, sizeof(entry));
	if (fflush(out) == EOF || fsync(fileno(out)) == -1 ||
	    fclose(out) == EOF || rename(tmp, file) == -1) {
		fprintf(stderr, "smtpq: %s: %s\n", file, strerror(errno));
		(void)unlink(tmp);
		return EX_IOERR;
	}
	/* The rename itself must survive a crash. */
	str_lcpy(tmp, file, sizeof(tmp));
	if (fs_sync_dir(dirname(tmp)) == -1) {
		fprintf(stderr, "smtpq: %s: %s\n", file, strerror(errno));
		return EX_IOERR;
	}
	printf("smtpq: password for %s set in %s\n", user, file);
	return rc;
}
