/*
 * What the fuzz targets check of a refusal a filter or a policy service
 * made us give: a code of the verdict's class (4xx defer, 5xx reject), an
 * enhanced status code that fits it, and text, within its bound and
 * printable (lines of a multi-line reply joined with '\n' where
 * newlines_ok).  Traps otherwise.
 */
#ifndef FUZZ_REFUSAL_H
#define FUZZ_REFUSAL_H

#include <string.h>

#include "lib/reply.h"
#include "policy/policy.h"

static void
check_refusal(const struct verdict *v, int newlines_ok)
{
	const char *s;
	int cls = v->kind == VERDICT_REJECT ? 5 : 4;

	if ((v->kind != VERDICT_REJECT && v->kind != VERDICT_DEFER) ||
	    v->reply.code / 100 != cls ||
	    !reply_status_fits(v->reply.status, v->reply.code) ||
	    strlen(v->reply.text) >= sizeof(v->reply.text) ||
	    v->reply.text[0] == '\0')
		__builtin_trap();
	for (s = v->reply.text; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && !(newlines_ok && *s == '\n')) ||
		    *s == 0x7f)
			__builtin_trap();
}

#endif
