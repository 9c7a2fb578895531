/*
 * Message data as DATA lines and as BDAT chunks: the checks and the
 * spool writer, with the header held back as smtpd does.  The first byte
 * picks the chunk size and, with its top bit, whether a bare LF is refused.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data.h"
#include "queue/spool.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct spool *sp;

static void
tag(void *arg, const char *hdr, size_t len, struct str *tags)
{
	(void)str_appends(tags, "X-Fuzz: yes\r\n");
}

static struct spool_msg *
message(void)
{
	static const struct env_rcpt r = { "r@example.net", 0, NULL };
	struct envelope env;

	memset(&env, 0, sizeof(env));
	env.sender = "s@example.org";
	env.rcpts = &r;
	env.nrcpts = 1;
	return spool_begin(sp, &env);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/fuzz-data-XXXXXX";
	struct spool_msg *m;
	struct datain d;
	enum data_bare_lf mode;
	size_t chunk, i, e, k;
	int end = 0;
	char err[256];

	if (sp == NULL) {
		if (mkdtemp(dir) == NULL ||
		    (sp = spool_open(dir, 0, err, sizeof(err))) == NULL)
			abort();
	}
	if (size == 0)
		return 0;
	chunk = 1 + data[0] % 64;
	mode = data[0] & 0x80 ? DATA_LF_REJECT : DATA_LF_NORMALIZE;
	data++;
	size--;

	/* DATA: lines as lineio hands them over. */
	if ((m = message()) == NULL)
		return 0;
	datain_init(&d, m, 4096, 0, 512, mode, tag, NULL);
	for (i = 0; i < size && !end; i = e) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);

		e = nl != NULL ? (size_t)(nl - data) + 1 : size;
		if (e - i > chunk && nl == NULL)
			e = i + chunk;
		k = datain_data(&d, (const char *)data + i, e - i, &end);
		/* The end is CRLF "." CRLF, or "." CRLF at the very start. */
		if (k > e - i || (end && (i + k != e || (i + k != 3 &&
		    (i + k < 5 || memcmp(data + i + k - 5, "\r\n", 2) != 0)) ||
		    memcmp(data + i + k - 3, ".\r\n", 3) != 0)))
			abort();
	}
	(void)datain_finish(&d);
	datain_free(&d);
	spool_abort(&m);

	/* BDAT: the same bytes in chunks. */
	if ((m = message()) == NULL)
		return 0;
	datain_init(&d, m, 4096, 998, 512, mode, tag, NULL);
	for (i = 0; i < size; i += chunk)
		datain_bdat(&d, (const char *)data + i,
		    size - i < chunk ? size - i : chunk);
	(void)datain_finish(&d);
	datain_free(&d);
	spool_abort(&m);
	return 0;
}
