/* cluster/etcd.c — see etcd.h. */
#include "etcd.h"
