#!/usr/bin/env python3
"""CPU time and peak memory of a server's process tree, from Linux /proc.

    proc.py cpu PID   prints the CPU seconds (user + system) used so far by PID,
                      all its threads and all its descendants (live ones, plus
                      reaped children through cutime/cstime)
    proc.py hwm PID   prints the largest peak RSS (VmHWM, KiB) among PID and its
                      live descendants

A server is measured as a tree because nginx (and lighttpd, if configured so)
serve from worker processes; /proc/PID/stat already sums a process's threads,
which is where edgedav and wasmtime do their work. The peak RSS is that of the
largest single process, not a sum: summing would count the pages that a master
and its workers share once per process.
"""
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """The fields after the command name, which may itself hold spaces."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read().decode("ascii", "replace")
    return text[text.rfind(")") + 2:].split()


def process_tree(root):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(stat_fields(entry)[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root):
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = stat_fields(pid)
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat(5); index 11-14 here.
        ticks += sum(int(v) for v in fields[11:15])
    return ticks / TICKS


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("cpu", "hwm"):
        sys.exit(__doc__)
    root = int(sys.argv[2])
    if not os.path.exists(f"/proc/{root}"):
        sys.exit(f"no process {root}")
    if sys.argv[1] == "cpu":
        print(f"{cpu_seconds(root):.2f}")
    else:
        print(max(vm_hwm_kib(pid) for pid in process_tree(root)))


if __name__ == "__main__":
    main()
