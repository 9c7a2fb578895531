#include "config.h"
#include "tests.h"
int suite_str(void) { return CU_add_suite("str", NULL, NULL) ? 0 : -1; }
