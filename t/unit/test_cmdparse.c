#include "config.h"
#include "tests.h"
int suite_cmdparse(void) { return CU_add_suite("cmdparse", NULL, NULL) ? 0 : -1; }
