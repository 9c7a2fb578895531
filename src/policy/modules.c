/*
 * The policy modules: one struct of optional hooks each, run in order for
 * every step of a session; the first answer other than CONTINUE is final.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/addr.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/str.h"
#include "lib/table.h"
#include "delegate.h"
#include "policy.h"
#include "state.h"

/* Bounds on a regular expression's work, so a rule cannot stall a thread. */
#define RULE_MATCH_LIMIT	200000
#define RULE_DEPTH_LIMIT	20000

struct hdrctx {
	const char	*hdr;
	size_t		 len;
	struct str	*tags;
};

struct module {
	const char	*name;
	enum verdict_kind (*connect)(struct policy_session *, struct verdict *);
	enum verdict_kind (*helo)(struct policy_session *, const char *,
			    struct verdict *);
	enum verdict_kind (*mail)(struct policy_session *, const char *,
			    struct verdict *);
	enum verdict_kind (*rcpt)(struct policy_session *, const char *,
			    struct verdict *);
	enum verdict_kind (*headers)(struct policy_session *, struct hdrctx *,
			    struct verdict *);
	enum verdict_kind (*data_end)(struct policy_session *, struct verdict *);
};

enum verdict_kind
verdict_set(struct verdict *v, enum verdict_kind k, int code,
    const char *status, const char *fmt, ...)
{
	va_list ap;

	v->kind = k;
	va_start(ap, fmt);
	(void)reply_vset(&v->reply, code, status, fmt, ap);
	va_end(ap);
	return k;
}

int
policy_blocked_peer(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(p->block, p->nblock, sa);
}

int
policy_trusted_peer(const struct policy *p, const struct sockaddr *sa)
{
	return cidr_list_match(p->ournets, p->nournets, sa);
}

int
policy_our_domain(const struct policy *p, const char *domain)
{
	char err[256], d[POLICY_HOST_MAX + 1];
	size_t i, n;

	/* "*.dom" is below dom only, as in routes: dom is listed itself. */
	for (i = 0; i < p->nourdomains; i++)
		if (addr_domain_match(p->ourdomains[i], domain))
			return 1;
	if (p->ourdomains_table == NULL ||
	    (n = str_lcpy(d, domain, sizeof(d))) >= sizeof(d))
		return 0;
	if (n > 1 && d[n - 1] == '.')
		d[n - 1] = '\0';
	switch (table_lookup(p->ourdomains_table, d, NULL, 0, err,
	    sizeof(err))) {
	case TABLE_FOUND:
		return 1;
	case TABLE_TEMP:
		log_err("ourdomains: %s", err);
		return 0;
	default:
		return 0;
	}
}

/* Plan 9's sender pattern parts: "*", "*.dom", "prefix*", or exact. */
static int
pattern_match(const char *pat, const char *s, int is_domain)
{
	size_t pl = strlen(pat);

	if (is_domain)
		return addr_domain_match(pat, s);
	if (strcmp(pat, "*") == 0)
		return 1;
	if (pl > 0 && pat[pl - 1] == '*')
		return strncasecmp(s, pat, pl - 1) == 0;
	return strcasecmp(s, pat) == 0;
}

static enum access_action
access_ip(const struct policy *p, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < p->naccess; i++)
		if (p->access[i].is_ip && cidr_match(&p->access[i].net, sa))
			return p->access[i].action;
	return ACCESS_NONE;
}

static enum access_action
access_sender(const struct policy *p, const char *sender)
{
	char user[ADDR_LOCAL_MAX + 3];
	const char *at = strrchr(sender, '@');
	const char *dom = at ? at + 1 : "";
	size_t i, ul = at ? (size_t)(at - sender) : strlen(sender);

	if (ul >= sizeof(user))
		ul = sizeof(user) - 1;
	memcpy(user, sender, ul);
	user[ul] = '\0';
	for (i = 0; i < p->naccess; i++) {
		const struct access_rule *a = &p->access[i];

		if (!a->is_ip && pattern_match(a->domain, dom, 1) &&
		    pattern_match(a->user, user, 0))
			return a->action;
	}
	return ACCESS_NONE;
}

/* Runs the rules for one target against s; the first match decides. */
static enum verdict_kind
run_rules(struct policy_session *ps, enum rule_target t, const char *s,
    size_t len, struct str *tags, struct verdict *v)
{
	const struct policy *p = ps->pol;
	pcre2_match_context *mc;
	pcre2_match_data *md;
	size_t i;
	int rc;

	if (p->nrules == 0)
		return VERDICT_CONTINUE;
	if ((mc = pcre2_match_context_create(NULL)) == NULL)
		return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
		    "Policy check failed, try again later");
	pcre2_set_match_limit(mc, RULE_MATCH_LIMIT);
	pcre2_set_depth_limit(mc, RULE_DEPTH_LIMIT);
	for (i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];
		int act = r->action & 0xff;

		if (r->target != t)
			continue;
		if ((md = pcre2_match_data_create_from_pattern(r->re, NULL)) == NULL) {
			pcre2_match_context_free(mc);
			return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
			    "Policy check failed, try again later");
		}
		rc = pcre2_match(r->re, (PCRE2_SPTR)s, len, 0, 0, md, mc);
		pcre2_match_data_free(md);
		if (rc == PCRE2_ERROR_NOMATCH)
			continue;
		if (rc < 0) {
			/* A rule that cannot decide must not let mail through. */
			log_warn("%s policy rule at line %d: match error %d",
			    ps->id, r->line, rc);
			pcre2_match_context_free(mc);
			return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
			    "Policy check failed, try again later");
		}
		log_info("%s policy rule at line %d matched", ps->id, r->line);
		if (act == VERDICT_TAG) {
			if (tags != NULL)
				(void)str_appendf(tags, "%s\r\n", r->text);
			continue;
		}
		pcre2_match_context_free(mc);
		if (act == VERDICT_ACCEPT)
			return verdict_set(v, VERDICT_ACCEPT, 250, "2.0.0",
			    "Ok");
		verdict_set(v, (enum verdict_kind)act, r->code, r->status,
		    "%s", r->text);
		v->save = (r->action & 0x100) != 0;
		return v->kind;
	}
	pcre2_match_context_free(mc);
	return VERDICT_CONTINUE;
}

/* Plan 9's dial verb: once a dial-up client is seen, nothing goes. */
static enum verdict_kind
hard_reject(struct policy_session *ps, struct verdict *v)
{
	if (!ps->hardreject)
		return VERDICT_CONTINUE;
	return verdict_set(v, VERDICT_REJECT, 554, "5.7.1",
	    "We don't accept mail from dial-up ports.");
}

/* --- access: Plan 9's allow/block/deny/dial/delay verbs --- */

static enum verdict_kind
access_connect(struct policy_session *ps, struct verdict *v)
{
	char why[400];

	if (ps->trusted || ps->peer.ss_family == AF_UNSPEC)
		return VERDICT_CONTINUE;
	ps->ip_action = access_ip(ps->pol, (struct sockaddr *)&ps->peer);
	if (ps->ip_action == ACCESS_NONE && access_table_ip(ps->pol,
	    (struct sockaddr *)&ps->peer, &ps->ip_action, why,
	    sizeof(why)) == -1) {
		/* Told at MAIL: a connection is not refused on a guess. */
		log_err("%s policy access table: %s", ps->id, why);
		ps->access_temp = 1;
	}
	if (ps->ip_action == ACCESS_DIAL)
		ps->hardreject = 1;
	return VERDICT_CONTINUE;
}

static enum verdict_kind
access_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	enum access_action a;
	char why[400];
	int temp = ps->access_temp;	/* the client's verb is unknown */

	if (ps->trusted)
		return VERDICT_CONTINUE;
	a = ps->ip_action;
	if (!temp && (a == ACCESS_NONE || a == ACCESS_ALLOW)) {
		a = access_sender(ps->pol, sender);
		if (a == ACCESS_NONE && access_table_sender(ps->pol, sender,
		    &a, why, sizeof(why)) == -1) {
			log_err("%s policy access table: %s", ps->id, why);
			temp = 1;
		}
		ps->sender_action = a;
	}
	if (temp)
		return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
		    "Access lookup failed, try again later");
	if (a == ACCESS_DIAL) {
		ps->hardreject = 1;
		return hard_reject(ps, v);
	}
	if (a == ACCESS_DENY) {
		log_info("%s policy denied sender=<%.256s>", ps->id, sender);
		return verdict_set(v, VERDICT_REJECT, 554, "5.7.1",
		    "We don't accept mail from %.256s.\n"
		    "Contact postmaster@%s for more information.",
		    sender[0] ? sender : "<>", ps->pol->hostname);
	}
	if (a == ACCESS_ALLOW)
		return VERDICT_ACCEPT;
	return VERDICT_CONTINUE;
}

static enum verdict_kind
access_data_end(struct policy_session *ps, struct verdict *v)
{
	enum access_action a = ps->sender_action != ACCESS_NONE ?
	    ps->sender_action : ps->ip_action;

	/* Kept under dump only with -s (saveblockedmsg), as in Plan 9. */
	if (a == ACCESS_BLOCK)
		return verdict_set(v, VERDICT_REJECT, 554, "5.7.1",
		    "we believe this is spam.");
	if (a == ACCESS_DELAY)
		return verdict_set(v, VERDICT_DEFER, 450, "4.3.0",
		    "There will be a delay in delivery of this message.");
	return VERDICT_CONTINUE;
}

/* --- limits: per-client rates --- */

static enum verdict_kind
limits_connect(struct policy_session *ps, struct verdict *v)
{
	if (ps->state == NULL || ps->trusted ||
	    !state_rate(ps->state, &ps->peer, RATE_CONN,
	    ps->pol->connections_per_minute))
		return VERDICT_CONTINUE;
	return verdict_set(v, VERDICT_DEFER, 421, "4.7.0",
	    "%s Too many connections from your address, try again later",
	    ps->pol->hostname);
}

static enum verdict_kind
limits_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	if (ps->state == NULL || ps->trusted ||
	    !state_rate(ps->state, &ps->peer, RATE_MSG,
	    ps->pol->messages_per_minute))
		return VERDICT_CONTINUE;
	return verdict_set(v, VERDICT_DEFER, 451, "4.7.1",
	    "Too many messages from your address, try again later");
}

/* --- HELO checks (opt-in), as 9front does them --- */

static int
valid_literal(const char *h)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char a[16];
	size_t n = strlen(h);

	if (n < 3 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= sizeof(buf))
		return 0;
	memcpy(buf, h + 1, n - 2);
	buf[n - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, buf + 5, a) == 1;
	return inet_pton(AF_INET, buf, a) == 1;
}

static enum verdict_kind
helo_check(struct policy_session *ps, const char *helo, struct verdict *v)
{
	static const char *const reserved[] = { "localhost", "localdomain",
	    "local", "example", "invalid", "test", "lan", NULL };
	static const char *const examples[] = { "example.com", "example.net",
	    "example.org", NULL };
	const char *why = NULL, *last;
	char h[POLICY_HOST_MAX + 2];
	size_t n, i;

	if (!ps->pol->helo_checks || ps->trusted)
		return VERDICT_CONTINUE;
	if (helo[0] == '[') {
		if (valid_literal(helo))
			return VERDICT_CONTINUE;
		why = "is not a valid address literal";
		goto refuse;
	}
	if (str_lcpy(h, helo, sizeof(h)) >= sizeof(h)) {
		why = "is too long";
		goto refuse;
	}
	n = strlen(h);
	if (n > 1 && h[n - 1] == '.')
		h[--n] = '\0';
	if (strcasecmp(h, ps->pol->hostname) == 0 || policy_our_domain(ps->pol, h)) {
		why = "claims to be us";
		goto refuse;
	}
	if (strchr(h, '.') == NULL) {
		why = "is not a fully-qualified domain name";
		goto refuse;
	}
	if (strspn(h, "0123456789.") == n) {
		why = "is a bare address: use [address]";
		goto refuse;
	}
	if (!addr_valid_domain(h, n, 1)) {
		why = "is not a valid domain name";
		goto refuse;
	}
	last = strrchr(h, '.') + 1;
	for (i = 0; reserved[i] != NULL; i++)
		if (strcasecmp(last, reserved[i]) == 0) {
			why = "is in a reserved domain";
			goto refuse;
		}
	for (i = 0; examples[i] != NULL; i++) {
		size_t el = strlen(examples[i]);

		if (strcasecmp(h, examples[i]) == 0 || (n > el &&
		    h[n - el - 1] == '.' && strcasecmp(h + n - el, examples[i]) == 0)) {
			why = "is in a reserved domain";
			goto refuse;
		}
	}
	return VERDICT_CONTINUE;
refuse:
	log_info("%s policy helo refused name=%.100s: %s", ps->id, helo, why);
	return verdict_set(v, VERDICT_REJECT, 550, "5.7.1",
	    "HELO name %.100s %s", helo, why);
}

static enum verdict_kind
rules_helo(struct policy_session *ps, const char *helo, struct verdict *v)
{
	if (ps->trusted)
		return VERDICT_CONTINUE;
	return run_rules(ps, RULE_HELO, helo, strlen(helo), NULL, v);
}

/* --- sender DNS check (-r, verifysenderdom) --- */

static enum verdict_kind
dns_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	const char *at = strrchr(sender, '@');

	if (!ps->pol->verifysenderdom || ps->trusted || sender[0] == '\0' ||
	    at == NULL)
		return VERDICT_CONTINUE;
	switch (dns_mail_domain(at + 1)) {
	case DNS_OK:
		return VERDICT_CONTINUE;
	case DNS_TEMPFAIL:
		return verdict_set(v, VERDICT_DEFER, 451, "4.4.3",
		    "Sender address rejected: cannot look up domain %.200s, "
		    "try again later", at + 1);
	case DNS_NULLMX:
		return verdict_set(v, VERDICT_REJECT, 550, "5.1.8",
		    "Sender address rejected: domain %.200s accepts no mail",
		    at + 1);
	default:
		return verdict_set(v, VERDICT_REJECT, 550, "5.1.8",
		    "Sender address rejected: domain %.200s not found", at + 1);
	}
}

static enum verdict_kind
rules_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	if (ps->trusted)
		return VERDICT_CONTINUE;
	return run_rules(ps, RULE_SENDER, sender, strlen(sender), NULL, v);
}

/* --- relay control --- */

/* The client's address for a log line (fail2ban matches on it). */
static const char *
peer_str(const struct policy_session *ps, char *buf, size_t len)
{
	if (ps->peer.ss_family == AF_UNSPEC ||
	    net_ntop((const struct sockaddr *)&ps->peer, buf, len, NULL) == -1)
		str_lcpy(buf, "unknown", len);
	return buf;
}

static enum verdict_kind
relay_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	const char *at = strrchr(rcpt, '@');
	char addr[NET_ADDRSTR_MAX];
	size_t ll;

	if (ps->trusted)
		return VERDICT_CONTINUE;
	if (at == NULL)
		return VERDICT_CONTINUE;	/* <Postmaster> is always ours */
	/* An address literal is ours only if ourdomains names it. */
	if (!policy_our_domain(ps->pol, at + 1))
		goto deny;
	/*
	 * Routing tricks inside the local part ("user%other@ours",
	 * "other!user@ours", "\"user@other\"@ours") would have the next
	 * hop relay for us.
	 */
	ll = (size_t)(at - rcpt);
	if (memchr(rcpt, '%', ll) != NULL || memchr(rcpt, '!', ll) != NULL ||
	    memchr(rcpt, '@', ll) != NULL) {
		log_info("%s policy relay refused to=<%.256s> address=%s: "
		    "routing in the local part", ps->id, rcpt,
		    peer_str(ps, addr, sizeof(addr)));
		return verdict_set(v, VERDICT_REJECT, 554, "5.7.1",
		    "Relaying denied: address routing is not allowed");
	}
	return VERDICT_CONTINUE;
deny:
	log_info("%s policy relay refused to=<%.256s> address=%s", ps->id,
	    rcpt, peer_str(ps, addr, sizeof(addr)));
	return verdict_set(v, VERDICT_REJECT, 554, "5.7.1", "Relaying denied");
}

/* --- greylisting (opt-in) --- */

static enum verdict_kind
grey_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	if (!ps->pol->greylist || ps->trusted || ps->state == NULL ||
	    ps->peer.ss_family == AF_UNSPEC)
		return VERDICT_CONTINUE;
	switch (state_greylist(ps->state, ps->pol, &ps->peer, ps->sender, rcpt,
	    ps->single)) {
	case GREY_PASS:
		return VERDICT_CONTINUE;
	case GREY_ERROR:
		return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
		    "Policy check failed, try again later");
	default:
		log_info("%s policy greylisted to=<%.256s>", ps->id, rcpt);
		return verdict_set(v, VERDICT_DEFER, 451, "4.7.1",
		    "Greylisted, please try again later");
	}
}

static enum verdict_kind
rules_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	if (ps->trusted)
		return VERDICT_CONTINUE;
	return run_rules(ps, RULE_RCPT, rcpt, strlen(rcpt), NULL, v);
}

/* --- the header: spoofed-domain tagging (-f) and header rules --- */

/*
 * Calls fn for each logical header line ("Name: value", folding removed,
 * NUL-terminated in a scratch buffer).  Stops when fn returns non-zero.
 */
static int
each_header(const char *h, size_t len,
    int (*fn)(void *, const char *, size_t), void *arg)
{
	struct str line;
	size_t i = 0, e;
	int r = 0;

	str_init(&line, len + 1);
	while (i < len && r == 0) {
		if (h[i] == '\r' || h[i] == '\n')
			break;	/* the empty line: end of header */
		str_clear(&line);
		for (;;) {
			for (e = i; e < len && h[e] != '\n'; e++)
				;
			/* Drop the CR LF; a folded continuation joins with a space. */
			(void)str_append(&line, h + i, e > i && h[e - 1] == '\r' ?
			    e - i - 1 : e - i);
			i = e + 1;
			if (i >= len || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		r = fn(arg, str_cstr(&line), line.len);
	}
	str_free(&line);
	return r;
}

struct spoofscan {
	const struct policy *pol;
	int		 sender_seen, sender_ours;
	int		 from_ours;	/* From: fields with our domain */
};

/* 1 if any address in a header value has one of our domains. */
static int
value_has_our_domain(const struct policy *p, const char *v)
{
	char dom[ADDR_DOMAIN_MAX + 1];
	const char *at;
	size_t n;

	for (at = strchr(v, '@'); at != NULL; at = strchr(at + 1, '@')) {
		n = strcspn(at + 1, " \t>,;()\"");
		if (n == 0 || n >= sizeof(dom))
			continue;
		memcpy(dom, at + 1, n);
		dom[n] = '\0';
		if (policy_our_domain(p, dom))
			return 1;
	}
	return 0;
}

static int
spoof_line(void *arg, const char *line, size_t len)
{
	struct spoofscan *sc = arg;

	if (len > 7 && strncasecmp(line, "Sender:", 7) == 0) {
		sc->sender_seen = 1;
		if (value_has_our_domain(sc->pol, line + 7))
			sc->sender_ours++;
	} else if (len > 5 && strncasecmp(line, "From:", 5) == 0 &&
	    value_has_our_domain(sc->pol, line + 5))
		sc->from_ours++;
	return 0;
}

static enum verdict_kind
spoof_headers(struct policy_session *ps, struct hdrctx *h, struct verdict *v)
{
	struct spoofscan sc;
	const char *at = strrchr(ps->sender, '@');
	int i;

	if (!ps->pol->norelay || ps->trusted)
		return VERDICT_CONTINUE;
	if (at != NULL && policy_our_domain(ps->pol, at + 1))
		(void)str_appends(h->tags, "X-warning: suspect envelope domain\r\n");
	memset(&sc, 0, sizeof(sc));
	sc.pol = ps->pol;
	(void)each_header(h->hdr, h->len, spoof_line, &sc);
	if (sc.sender_ours)
		(void)str_appends(h->tags, "X-warning: suspect Sender: domain\r\n");
	/* A good Sender: speaks for the message (mailing lists), as in Plan 9. */
	if (!sc.sender_seen || sc.sender_ours)
		for (i = 0; i < sc.from_ours; i++)
			(void)str_appends(h->tags,
			    "X-warning: suspect From: domain\r\n");
	if (h->tags->len > 0)
		log_info("%s policy tagged as spoofed", ps->id);
	return VERDICT_CONTINUE;
}

struct rulescan {
	struct policy_session	*ps;
	struct str		*tags;
	struct verdict		*v;
};

static int
rule_line(void *arg, const char *line, size_t len)
{
	struct rulescan *rs = arg;

	return run_rules(rs->ps, RULE_HEADER, line, len, rs->tags, rs->v) !=
	    VERDICT_CONTINUE;
}

static enum verdict_kind
rules_headers(struct policy_session *ps, struct hdrctx *h, struct verdict *v)
{
	struct rulescan rs;

	if (ps->trusted || ps->pol->nrules == 0)
		return VERDICT_CONTINUE;
	rs.ps = ps;
	rs.tags = h->tags;
	rs.v = v;
	if (each_header(h->hdr, h->len, rule_line, &rs))
		return v->kind == VERDICT_ACCEPT ? VERDICT_CONTINUE : v->kind;
	return VERDICT_CONTINUE;
}

/* --- recipients: is there such a user here? --- */

static enum verdict_kind
rcpt_verify(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	const char *at = strrchr(rcpt, '@');
	char why[400];
	int ours;

	if (ps->pol->rcpt_check == NULL)
		return VERDICT_CONTINUE;
	ours = at == NULL || policy_our_domain(ps->pol, at + 1);
	switch (ps->pol->rcpt_check(ps->pol->rcpt_check_arg, rcpt, ps->sender,
	    ps->login[0] ? ps->login : NULL, ours, why, sizeof(why))) {
	case POLICY_RCPT_UNKNOWN:
		log_info("%s policy unknown recipient to=<%.256s>", ps->id,
		    rcpt);
		return verdict_set(v, VERDICT_REJECT, 550, "5.1.1",
		    "<%.256s>: Recipient address rejected: no such user here",
		    rcpt);
	case POLICY_RCPT_TEMP:
		log_err("%s policy recipient lookup failed to=<%.256s>: %s",
		    ps->id, rcpt, why);
		return verdict_set(v, VERDICT_DEFER, 451, "4.3.0",
		    "<%.256s>: Recipient lookup failed, try again later", rcpt);
	default:
		return VERDICT_CONTINUE;
	}
}

/* --- user limits: messages and recipients per login or sender --- */

/* "login:alice", or "sender:bob@x" for a trusted client; 0 if neither. */
static int
user_key(const struct policy_session *ps, char *buf, size_t len)
{
	size_t i;

	if (ps->login[0] != '\0')
		snprintf(buf, len, "login:%s", ps->login);
	else if (ps->trusted && !ps->authenticated)
		snprintf(buf, len, "sender:%s", ps->sender[0] ? ps->sender :
		    "<>");
	else
		return 0;
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	return 1;
}

static enum verdict_kind
user_count(struct policy_session *ps, int what, struct verdict *v)
{
	const struct policy *p = ps->pol;
	unsigned int msgs, rcpts;
	char who[300];

	if (ps->state == NULL || (p->user_messages == 0 &&
	    p->user_recipients == 0) || !user_key(ps, who, sizeof(who)))
		return VERDICT_CONTINUE;
	if (!state_user_count(ps->state, p, who, what, &msgs, &rcpts)) {
		if (what == USER_MSG)
			log_info("%s policy user %s messages=%u/%u "
			    "recipients=%u/%u window=%us", ps->id, who, msgs,
			    p->user_messages, rcpts, p->user_recipients,
			    p->user_window);
		return VERDICT_CONTINUE;
	}
	log_info("%s policy user limit %s messages=%u/%u recipients=%u/%u "
	    "window=%us", ps->id, who, msgs, p->user_messages, rcpts,
	    p->user_recipients, p->user_window);
	return verdict_set(v, VERDICT_DEFER, 451, "4.7.1",
	    "Too many %s from %.200s, try again later",
	    what == USER_MSG ? "messages" : "recipients",
	    strchr(who, ':') + 1);
}

static enum verdict_kind
user_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	(void)sender;
	return user_count(ps, USER_MSG, v);
}

static enum verdict_kind
user_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	(void)rcpt;
	return user_count(ps, USER_RCPT, v);
}

/* The order matters: the first final answer wins. */
static const struct module modules[] = {
	{ "limits", limits_connect, NULL, limits_mail, NULL, NULL, NULL },
	{ "access", access_connect, NULL, access_mail, NULL, NULL,
	    access_data_end },
	{ "helo", NULL, helo_check, NULL, NULL, NULL, NULL },
	{ "dns", NULL, NULL, dns_mail, NULL, NULL, NULL },
	{ "relay", NULL, NULL, NULL, relay_rcpt, NULL, NULL },
	{ "recipients", NULL, NULL, NULL, rcpt_verify, NULL, NULL },
	{ "rules", NULL, rules_helo, rules_mail, rules_rcpt, rules_headers,
	    NULL },
	{ "greylist", NULL, NULL, NULL, grey_rcpt, NULL, NULL },
	{ "delegate", NULL, NULL, NULL, delegate_rcpt, NULL,
	    delegate_data_end },
	{ "spoof", NULL, NULL, NULL, NULL, spoof_headers, NULL },
	/* Last: only what every other module let through is counted. */
	{ "userlimits", NULL, NULL, user_mail, user_rcpt, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, NULL }
};

void
policy_session_init(struct policy_session *ps, const struct policy *p,
    struct policy_state *st, const struct sockaddr_storage *peer,
    const char *id)
{
	memset(ps, 0, sizeof(*ps));
	ps->pol = p;
	ps->state = st;
	ps->id = id;
	if (peer != NULL)
		ps->peer = *peer;
	else
		ps->peer.ss_family = AF_UNSPEC;
	net_unmap(&ps->peer);
	if (ps->peer.ss_family != AF_UNSPEC)
		ps->trusted = policy_trusted_peer(p, (struct sockaddr *)&ps->peer);
}

void
policy_session_end(struct policy_session *ps)
{
	free(ps->prepend);
	ps->prepend = NULL;
	ps->prependlen = ps->prepended = 0;
}

void
policy_session_trust(struct policy_session *ps, int authenticated)
{
	ps->trusted = 1;
	ps->authenticated |= authenticated;
	ps->hardreject = 0;
}

void
policy_session_login(struct policy_session *ps, const char *login)
{
	str_lcpy(ps->login, login != NULL ? login : "", sizeof(ps->login));
}

void
policy_reset(struct policy_session *ps)
{
	ps->sender_action = ACCESS_NONE;
	ps->sender[0] = '\0';
	/* Header lines to add are rare: no buffer kept between them. */
	policy_session_end(ps);
	ps->hold = ps->discard = 0;
	ps->transaction++;
}

/* Runs one kind of hook over the modules. */
#define RUN(hook, ...) do {						\
	const struct module *m;						\
									\
	memset(v, 0, sizeof(*v));					\
	for (m = modules; m->name != NULL; m++) {			\
		if (m->hook == NULL)					\
			continue;					\
		if (m->hook(__VA_ARGS__) != VERDICT_CONTINUE)		\
			return v->kind == VERDICT_ACCEPT ?		\
			    VERDICT_CONTINUE : v->kind;			\
	}								\
	return VERDICT_CONTINUE;					\
} while (0)

enum verdict_kind
policy_connect(struct policy_session *ps, struct verdict *v)
{
	RUN(connect, ps, v);
}

enum verdict_kind
policy_helo(struct policy_session *ps, const char *helo, struct verdict *v)
{
	enum verdict_kind k;

	memset(v, 0, sizeof(*v));
	if ((k = hard_reject(ps, v)) != VERDICT_CONTINUE)
		return k;
	RUN(helo, ps, helo, v);
}

enum verdict_kind
policy_mail(struct policy_session *ps, const char *sender, struct verdict *v)
{
	enum verdict_kind k;

	memset(v, 0, sizeof(*v));
	if ((k = hard_reject(ps, v)) != VERDICT_CONTINUE)
		return k;
	str_lcpy(ps->sender, sender, sizeof(ps->sender));
	RUN(mail, ps, sender, v);
}

enum verdict_kind
policy_rcpt(struct policy_session *ps, const char *rcpt, struct verdict *v)
{
	enum verdict_kind k;

	memset(v, 0, sizeof(*v));
	if ((k = hard_reject(ps, v)) != VERDICT_CONTINUE)
		return k;
	RUN(rcpt, ps, rcpt, v);
}

enum verdict_kind
policy_headers(struct policy_session *ps, const char *hdr, size_t len,
    struct str *tags, struct verdict *v)
{
	struct hdrctx h;

	h.hdr = hdr;
	h.len = len;
	h.tags = tags;
	delegate_tags(ps, tags);	/* PREPEND from policy services */
	RUN(headers, ps, &h, v);
}

enum verdict_kind
policy_data_end(struct policy_session *ps, struct verdict *v)
{
	RUN(data_end, ps, v);
}
