#!/usr/bin/python3
"""tests/apps/redisload.py - the data of a10-redis.sh.

  redisload.py resp N        the RESP protocol of N SET commands (redis-cli --pipe)
  redisload.py sample N STEP the keys of the sample, one a line (key:0, key:STEP, ...)
  redisload.py expect N STEP what MGET of the sample returns, one value a line

Key i holds a value derived from i only (sha1 of i, twice, and i), so any
key restored with another key's value, or a stale one, changes the sample.
"""
import hashlib
import sys


def value(i):
    h = hashlib.sha1(b"omtools-%d" % i).hexdigest()
    return "%s%s-%d" % (h, h, i)


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    if mode == "resp":
        for i in range(n):
            k, v = "key:%d" % i, value(i)
            out.write("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    elif mode in ("sample", "expect"):
        for i in range(0, n, int(sys.argv[3])):
            out.write(("key:%d" % i if mode == "sample" else value(i)) + "\n")
    else:
        sys.exit(2)


if __name__ == "__main__":
    main()
