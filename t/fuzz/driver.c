/*
 * Runs a fuzz target over files, without libFuzzer: each argument is a
 * file or a directory of files, fed to LLVMFuzzerTestOneInput one by one.
 * "make check" uses it to replay the seed corpus (and any crash once
 * found); tools/fuzz builds the same targets with libFuzzer to explore.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define INPUT_MAX	(4 * 1024 * 1024)

static int
run_file(const char *path)
{
	unsigned char *buf;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if ((buf = malloc(INPUT_MAX)) == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, INPUT_MAX, f);
	fclose(f);
	(void)LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	int i, n = 0;
	DIR *d;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) == -1)
				return 1;
			n++;
			continue;
		}
		if ((d = opendir(argv[i])) == NULL) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name) >= sizeof(path) || run_file(path) == -1) {
				closedir(d);
				return 1;
			}
			n++;
		}
		closedir(d);
	}
	printf("%s: %d inputs\n", argv[0], n);
	return 0;
}
