#!/usr/bin/python3
"""tests/apps/tcpapp.py - a TCP server and its clients for a30-tcp.sh.

  tcpapp.py server PORT STATUS     listen on 127.0.0.1:PORT; every connection
                                   gets its own thread
  tcpapp.py client PORT STATUS     connect, then exchange numbers forever

Protocol, checked on both sides: the client sends its counter n (8 bytes, big
endian) every 20 ms; the server checks it is the previous n + 1 of that
connection and answers n * 3 + 7, which the client checks. A lost, duplicated
or reordered byte in either direction is a mismatch. STATUS is rewritten
(a line appended per update; the last one counts) with `n=<count> ok` or `FAIL <reason>`; the
server's with `conns=<accepted> n=<numbers checked> ok`. A client stops at
SIGTERM with `n=<count> done`; a server counts a connection reset by a killed
peer as closed, not as a failure.
"""
import signal
import socket
import struct
import sys
import threading
import time

from appstatus import append_line


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed by the peer")
        buf += chunk
    return buf


def server(port, status):
    lock = threading.Lock()
    state = {"conns": 0, "n": 0, "fail": None}

    def report():
        with lock:
            if state["fail"]:
                append_line(status, "FAIL " + state["fail"])
            else:
                append_line(status, "conns=%d n=%d ok" % (state["conns"], state["n"]))

    def handle(c):
        last = 0
        try:
            while True:
                (n,) = struct.unpack(">Q", recv_exact(c, 8))
                if n != last + 1:
                    with lock:
                        state["fail"] = "server got %d after %d" % (n, last)
                    report()
                    return
                last = n
                c.sendall(struct.pack(">Q", n * 3 + 7))
                with lock:
                    state["n"] += 1
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass  # the peer is gone (killed by the test): not a data error
        finally:
            c.close()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)

    def reporter():
        while True:
            report()
            time.sleep(0.1)

    threading.Thread(target=reporter, daemon=True).start()
    while True:
        c, _ = ls.accept()
        with lock:
            state["conns"] += 1
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def client(port, status):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(100)  # a checkpoint and restore of the server may pause it
    n = 0
    last_report = 0.0
    try:
        while not stop:
            n += 1
            s.sendall(struct.pack(">Q", n))
            (r,) = struct.unpack(">Q", recv_exact(s, 8))
            if r != n * 3 + 7:
                append_line(status, "FAIL client got %d for %d" % (r, n))
                sys.exit(1)
            now = time.monotonic()
            if now - last_report > 0.1:
                append_line(status, "n=%d ok" % n)
                last_report = now
            time.sleep(0.02)
    except Exception as e:  # noqa: BLE001 - any error is the test's failure
        if not stop:
            append_line(status, "FAIL client after %d: %r" % (n, e))
            sys.exit(1)
    append_line(status, "n=%d done" % n)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("server", "client"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    (server if sys.argv[1] == "server" else client)(int(sys.argv[2]), sys.argv[3])
