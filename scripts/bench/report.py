#!/usr/bin/env python3
"""Prints the markdown table of scripts/bench.sh from its results file.

    report.py RESULTS FILES FEW BIG_MIB REPS

RESULTS holds one figure a line, `SERVER METRIC VALUE`, VALUE a number or FAIL;
FILES, FEW and BIG_MIB are the fixture's sizes (FEW: the small folder) and
REPS the transfers of the big file per figure, for the row labels. A row per
figure, a column per server that has any figure, and a last column comparing
edgedav with the best of the other servers in that row.
"""
import sys

# (metric, label, unit, higher_is_better); {files}, {big}, {reps}: see above.
ROWS = [
    ("get_4k_rps", "GET 4 KiB (32 conns)", "req/s", True),
    ("get_4k_cpu_us", "server CPU per GET 4 KiB", "µs", False),
    ("get_1m_mbps", "GET 1 MiB (32 conns)", "MB/s", True),
    ("get_big_mbps", "GET {big} MiB (1 conn, median of {reps})", "MB/s", True),
    ("propfind_allprop_rps", "PROPFIND Depth 1, {files} files, allprop (empty body)", "req/s", True),
    ("propfind_named_rps", "PROPFIND Depth 1, {files} files, 5 named props", "req/s", True),
    ("propfind_allprop_cpu_us", "server CPU per PROPFIND allprop", "µs", False),
    ("propfind_named_cpu_us", "server CPU per PROPFIND, 5 named props", "µs", False),
    ("propfind_few_rps", "PROPFIND Depth 1, {few} files, 5 named props", "req/s", True),
    ("propfind_few_cpu_us", "server CPU per PROPFIND of {few} files", "µs", False),
    ("put_4k_rps", "PUT 4 KiB, new file each (32 conns) †", "req/s", True),
    ("put_big_mbps", "PUT {big} MiB (1 conn, median of {reps}) †", "MB/s", True),
    ("peak_rss_mib", "peak RSS over the run (VmHWM, largest process)", "MiB", False),
    ("startup_ms", "start-up to first answered request", "ms", False),
    ("hello_rps", "hello-world floor: wasi:http `ok` (32 conns)", "req/s", True),
    ("hello_cpu_us", "hello-world floor: server CPU per request", "µs", False),
]
ORDER = ["lighttpd", "nginx", "edgedav", "wasmtime"]
TITLES = {"wasmtime": "wasmtime serve"}
SUBJECT = "edgedav"


def load(path):
    figures = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                figures[(parts[0], parts[1])] = parts[2]
    return figures


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def cell(text):
    if text is None:
        return "—"
    value = number(text)
    if value is None:
        return f"**{text}**"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def ratio(row, servers, higher_is_better):
    """edgedav's figure over the best peer's, worded so the direction shows."""
    ours = number(row.get(SUBJECT))
    peers = [(number(row.get(s)), s) for s in servers if s != SUBJECT]
    peers = [(v, s) for v, s in peers if v]
    if ours is None or not peers:
        return "—"
    best, name = (max if higher_is_better else min)(peers)
    r = ours / best
    title = TITLES.get(name, name)
    if higher_is_better:
        times = f"{r:.2g}×" if r < 1 else f"{r:.2f}×"
        return f"{times} {title}" + (f" ({1 / r:.2g}× slower)" if r < 1 else "")
    if r >= 1:
        return f"{r:.1f}× more than {title}"
    return f"{1 / r:.1f}× less than {title}"


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    figures = load(sys.argv[1])
    sizes = {"files": f"{int(sys.argv[2]):,}", "few": sys.argv[3], "big": sys.argv[4],
             "reps": sys.argv[5]}
    present = {server for server, _ in figures}
    servers = [s for s in ORDER if s in present] + sorted(present - set(ORDER))
    print("| figure | unit | " + " | ".join(TITLES.get(s, s) for s in servers)
          + " | edgedav ÷ best peer |")
    print("|---|---|" + "---:|" * len(servers) + "---|")
    for metric, label, unit, higher in ROWS:
        row = {s: figures.get((s, metric)) for s in servers}
        if all(v is None for v in row.values()):
            continue
        print(f"| {label.format(**sizes)} | {unit} | "
              + " | ".join(cell(row[s]) for s in servers)
              + f" | {ratio(row, servers, higher)} |")
    print()
    print("† edgedav fsyncs every file (and its directory) when a PUT commits; "
          "lighttpd and nginx do not.")
    print("Ratios: for req/s and MB/s, edgedav's figure divided by the best peer's "
          "(above 1 is faster); for CPU, memory and start-up, how many times more "
          "(or less) edgedav uses than the most frugal peer.")


if __name__ == "__main__":
    main()
