#!/usr/bin/python3
"""tests/apps/pipeline.py - the two ends of a50-pipeline.sh's shell pipeline
(producer | gzip -1 | consumer).

  pipeline.py produce N GATE       write lines "i base64(hashes of i)" for i = 1..N to stdout,
                                   20 lines every 20 ms; the last 1000 only once
                                   the file GATE exists (the test opens it when
                                   it is done checkpointing)
  pipeline.py produce N --fast     the same lines at once
  pipeline.py consume OUT STATUS   gunzip stdin as it comes, check every line is
                                   the next one, append to STATUS (its last line) at
                                   `lines=N ok`; at EOF write OUT:
                                   `lines=N sha256=<hex of all the text>` and
                                   STATUS `lines=N done`; on a wrong line
                                   STATUS says `FAIL ...` and it exits 1
"""
import base64
import hashlib
import os
import sys
import time
import zlib

from appstatus import append_line


def line(i):
    # barely compressible (base64 of hashes): gzip emits a block every ~32 KiB
    # of input, so the data keeps moving through all three processes
    raw = hashlib.sha512(b"%d" % i).digest() + hashlib.sha512(b"x%d" % i).digest()
    return b"%d %s\n" % (i, base64.b64encode(raw))


def produce(n, gate):
    out = sys.stdout.buffer
    for i in range(1, n + 1):
        out.write(line(i))
        if gate and i % 20 == 0:
            out.flush()
            time.sleep(0.02)
            while i == n - 1000 and not os.path.exists(gate):
                time.sleep(0.05)
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
                append_line(status, "FAIL line %d is %r" % (n, text[:80]))
                sys.exit(1)
        now = time.monotonic()
        if now - last > 0.1:
            append_line(status, "lines=%d ok" % n)
            last = now
        if not chunk:
            break
    if pending:
        append_line(status, "FAIL a partial last line")
        sys.exit(1)
    append_line(outpath, "lines=%d sha256=%s" % (n, h.hexdigest()))
    append_line(status, "lines=%d done" % n)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "produce":
        produce(int(sys.argv[2]), None if sys.argv[3] == "--fast" else sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
