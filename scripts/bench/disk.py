#!/usr/bin/env python3
"""What this disk allows for durable writes, with no server in the way: the
ceiling of edgedav's PUT figures, which fsync before they answer (the peers'
do not).

    disk.py big SRC DIR REPS
        copies SRC into DIR REPS times as a commit does; prints the median
        rate in MB/s
    disk.py small DIR SECONDS THREADS
        THREADS threads create 4 KiB files in DIR for SECONDS as a commit
        does; prints files per second

A commit, as edgedav's local store makes one of a whole upload: write (in
1 MiB pieces) into an anonymous file in the target's directory (O_TMPFILE),
fsync it, link it into place, fsync it again (its link count), fsync the
directory; where the filesystem has no anonymous files, into a named file
renamed into place.

The big file is removed after each copy; the small files stay (the caller
removes DIR when it is done: deleting tens of thousands of files would slow
the creation of files for minutes on ext4 without a journal).
"""
import os
import statistics
import sys
import threading
import time


def commit(data_pieces, staged, target, directory):
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o644)
            anonymous = True
        except OSError:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            anonymous = False
        try:
            for piece in data_pieces:
                os.write(fd, piece)
            os.fsync(fd)
            if anonymous:
                # With a directory descriptor Python calls linkat (an
                # absolute path ignores it), which follows the /proc link.
                os.link(f"/proc/self/fd/{fd}", target, src_dir_fd=dfd, follow_symlinks=True)
                # The link count, 0 until now, is the inode's to write.
                os.fsync(fd)
        finally:
            os.close(fd)
        if not anonymous:
            os.rename(staged, target)
        os.fsync(dfd)
    finally:
        os.close(dfd)


def big(src, directory, reps):
    with open(src, "rb") as f:
        data = f.read()
    pieces = [memoryview(data)[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    rates = []
    for r in range(reps):
        target = os.path.join(directory, f"big-{r}")
        start = time.perf_counter()
        commit(pieces, target + ".staged", target, directory)
        rates.append(len(data) / (time.perf_counter() - start) / 1e6)
        os.unlink(target)
    print(f"{statistics.median(rates):,.0f}")


def small(directory, seconds, threads):
    body = [os.urandom(4096)]
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def work(t):
        while time.monotonic() < deadline:
            name = os.path.join(directory, f"t{t}-{counts[t]}")
            commit(body, name + ".staged", name, directory)
            counts[t] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    print(f"{sum(counts) / elapsed:,.0f}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "big" and len(sys.argv) == 5:
        big(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "small" and len(sys.argv) == 5:
        small(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
