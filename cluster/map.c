/* cluster/map.c — see map.h. */
#include "map.h"
