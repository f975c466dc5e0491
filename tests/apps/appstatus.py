"""tests/apps/appstatus.py - how the test applications report their state.

append_line(path, text) appends one line to a status (or result) file, which
the tests read the last complete line of (last_line in apps.sh). A file is
never rewritten and renamed: a checkpoint can come while it is open, and
CRIU reopens it by its path when that generation is restored, however old;
a file open O_WRONLY|O_APPEND keeps its path, and CRIU skips its size check.
"""
import os


def append_line(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)
