"""bench/machine.py: the share of CPU time the hypervisor stole while a benchmark ran, read
from /proc/stat (docs/benchmarking.md)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import machine  # noqa: E402

STAT = """cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0
cpu0 1 0 1 1 0 0 0 1 0 0
intr 12345
"""


def write(path, user, system, idle, steal):
    path.write_text(STAT.format(user=user, system=system, idle=idle, steal=steal))


def test_reads_steal_and_total_of_the_aggregate_line(tmp_path):
    f = tmp_path / "stat"
    write(f, 100, 20, 800, 80)
    assert machine.cpu_times(f) == (80, 1000)


def test_meter_gives_the_stolen_share_of_the_time_in_the_block(tmp_path):
    f = tmp_path / "stat"
    write(f, 100, 20, 800, 80)
    with machine.StealMeter(f) as s:
        # 400 jiffies pass, 100 of them stolen.
        write(f, 300, 20, 900, 180)
    assert s.percent == 25.0
    assert s.text() == "steal 25%"


def test_no_steal_count_means_not_available(tmp_path):
    old = tmp_path / "old"  # a kernel without the steal field
    old.write_text("cpu  1 2 3 4 5 6 7\n")
    assert machine.cpu_times(old) is None
    with machine.StealMeter(tmp_path / "missing") as s:
        pass
    assert s.percent is None and s.text() == "steal n/a"
    assert machine.steal_percent((5, 100), (5, 100)) is None  # no time passed
    assert machine.percent_text(None) == "n/a" and machine.percent_text(12.6) == "13%"


def test_this_machine_reports_a_share_between_0_and_100():
    if not Path("/proc/stat").exists():
        raise AssertionError("the benchmarks' steal column needs /proc/stat; this suite runs on Linux")
    with machine.StealMeter() as s:
        sum(i * i for i in range(2_000_000))
    assert s.percent is None or 0.0 <= s.percent <= 100.0
    assert machine.cpu_times() is not None
