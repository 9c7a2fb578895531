#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "tests.h"

static void
test_lf(void)
{
	static const char data[] = "a\r\nb\rc\r\n\r\nend\r";
	struct fs_lf lf;
	char out[64];
	ssize_t n;
	size_t got = 0;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f = tmpfile());
	fputs(data, f);
	fflush(f);
	/* Two-byte reads put a CR at every chunk edge. */
	fs_lf_init(&lf, fileno(f), 0);
	while ((n = fs_lf_read(&lf, out + got, 2)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	CU_ASSERT_STRING_EQUAL(out, "a\nb\rc\n\nend\r");
	fclose(f);
}

/* A CRLF across the reader's own buffer, from an offset. */
static void
test_lf_big(void)
{
	const size_t nx = sizeof(((struct fs_lf *)0)->in) - 1;
	struct fs_lf *lf;
	char *out;
	size_t got = 0, i;
	ssize_t n;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f = tmpfile());
	CU_ASSERT_PTR_NOT_NULL_FATAL(lf = malloc(sizeof(*lf)));
	CU_ASSERT_PTR_NOT_NULL_FATAL(out = malloc(nx + 16));
	fputs("skip", f);
	for (i = 0; i < nx; i++)
		putc('x', f);
	fputs("\r\ny", f);
	fflush(f);
	fs_lf_init(lf, fileno(f), 4);
	while ((n = fs_lf_read(lf, out + got, nx + 16 - got)) > 0)
		got += (size_t)n;
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(got, nx + 2);
	CU_ASSERT_EQUAL(memcmp(out + nx, "\ny", 2), 0);
	CU_ASSERT_EQUAL(out[0], 'x');
	/* pread: the descriptor's own offset is where stdio left it. */
	CU_ASSERT_EQUAL(lseek(fileno(f), 0, SEEK_CUR), (off_t)(nx + 7));
	free(out);
	free(lf);
	fclose(f);
}

int
suite_fsutil(void)
{
	CU_pSuite s = CU_add_suite("fsutil", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "CRLF to LF", test_lf) == NULL ||
	    CU_add_test(s, "CRLF to LF across the buffer", test_lf_big) ==
	    NULL)
		return -1;
	return 0;
}
