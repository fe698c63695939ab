#include "unit.h"

const unit_test engine_pure_tests[] = {
    {NULL, NULL},
};
