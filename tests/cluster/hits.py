#!/usr/bin/python3
"""tests/cluster/hits.py - a listening server whose state lives only in memory.

  hits.py PORT STATUS

Listens on 0.0.0.0:PORT. Every connection gets one line "hits=N pid=P boot=B"
and is closed: N counts the connections since the server started (kept only
in memory, so a restart from scratch says hits=1 again), P is the server's
pid, B a random number drawn at start (a fresh start draws another). The
client checks that N went up by one since its last visit and that B did not
change: the listening socket and the memory moved together. STATUS gets
"ready port=PORT boot=B" once the socket listens.
"""
import os
import random
import socket
import sys


def main():
    port, status = int(sys.argv[1]), sys.argv[2]
    boot = random.randrange(1, 1 << 30)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    tmp = status + ".tmp"
    with open(tmp, "w") as f:
        f.write("ready port=%d boot=%d\n" % (port, boot))
    os.rename(tmp, status)
    hits = 0
    while True:
        c, _ = s.accept()
        hits += 1
        try:
            c.sendall(b"hits=%d pid=%d boot=%d\n" % (hits, os.getpid(), boot))
        except OSError:
            pass
        c.close()


if __name__ == "__main__":
    main()
