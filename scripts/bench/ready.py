#!/usr/bin/env python3
"""Waits for a server that is about to start to answer its first request.

    ready.py ARMED TIMEOUT_S --port PORT
    ready.py ARMED TIMEOUT_S --stdout FILE

bench.sh starts this first, waits for the file ARMED to exist, notes the time
and then starts the server, so that this script's own start-up is not counted
in the server's. It then polls every millisecond: with --port, for 127.0.0.1:PORT
to answer an HTTP request; with --stdout, for FILE to hold edgedav's
`listening on http://ADDR` line, and then for ADDR to answer. It prints the
wall-clock time of the first answer (seconds since the epoch) and the server's
URL, and exits 0; it exits 1 when TIMEOUT_S passes first.
"""
import re
import socket
import sys
import time

LISTENING = re.compile(r"listening on (http://[^\s/]+)")


def answers(host, port):
    """True once the server returns an HTTP status line to OPTIONS /."""
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"OPTIONS / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def listening_url(path):
    try:
        with open(path) as f:
            match = LISTENING.search(f.read())
    except OSError:
        return None
    return match.group(1) if match else None


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in ("--port", "--stdout"):
        sys.exit(__doc__)
    armed, timeout, how, what = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    open(armed, "w").close()
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{what}" if how == "--port" else None
    while time.monotonic() < deadline:
        if url is None:
            url = listening_url(what)
        if url is not None:
            host, port = url[len("http://"):].rsplit(":", 1)
            if answers(host, int(port)):
                print(f"{time.time():.6f} {url}")
                return
        time.sleep(0.001)
    sys.exit(1)


if __name__ == "__main__":
    main()
