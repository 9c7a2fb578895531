#include "config.h"
#include "tests.h"
int suite_lineio(void) { return CU_add_suite("lineio", NULL, NULL) ? 0 : -1; }
