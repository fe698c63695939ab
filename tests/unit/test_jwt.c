#include "unit.h"

const unit_test jwt_tests[] = {
    {NULL, NULL},
};
