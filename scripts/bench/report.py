#!/usr/bin/env python3
"""Prints the markdown table of scripts/bench.sh from its results file.

    report.py RESULTS FILES FEW BIG_MIB REPS

RESULTS holds one figure a line, `SERVER METRIC VALUE ROUND`, VALUE a number
or FAIL, ROUND the round of the run it was measured in; FILES, FEW and BIG_MIB
are the fixture's sizes (FEW: the small folder) and REPS the transfers of the
big file per figure, for the row labels. A row per figure, a column per
server that has any figure, and a last column comparing edgedav with the
best of the other servers in that row. With several rounds, each cell is
the median of the server's rounds (FAIL if any round failed), the ratio is
that of the medians, and the range of the ratios within each round follows
it: the servers of one round ran minutes apart, the rounds further apart.
"""
import statistics
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
    """{(server, metric): {round: value text}}"""
    figures = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:
                server, metric, value, round_ = parts
                figures.setdefault((server, metric), {})[round_] = value
    return figures


def median(values):
    """The median of a server's rounds as text; FAIL if any round failed."""
    if not values:
        return None
    numbers = [number(v) for v in values]
    if any(n is None for n in numbers):
        return "FAIL"
    return repr(statistics.median(numbers))


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


def best_ratio(row, servers, higher_is_better):
    """edgedav's figure over the best peer's in `row` {server: text}, and
    that peer; none when either is missing."""
    ours = number(row.get(SUBJECT))
    peers = [(number(row.get(s)), s) for s in servers if s != SUBJECT]
    peers = [(v, s) for v, s in peers if v]
    if ours is None or not peers:
        return None
    best, name = (max if higher_is_better else min)(peers)
    return ours / best, name


def ratio(row, servers, higher_is_better):
    """edgedav's figure over the best peer's, worded so the direction shows."""
    found = best_ratio(row, servers, higher_is_better)
    if found is None:
        return "—"
    r, name = found
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
    rounds = sorted({r for by_round in figures.values() for r in by_round}, key=int)
    for metric, label, unit, higher in ROWS:
        by_server = {s: figures.get((s, metric), {}) for s in servers}
        row = {s: median(list(by_server[s].values())) for s in servers}
        if all(v is None for v in row.values()):
            continue
        compared = ratio(row, servers, higher)
        per_round = [best_ratio({s: by_server[s].get(r) for s in servers}, servers, higher)
                     for r in rounds]
        per_round = [found[0] for found in per_round if found]
        if len(rounds) > 1 and per_round:
            compared += f", rounds {min(per_round):.2f}–{max(per_round):.2f}"
        print(f"| {label.format(**sizes)} | {unit} | "
              + " | ".join(cell(row[s]) for s in servers)
              + f" | {compared} |")
    print()
    print("† edgedav fsyncs every file (and its directory) when a PUT commits; "
          "lighttpd and nginx do not.")
    print("Ratios: for req/s and MB/s, edgedav's figure divided by the best peer's "
          "(above 1 is faster); for CPU, memory and start-up, how many times more "
          "(or less) edgedav uses than the most frugal peer.")
    if len(rounds) > 1:
        print(f"{len(rounds)} rounds, the servers' order rotated each round: each figure is "
              "the median of its rounds; rounds A–B: edgedav's figure ÷ the best peer's "
              "within each round, lowest and highest.")


if __name__ == "__main__":
    main()
