#!/usr/bin/python3
"""tests/apps/pipeline.py - the two ends of a50-pipeline.sh's shell pipeline
(producer | gzip -1 | consumer).

  pipeline.py produce N [--fast]   write lines "i sha1(i)" for i = 1..N to stdout,
                                   20 lines every 10 ms (--fast: at once)
  pipeline.py consume OUT STATUS   gunzip stdin as it comes, check every line is
                                   the next one, keep STATUS (tmp + rename) at
                                   `lines=N ok`; at EOF write OUT:
                                   `lines=N sha256=<hex of all the text>` and
                                   STATUS `lines=N done`; on a wrong line
                                   STATUS says `FAIL ...` and it exits 1
"""
import hashlib
import os
import sys
import time
import zlib


def line(i):
    return b"%d %s\n" % (i, hashlib.sha1(b"%d" % i).hexdigest().encode())


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text + "\n")
    os.rename(tmp, path)


def produce(n, fast):
    out = sys.stdout.buffer
    for i in range(1, n + 1):
        out.write(line(i))
        if not fast and i % 20 == 0:
            out.flush()
            time.sleep(0.01)
    out.flush()


def consume(outpath, status):
    d = zlib.decompressobj(wbits=31)
    h = hashlib.sha256()
    pending = b""
    n = 0
    last = 0.0
    inp = sys.stdin.buffer.raw
    while True:
        chunk = inp.read(65536)
        data = d.decompress(chunk) if chunk else d.flush()
        h.update(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        for text in lines:
            n += 1
            if text + b"\n" != line(n):
                write(status, "FAIL line %d is %r" % (n, text[:80]))
                sys.exit(1)
        now = time.monotonic()
        if now - last > 0.1:
            write(status, "lines=%d ok" % n)
            last = now
        if not chunk:
            break
    if pending:
        write(status, "FAIL a partial last line")
        sys.exit(1)
    write(outpath, "lines=%d sha256=%s" % (n, h.hexdigest()))
    write(status, "lines=%d done" % n)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "produce":
        produce(int(sys.argv[2]), "--fast" in sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
