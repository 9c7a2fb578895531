/*
 * Reads spool/user-limits, written by smtpd (src/policy/state.c): one
 * line per AUTH login or trusted sender, "start window messages limit
 * recipients limit who".  The file is only a view: a missing or damaged
 * one shows nothing, and lines of an ended window are skipped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/str.h"
#include "ulimits.h"

#define ULIMITS_MAX	1000	/* lines read; smtpd writes no more */
#define ULIMITS_WHO	300

struct ulimit {
	long long	 resets;	/* seconds until the window ends */
	unsigned int	 msgs, mlimit, rcpts, rlimit;
	char		 who[ULIMITS_WHO];	/* "login:ann", "sender:b@x" */
};

/* The current entries, in the file's order (busiest first).  Count. */
static size_t
ulimits_load(const char *spool, struct ulimit *u, size_t max)
{
	char path[4096], line[ULIMITS_WHO + 128];
	long long start;
	unsigned int window;
	time_t now = time(NULL);
	size_t n = 0, len;
	FILE *f;
	int off;

	if ((size_t)snprintf(path, sizeof(path), "%s/user-limits", spool) >=
	    sizeof(path) || (f = fopen(path, "re")) == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		len = strlen(line);
		if (len == 0 || line[len - 1] != '\n') {
			/* Too long: skip the rest of it. */
			int c;

			while ((c = getc(f)) != EOF && c != '\n')
				;
			continue;
		}
		line[--len] = '\0';
		off = -1;
		if (line[0] == '#' || sscanf(line, "%lld %u %u %u %u %u %n",
		    &start, &window, &u[n].msgs, &u[n].mlimit, &u[n].rcpts,
		    &u[n].rlimit, &off) != 6 || off <= 0 ||
		    line[off] == '\0' || start > (long long)now ||
		    start + (long long)window <= (long long)now)
			continue;
		u[n].resets = start + (long long)window - (long long)now;
		str_lcpy(u[n].who, line + off, sizeof(u[n].who));
		n++;
	}
	fclose(f);
	return n;
}

/* "3/100", or "3/-" without a limit. */
static void
fmt_count(char *buf, size_t len, unsigned int n, unsigned int limit)
{
	if (limit == 0)
		snprintf(buf, len, "%u/-", n);
	else
		snprintf(buf, len, "%u/%u", n, limit);
}

int
ulimits_text(const char *spool, struct str *o)
{
	struct ulimit *u;
	char m[32], r[32], who[ULIMITS_WHO * 4];
	size_t i, n;
	int rc = 0;

	if ((u = calloc(ULIMITS_MAX, sizeof(*u))) == NULL)
		return -1;
	n = ulimits_load(spool, u, ULIMITS_MAX);
	if (n > 0)
		rc = str_appendf(o, "per-user limits (messages, recipients, "
		    "window resets in):\n");
	for (i = 0; i < n && rc == 0; i++) {
		fmt_count(m, sizeof(m), u[i].msgs, u[i].mlimit);
		fmt_count(r, sizeof(r), u[i].rcpts, u[i].rlimit);
		/* As the log shows a login: \\ and the like escaped. */
		str_printable(who, sizeof(who), u[i].who, strlen(u[i].who));
		rc = str_appendf(o, "  %-40s %-12s %-12s %llds\n", who, m, r,
		    u[i].resets);
	}
	free(u);
	return rc;
}

/* A label value in the text format: backslash, quote, newline escaped. */
static int
label(struct str *o, const char *s)
{
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		if (*s == '\\')
			rc = str_appends(o, "\\\\");
		else if (*s == '"')
			rc = str_appends(o, "\\\"");
		else if (*s == '\n')
			rc = str_appends(o, "\\n");
		else
			rc = str_appendc(o, *s);
	}
	return rc;
}

static int
series(struct str *o, const char *name, const struct ulimit *u,
    long long value)
{
	const char *colon = strchr(u->who, ':');
	int kind = colon != NULL ? (int)(colon - u->who) : 0;

	if (str_appendf(o, "%s{kind=\"%.*s\",user=\"", name, kind,
	    u->who) == -1 || label(o, colon != NULL ? colon + 1 : u->who) ==
	    -1)
		return -1;
	return str_appendf(o, "\"} %lld\n", value);
}

int
ulimits_render(const char *spool, struct str *o)
{
	struct ulimit *u;
	size_t i, n;
	int rc;

	if ((u = calloc(ULIMITS_MAX, sizeof(*u))) == NULL)
		return -1;
	n = ulimits_load(spool, u, ULIMITS_MAX);
	rc = str_appendf(o, "# HELP smtpd_user_messages Messages in the "
	    "current window, per AUTH login or trusted sender.\n"
	    "# TYPE smtpd_user_messages gauge\n");
	for (i = 0; i < n && rc == 0; i++)
		rc = series(o, "smtpd_user_messages", &u[i], u[i].msgs);
	if (rc == 0)
		rc = str_appendf(o, "# HELP smtpd_user_recipients Recipients "
		    "in the current window, per AUTH login or trusted "
		    "sender.\n# TYPE smtpd_user_recipients gauge\n");
	for (i = 0; i < n && rc == 0; i++)
		rc = series(o, "smtpd_user_recipients", &u[i], u[i].rcpts);
	if (rc == 0)
		rc = str_appendf(o, "# HELP smtpd_user_window_seconds Seconds "
		    "until the user's window ends and its counts reset.\n"
		    "# TYPE smtpd_user_window_seconds gauge\n");
	for (i = 0; i < n && rc == 0; i++)
		rc = series(o, "smtpd_user_window_seconds", &u[i],
		    u[i].resets);
	/* One set of limits: the daemon writes them all at once. */
	if (rc == 0 && n > 0)
		rc = str_appendf(o, "# HELP smtpd_user_messages_limit "
		    "limits.user_messages (0: none).\n"
		    "# TYPE smtpd_user_messages_limit gauge\n"
		    "smtpd_user_messages_limit %u\n"
		    "# HELP smtpd_user_recipients_limit "
		    "limits.user_recipients (0: none).\n"
		    "# TYPE smtpd_user_recipients_limit gauge\n"
		    "smtpd_user_recipients_limit %u\n", u[0].mlimit,
		    u[0].rlimit);
	free(u);
	return rc;
}
