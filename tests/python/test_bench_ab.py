"""bench/ab.py: two builds of the library loaded side by side in one process, alternating
(docs/benchmarking.md). Here both sides are the same build, so every output must agree bit
for bit and each side must keep its own state."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import ab  # noqa: E402
import vidattn  # noqa: E402
from vidattn._lib import lib  # noqa: E402


def test_two_copies_load_as_two_images_with_their_own_state(tmp_path):
    before = vidattn.get_num_threads()
    copies = []
    for tag in ("a", "b"):
        dst = tmp_path / f"libvidattn-{tag}.so"
        shutil.copyfile(lib._name, dst)
        copies.append(dst)
    pa, pb = (ab.load_package(p) for p in copies)
    assert pa is not pb and pa is not vidattn
    assert {Path(pa._lib.lib._name), Path(pb._lib.lib._name)} == set(copies)
    assert len({pa._lib.lib._handle, pb._lib.lib._handle, lib._handle}) == 3
    pa.set_num_threads(1)
    pb.set_num_threads(2)
    assert (pa.get_num_threads(), pb.get_num_threads(), vidattn.get_num_threads()) == (1, 2, before)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((50, 40), dtype=np.float32)
    w = rng.standard_normal((70, 40), dtype=np.float32)
    ca, cb = pa.kernels.sgemm(a, w, trans_b=True), pb.kernels.sgemm(a, w, trans_b=True)
    assert np.array_equal(ca, cb)
    np.testing.assert_allclose(ca, a @ w.T, rtol=1e-4, atol=1e-4)
    # The caller's package is untouched.
    assert sys.modules["vidattn"] is vidattn


def test_ab_reports_each_workload_and_same_bits_for_one_build():
    fixture = ROOT / "tests" / "fixtures" / "models" / "motionformer_divided"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), "--base", lib._name, "--new", lib._name, "--rounds", "2",
         "--threads", "1", "--model", str(fixture), "--frames", "8", "--size", "32",
         "--attention", "1,2,50,16", "--gemm", "64x96x128"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if "new/base per round" in line]
    assert len(rows) == 3, r.stdout
    assert all(row.endswith("same bits") for row in rows), r.stdout
    assert all("; steal " in row for row in rows), r.stdout  # the hypervisor's share (bench/machine.py)
    assert rows[0].startswith("motionformer_divided fp32 [1, 8, 3, 32, 32]")


def test_ab_refuses_a_run_without_workload():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "ab.py"), "--base", lib._name],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "name a workload" in r.stderr


def test_ab_sets_an_environment_variable_for_one_side_only():
    # VIDATTN_REFERENCE=1 on the new side only: its SGEMM is the scalar reference (other bits,
    # within rounding of the optimised one), the base side's stays optimised.
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), "--base", lib._name, "--new", lib._name, "--rounds", "2",
         "--threads", "1", "--gemm", "64x96x128", "--new-env", "VIDATTN_REFERENCE=1"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("new: ") and line.endswith("VIDATTN_REFERENCE=1") for line in lines), r.stdout
    assert any(line.startswith("base: ") and "VIDATTN_REFERENCE" not in line for line in lines), r.stdout
    row = next(line for line in lines if line.startswith("sgemm 64x96->128"))
    assert "same bits" not in row, row
    diff = float(row.rsplit(" ", 1)[1])
    assert 0 < diff < 1e-4, row
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "ab.py"), "--base", lib._name, "--gemm", "8x8x8",
                        "--new-env", "VIDATTN_REFERENCE"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "takes VAR=VALUE" in r.stderr


def test_ab_applies_a_side_variable_read_once_at_first_use():
    # VIDATTN_MAX_ISA fixes the int8 unit the first time the CPU's features are asked for. With
    # the same cap on both sides both must run the same unit, bit for bit; ab.py once asked the
    # new side for its CPU features before applying its variables, so that side kept AMX or VNNI
    # (TimeSformer-B int8 logits 7e-2 apart, session 21). On an AVX2-only CPU both sides agree
    # either way.
    fixture = ROOT / "tests" / "fixtures" / "models" / "motionformer_divided"
    cap = ["VIDATTN_MAX_ISA=avx2"]
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ab.py"), "--base", lib._name, "--new", lib._name, "--rounds", "1",
         "--threads", "1", "--model", str(fixture), "--frames", "8", "--size", "32", "--precision", "int8",
         "--base-env", *cap, "--new-env", *cap],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(line for line in r.stdout.splitlines() if "new/base per round" in line)
    assert row.startswith("motionformer_divided int8") and row.endswith("same bits"), r.stdout
