"""/proc accounting shared by the benchmark scripts (scripts/bench.sh, scripts/compare.sh).

CPU is utime+stime of whole thread groups in seconds; machine busy/idle and per-CPU counters
come from /proc/stat. Every reader tolerates processes that exit while being read.
"""
import os
import re

TICK = os.sysconf("SC_CLK_TCK")


def children_map():
    """parent pid -> [child pids], for every process."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                pp = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(pp, []).append(int(d))
            except Exception:
                pass
    return kids


def tree(pid):
    """`pid` and all its descendants, sorted."""
    kids = children_map()
    out, st = {pid}, [pid]
    while st:
        for c in kids.get(st.pop(), []):
            if c not in out:
                out.add(c)
                st.append(c)
    return sorted(out)


def cpu(pids):
    """utime + stime (whole thread group) of `pids`, in seconds."""
    t = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except Exception:
            pass
    return t / TICK


def stat():
    """Machine (busy, idle + iowait) ticks."""
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v) - v[3] - v[4], v[3] + v[4]


def percpu():
    """cpu index -> (busy ticks, total ticks)."""
    out = {}
    for line in open("/proc/stat"):
        m = re.match(r"cpu(\d+) (.*)", line)
        if m:
            v = list(map(int, m.group(2).split()))
            out[int(m.group(1))] = (sum(v) - v[3] - v[4], sum(v))
    return out


def busy_pct(a, b, cpus):
    """Busy % of `cpus` between two percpu() readings."""
    busy = sum(b[c][0] - a[c][0] for c in cpus if c in a and c in b)
    tot = sum(b[c][1] - a[c][1] for c in cpus if c in a and c in b)
    return 100 * busy / max(1, tot)


def rss_kib(pids):
    """Sum of VmRSS of `pids` (KiB)."""
    s = 0
    for p in pids:
        try:
            m = re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p}/status").read())
            s += int(m.group(1))
        except Exception:
            pass
    return s


def alive(pid):
    """The process exists and is neither a zombie nor dead."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except Exception:
        return False
