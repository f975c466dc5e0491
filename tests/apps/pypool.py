#!/usr/bin/python3
"""tests/apps/pypool.py - a Python multiprocessing application for a20-pypool.sh.

  pypool.py STATUS RESULT

Each round r: a multiprocessing.Pool of 3 workers maps f(x) = x*x + r over
0..199 (tasks and results travel over the pool's Queues and Pipes), and a
long-lived Process gets the same numbers over a multiprocessing.Queue and
answers each with f(x) over a Pipe. Both result lists are checked against
f computed here; the round's sum is added to a running total. STATUS
(its last line, one appended per round) says `rounds=N total=T ok`, or `FAIL <reason>`. At SIGTERM
the last round ends, the workers are stopped and RESULT is written:
`rounds=N total=T PASS`, which the test checks against the total it
computes itself.
"""
import multiprocessing as mp
import signal
import sys
import time

from appstatus import append_line


def f(args):
    x, r = args
    return x * x + r


def queue_worker(inq, conn):
    while True:
        item = inq.get()
        if item is None:
            conn.send(None)
            return
        x, r = item
        conn.send((x, f((x, r))))


def main():
    status, result = sys.argv[1], sys.argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    inq = mp.Queue()
    parent_end, child_end = mp.Pipe()
    qw = mp.Process(target=queue_worker, args=(inq, child_end), daemon=True)
    qw.start()
    pool = mp.Pool(3)
    rounds = total = 0
    xs = list(range(200))
    while not stop:
        r = rounds + 1
        want = [f((x, r)) for x in xs]
        got = pool.map(f, [(x, r) for x in xs], chunksize=10)
        for x in xs:
            inq.put((x, r))
        piped = [parent_end.recv() for _ in xs]
        if got != want:
            append_line(status, "FAIL pool round %d" % r)
            sys.exit(1)
        if piped != list(zip(xs, want)):
            append_line(status, "FAIL queue/pipe round %d" % r)
            sys.exit(1)
        rounds, total = r, total + sum(want)
        append_line(status, "rounds=%d total=%d ok" % (rounds, total))
        time.sleep(0.05)
    pool.close()
    pool.join()
    inq.put(None)
    if parent_end.recv() is not None:
        append_line(status, "FAIL queue worker did not stop")
        sys.exit(1)
    qw.join(10)
    append_line(result, "rounds=%d total=%d PASS" % (rounds, total))


if __name__ == "__main__":
    main()
