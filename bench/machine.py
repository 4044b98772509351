"""What the hypervisor took from a benchmark: CPU time stolen while it ran.

On a virtual machine the host can run other guests on the cores this one believes it has;
Linux counts that time as *steal* (the eighth number of the `cpu` lines in /proc/stat). On the
shared VMs of BENCHMARKS.md two threads got 20-37 % of their time stolen while a one-thread
FMA loop ran at full speed, so a two-thread figure with much steal says more about the
neighbours than about the code. The benchmarks print the steal share of each row's timed runs
beside it (docs/benchmarking.md).

    with StealMeter() as s:
        run()
    print(s.text())   # "steal 23%", or "steal n/a" where the kernel does not report it
"""

PROC_STAT = "/proc/stat"


def cpu_times(path=PROC_STAT):
    """(steal, total) jiffies of all CPUs from a /proc/stat-format file, or None when the file
    is missing or has no steal field (not Linux, or a kernel without it)."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] == "cpu":
                    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest
                    # time is already inside user and nice, so the total stops at steal.
                    values = [int(v) for v in fields[1:9]]
                    if len(values) < 8:
                        return None
                    return values[7], sum(values)
    except (OSError, ValueError):
        return None
    return None


def steal_percent(before, after):
    """Share of all CPU time between two `cpu_times` readings that was stolen, in per cent
    (None when either reading is missing or no time passed)."""
    if before is None or after is None:
        return None
    total = after[1] - before[1]
    if total <= 0:
        return None
    return 100.0 * (after[0] - before[0]) / total


def percent_text(p):
    """A steal share for a table cell: `23%`, or `n/a` when there is none."""
    return "n/a" if p is None else f"{p:.0f}%"


class StealMeter:
    """Context manager: the steal share of the CPU time that passed inside the block."""

    def __init__(self, path=PROC_STAT):
        self.path = path
        self.before = self.after = None

    def __enter__(self):
        self.before = cpu_times(self.path)
        return self

    def __exit__(self, *exc):
        self.after = cpu_times(self.path)
        return False

    @property
    def percent(self):
        """Per cent of CPU time stolen inside the block, or None."""
        return steal_percent(self.before, self.after)

    def text(self):
        """`steal 23%`, or `steal n/a` where the kernel does not count it."""
        return "steal " + percent_text(self.percent)
