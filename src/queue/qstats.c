/*
 * Counting the spool's files, without opening them: cheap enough for a
 * scrape every few seconds on a queue of a million messages, and never
 * blocked by a message's lock.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "qstats.h"

/* Entries of spool/sub not starting with "." and not ending in suffix. */
static long
count_dir(const char *spool, const char *sub, const char *skip_suffix)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t len, sl;
	long n = 0;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/%s", spool, sub) >=
	    (int)sizeof(path))
		return -1;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	sl = skip_suffix != NULL ? strlen(skip_suffix) : 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(de->d_name);
		if (sl > 0 && len >= sl &&
		    strcmp(de->d_name + len - sl, skip_suffix) == 0)
			continue;
		n++;
	}
	closedir(d);
	return n;
}

int
qstats_count(const char *spool, struct qstats *qs)
{
	memset(qs, 0, sizeof(*qs));
	qs->queued = count_dir(spool, "queue", NULL);
	qs->deferred = count_dir(spool, "state", ".tmp");
	qs->held = count_dir(spool, "hold", NULL);
	qs->corrupt = count_dir(spool, "corrupt", NULL);
	qs->incoming = count_dir(spool, "tmp", NULL);
	if (qs->queued < 0 || qs->deferred < 0 || qs->held < 0 ||
	    qs->corrupt < 0 || qs->incoming < 0)
		return -1;
	return 0;
}

int
qstats_render(const struct qstats *qs, struct str *o)
{
	return str_appendf(o, "# HELP smtpd_queue_messages Messages in the "
	    "spool, by state.\n# TYPE smtpd_queue_messages gauge\n"
	    "smtpd_queue_messages{state=\"queued\"} %ld\n"
	    "smtpd_queue_messages{state=\"deferred\"} %ld\n"
	    "smtpd_queue_messages{state=\"held\"} %ld\n"
	    "smtpd_queue_messages{state=\"corrupt\"} %ld\n"
	    "smtpd_queue_messages{state=\"incoming\"} %ld\n", qs->queued,
	    qs->deferred, qs->held, qs->corrupt, qs->incoming);
}

int
qstats_print_prometheus(const char *spool)
{
	struct qstats qs;
	struct str o;

	if (qstats_count(spool, &qs) == -1) {
		fprintf(stderr, "smtpq: %s: %s\n", spool, strerror(errno));
		return EX_IOERR;
	}
	str_init(&o, 64 * 1024);
	if (qstats_render(&qs, &o) == -1 ||
	    fwrite(str_cstr(&o), 1, o.len, stdout) != o.len ||
	    fflush(stdout) == EOF) {
		str_free(&o);
		fprintf(stderr, "smtpq: cannot write the statistics\n");
		return EX_IOERR;
	}
	str_free(&o);
	return EX_OK;
}
