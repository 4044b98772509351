"""bf16 precision (vidattn.load(path, precision="bf16")): every fixture model against its own
fp32 forward. Stated tolerances, relative to the largest magnitude of the fp32 tensor (at least
1): logits within 2e-2 (measured on AMX: 2e-4 .. 1.4e-2 absolute, the largest on the
Motionformer goldens whose random weights are scaled up), hidden states within 2e-2, and the
same top-1 class for every clip. FastTimeSformer's "performer" fixtures are excluded: in parity
mode its raw linear attention divides by sums near zero (README), so fp32 itself is only stable
to 2e-3. The bf16 unit used (AMX, AVX512-BF16, or emulated on fp32 kernels) is printed, and
`make test` runs this file once per unit the machine has (VIDATTN_MAX_ISA)."""
import os
from pathlib import Path

import numpy as np
import pytest

import vidattn

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"
def unstable(name):
    return name.startswith("fasttimesformer") and "performer" in name


NAMES = sorted(p.name for p in MODELS.iterdir() if (p / "io.npz").exists() and not unstable(p.name))


def pixel_values(name):
    z = np.load(MODELS / name / "io.npz")
    for key in ("pixel_values", "regular_pixel_values"):
        if key in z.files:
            return z[key]
    return np.random.default_rng(int(z["seed"])).standard_normal(tuple(z["shape"]), dtype=np.float32)


# Units without bf16 kernels of their own: bf16 runs on the fp32 kernels with bf16-rounded
# weights and inputs (`fma`: the CPU has AVX512-BF16 but runs it at half the FMA rate, Intel).
NO_BF16_KERNELS = ("emulated", "fma")


def test_unit_reported():
    unit = vidattn.cpu_features()["bf16"]
    print(f"bf16 unit: {unit}")
    assert unit in ("amx", "avx512_bf16", "fma", "emulated")
    # Intel cores run vdpbf16ps at half their FMA rate: there, without AMX, bf16 takes the fp32
    # FMA kernels unless VIDATTN_BF16_UNIT forces AVX512-BF16 (as `make test-isa-levels` does).
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = set(cpuinfo.split("\nflags", 1)[1].split("\n", 1)[0].split(":", 1)[1].split())
    capped = os.environ.get("VIDATTN_MAX_ISA") in ("avx2", "avx512")
    amx = {"amx_bf16", "amx_tile"} <= flags and os.environ.get("VIDATTN_MAX_ISA") in (None, "amx")
    if "avx512_bf16" in flags and not capped and not amx and "GenuineIntel" in cpuinfo:
        forced = os.environ.get("VIDATTN_BF16_UNIT") == "avx512_bf16"
        assert unit == ("avx512_bf16" if forced else "fma"), unit


@pytest.mark.parametrize("name", NAMES)
def test_bf16_close_to_fp32(name):
    px = pixel_values(name)
    with vidattn.load(MODELS / name) as m32, vidattn.load(MODELS / name, precision="bf16") as m16:
        assert m16.precision == "bf16"
        a = m32.forward(px, output_hidden_states=True)
        b = m16.forward(px, output_hidden_states=True)
    diff = np.abs(a.logits - b.logits).max()
    assert diff <= 2e-2 * max(1.0, float(np.abs(a.logits).max())), f"{name}: max |logit diff| {diff:.2e}"
    assert diff > 0, f"{name}: bf16 gave exactly the fp32 logits: the bf16 path did not run"
    assert (a.logits.argmax(-1) == b.logits.argmax(-1)).all()
    # Orthoformer picks its landmarks by a discrete argmin, which bf16 rounding can flip:
    # its hidden states are held to 5e-2.
    tol = 5e-2 if "orthoformer" in name else 2e-2
    for i, (ha, hb) in enumerate(zip(a.hidden_states, b.hidden_states)):
        scale = max(1.0, float(np.abs(ha).max()))
        assert np.abs(ha - hb).max() <= tol * scale, f"{name}: hidden state {i}"


def test_tile_probe_follows_the_unit():
    """The AMX tile probe runs exactly where bf16 runs on AMX (capped by VIDATTN_MAX_ISA too)."""
    unit = vidattn.cpu_features()["bf16"]
    one, two = vidattn.tile_peak_gflops(1), vidattn.tile_peak_gflops(2)
    print(f"bf16 unit {unit}: tile probe {one:.0f} GFLOP/s on 1 worker, {two:.0f} on 2")
    if unit == "amx":
        # A core's tile products: hundreds to thousands of GFLOP/s (fp32 FMAs: ~100-200).
        assert 100 < one < 50_000 and 100 < two < 100_000
    else:
        assert one == 0 and two == 0
    with pytest.raises(vidattn.InvalidArgument, match="threads"):
        vidattn.tile_peak_gflops(0)


def test_bad_precision():
    with pytest.raises(vidattn.InvalidArgument, match="precision"):
        vidattn.load(MODELS / "vivit", precision="fp16")


# int8 (dynamic: per-channel weights, per-token activations). Random-weight fixtures are a
# harsher test than trained models (no structure for the quantizer to keep), so the bounds
# are wider than bf16's and stated per tensor: logits within 0.08 of the largest fp32 logit
# magnitude (at least 1; measured on AMX: 9e-4 .. 4.2e-2), the top-1 class unchanged wherever fp32's margin between its first
# two classes exceeds twice the measured logit error, and the int8 path visibly taken.
# Accuracy on a trained model (the demo): tests/python/test_demo.py.
INT8_LOGIT_TOL = 0.08


def test_int8_unit_reported():
    unit = vidattn.cpu_features()["int8"]
    print(f"int8 unit: {unit}")
    assert unit in ("amx", "avx512_vnni", "emulated")


@pytest.mark.parametrize("name", NAMES)
def test_int8_close_to_fp32(name):
    px = pixel_values(name)
    with vidattn.load(MODELS / name) as m32, vidattn.load(MODELS / name, precision="int8") as m8:
        assert m8.precision == "int8"
        a = m32.forward(px).logits
        b = m8.forward(px).logits
    scale = max(1.0, float(np.abs(a).max()))
    diff = float(np.abs(a - b).max())
    print(f"{name}: int8 max |logit diff| {diff:.3e} ({diff / scale:.3e} of the largest logit)")
    assert diff <= INT8_LOGIT_TOL * scale, f"{name}: max |logit diff| {diff:.2e}"
    assert diff > 0, f"{name}: int8 gave exactly the fp32 logits: the int8 path did not run"
    top2 = np.sort(a, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 2 * diff
    assert (a.argmax(-1) == b.argmax(-1))[clear].all()


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_attention_products_in_bf16(precision):
    """Models loaded at bf16 or int8 multiply attention in bf16 on a bf16 unit for sequences of
    more than 24 queries and at least 32 keys (docs/precision.md). Asking for the attention maps
    keeps attention in fp32, so with a bf16 unit the two forwards' last hidden states differ on
    the ViViT fixture's 65- and 2049-token inputs (8 frames of 32x32, 16 of 128x128) and agree
    exactly on its 17-token input (2 frames of 32x32: the short-query path); with the unit
    emulated they agree on all three. The logits stay within the bf16 tolerance of fp32's."""
    unit = vidattn.cpu_features()["bf16"]
    rng = np.random.default_rng(7)
    with vidattn.load(MODELS / "vivit", precision=precision) as m, vidattn.load(MODELS / "vivit") as m32:
        for frames, size in ((2, 32), (8, 32), (16, 128)):
            px = rng.standard_normal((1, frames, 3, size, size), dtype=np.float32)
            out = m.forward(px)
            plain = out.logits
            mapped = m.forward(px, output_attentions=True).last_hidden_state
            diff = float(np.abs(out.last_hidden_state - mapped).max())
            if frames > 2 and unit not in NO_BF16_KERNELS:
                assert diff > 0, f"{frames}x{size}: attention did not run in bf16"
            else:
                assert diff == 0, f"{frames}x{size}: attention changed without a bf16 unit or on the short path"
            ref = m32.forward(px).logits
            tol = (2e-2 if precision == "bf16" else INT8_LOGIT_TOL) * max(1.0, float(np.abs(ref).max()))
            assert np.abs(plain - ref).max() <= tol




def _to_bf16(v):
    """float32 -> bf16 bits, round to nearest even (finite values)."""
    u = v.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def _recast_checkpoint(src, dst, half, twin):
    """Copies checkpoint directory src to dst with every float tensor rounded to `half` ("BF16" or
    "F16") and stored as that type, or (twin=True) the same rounded values stored as F32."""
    import json
    import shutil
    import struct
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    raw = (src / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out, chunks, pos = {}, [], 0
    for name, t in header.items():
        if name == "__metadata__":
            out[name] = t
            continue
        lo, hi = t["data_offsets"]
        b, kind = data[lo:hi], t["dtype"]
        if kind in ("F32", "BF16"):
            v = (np.frombuffer(b, np.float32) if kind == "F32"
                 else (np.frombuffer(b, np.uint16).astype(np.uint32) << 16).view(np.float32))
            bits = _to_bf16(v) if half == "BF16" else v.astype(np.float16)
            if twin:
                v = ((bits.astype(np.uint32) << 16).view(np.float32) if half == "BF16" else bits.astype(np.float32))
                b, kind = v.astype(np.float32).tobytes(), "F32"
            else:
                b, kind = bits.tobytes(), half
        out[name] = {"dtype": kind, "shape": t["shape"], "data_offsets": [pos, pos + len(b)]}
        chunks.append(b)
        pos += len(b)
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    (dst / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def _load_counting_allocations(path, precision):
    import ctypes
    from vidattn._lib import lib
    lib.vidattn_debug_fail_allocation.argtypes = [ctypes.c_int64]
    lib.vidattn_debug_allocation_count.restype = ctypes.c_int64
    lib.vidattn_debug_fail_allocation(1 << 40)   # armed far away: counts, never fails
    try:
        m = vidattn.load(path, precision=precision)
        count = lib.vidattn_debug_allocation_count()
    finally:
        lib.vidattn_debug_fail_allocation(-1)
    return m, count


@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.parametrize("half", ["BF16", "F16"])
@pytest.mark.parametrize("name", ["vivit_bf16", "videomae", "timesformer_pytorch_rotary", "fasttimesformer_regular_divided",
                                  "swin3d"])
def test_half_checkpoint_packed_without_fp32_copies(tmp_path, half, name, precision):
    """A BF16 or F16 checkpoint loaded at bf16 or int8 precision packs its Linear, stacked-qkv,
    GEGLU and patch-embedding weights straight from the mapped file (int8: quantized a row at a
    time): the same logits, bit for bit, as the same values stored as F32 and loaded at the same
    precision (bf16 or f16 -> fp32 is exact), with fewer counted allocations (no fp32 copy per
    weight; for ViViT at least 7 per layer: q, k, v, their stack, o, fc1, fc2; for Swin at least
    4 per block: qkv, proj, fc1, fc2). Without the unit
    both loads take the fp32 emulation; then only the logits are compared, and that is printed."""
    import json
    src = MODELS / name
    direct, twin = tmp_path / "half", tmp_path / "f32"
    _recast_checkpoint(src, direct, half, twin=False)
    _recast_checkpoint(src, twin, half, twin=True)
    px = pixel_values(name)
    m_direct, n_direct = _load_counting_allocations(direct, precision)
    m_twin, n_twin = _load_counting_allocations(twin, precision)
    with m_direct, m_twin:
        a = m_direct.forward(px).logits
        b = m_twin.forward(px).logits
    np.testing.assert_array_equal(a, b)
    unit = vidattn.cpu_features()[precision]
    print(f"{name} {half} at {precision}: {n_direct} counted allocations packing in place, {n_twin} from F32 "
          f"({precision} unit {unit})")
    if unit in NO_BF16_KERNELS:
        print(f"not run: packing in place at {precision} (no {precision} unit; both loads took the fp32 emulation)")
        return
    assert n_direct < n_twin
    if name == "vivit_bf16":
        layers = json.loads((src / "config.json").read_text())["num_hidden_layers"]
        assert n_twin - n_direct >= 7 * layers
    if name == "swin3d":
        # qkv, proj, fc1 and fc2 of every block: the window attention's Linears too (they were
        # fp32 matrices at every precision until session 7, so only fc1 and fc2 saved a copy).
        blocks = sum(json.loads((src / "config.json").read_text())["depths"])
        assert n_twin - n_direct >= 4 * blocks


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_swin_same_bits_at_any_thread_count(precision):
    """The Video Swin fixture's logits are the same bits at 1 and 2 threads, at every precision:
    with two windows per worker each window runs start to end on one thread (Window3D.swift),
    and every window has to take the caller's attention precision (it is task-local; windows on
    a worker thread once ran fp32 attention while the caller's ran bf16, which showed here
    under `make test-isa-levels`)."""
    px = pixel_values("swin3d")
    saved = vidattn.get_num_threads()
    try:
        with vidattn.load(MODELS / "swin3d", precision=precision) as m:
            vidattn.set_num_threads(1)
            one = m.forward(px).logits
            vidattn.set_num_threads(2)
            two = [m.forward(px).logits for _ in range(3)]
    finally:
        vidattn.set_num_threads(saved)
    for t in two:
        np.testing.assert_array_equal(one, t)
