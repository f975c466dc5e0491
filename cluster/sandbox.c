/* cluster/sandbox.c — see sandbox.h. */
#include "sandbox.h"
