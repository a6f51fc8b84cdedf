#!/usr/bin/env python3
"""Runs a benchmark client and measures CPU over its load phase only.

    cpu-window.py --server PID --marker TEXT --out FILE.json -- COMMAND...

The window opens when the client writes a line containing TEXT to stderr (after its own
provisioning: logins hash passwords, which would otherwise be counted against every request)
and closes when the client exits. Over the window it reads, from /proc, the CPU seconds of the
server (PID), of every Postgres process, of the client itself and the machine's busy share, and
writes them to FILE.json. The client's stdout and stderr pass through unchanged.
"""

import argparse
import json
import os
import pwd
import subprocess
import sys
import threading
import time

TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """CPU seconds (user + system) of one process, or 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TCK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def postgres_cpu(uid):
    """CPU seconds of every process run by the postgres user (backends come and go; the
    sum over those alive at both ends of a short window misses little)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                owner = next(line.split()[1] for line in f if line.startswith("Uid:"))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
        if int(owner) == uid:
            total += proc_cpu(entry)
    return total


def machine():
    """(busy, total) seconds of all cores since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / TCK, sum(v) / TCK


def sample(server, client, postgres_uid):
    busy, total = machine()
    return {
        "at": time.monotonic(),
        "server": proc_cpu(server),
        "postgres": postgres_cpu(postgres_uid),
        "client": proc_cpu(client),
        "busy": busy,
        "total": total,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", type=int, required=True)
    p.add_argument("--marker", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    postgres_uid = pwd.getpwnam("postgres").pw_uid
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    opened = {}

    def relay():
        for line in child.stderr:
            if not opened and a.marker in line:
                opened.update(sample(a.server, child.pid, postgres_uid))
            sys.stderr.write(line)
            sys.stderr.flush()

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    # The client's own CPU at its end: wait4's rusage holds its lifetime total, from which the
    # share used before the window is taken away.
    _, status, usage = os.wait4(child.pid, 0)
    closed = sample(a.server, child.pid, postgres_uid)
    closed["client"] = usage.ru_utime + usage.ru_stime
    reader.join()
    code = os.waitstatus_to_exitcode(status)
    if not opened:
        print(f"cpu-window: the client never printed {a.marker!r}", file=sys.stderr)
        sys.exit(code or 1)
    window = {k: closed[k] - opened[k] for k in opened}
    with open(a.out, "w") as f:
        json.dump(
            {
                "seconds": window["at"],
                "serverCpuS": window["server"],
                "postgresCpuS": window["postgres"],
                "clientCpuS": window["client"],
                "machineBusyPct": 100 * window["busy"] / max(window["total"], 1e-9),
            },
            f,
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
