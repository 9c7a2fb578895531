#include "config.h"
#include "tests.h"
int suite_addr(void) { return CU_add_suite("addr", NULL, NULL) ? 0 : -1; }
