import VidAttn
import CKernels
#if canImport(Glibc)
import Glibc
#endif

// vidattn-demo: times the core kernels and prints GFLOP/s.
// Usage: vidattn-demo [--threads N] [--reps N]

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// printf-style formatting without Foundation.
func fmt(_ f: String, _ args: CVarArg...) -> String {
    var buf = [CChar](repeating: 0, count: 512)
    _ = withVaList(args) { vsnprintf(&buf, buf.count, f, $0) }
    return String(cString: buf)
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

func fillRandom(_ p: UnsafeMutablePointer<Float>, _ n: Int, seed: UInt64) {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    for i in 0..<n {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        p[i] = Float(Int32(truncatingIfNeeded: s >> 33)) / Float(1 << 31) * 2
    }
}

var reps = 5
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--threads": if let v = args.next(), let n = Int(v) { Threads.count = n }
    case "--reps": if let v = args.next(), let n = Int(v) { reps = max(1, n) }
    default: print("usage: vidattn-demo [--threads N] [--reps N]"); exit(2)
    }
}

print("vidattn \(Version.string) — kernel demo, \(Threads.count) thread(s), median of \(reps) runs")
// The machine first: results from different CPUs compare only as a percentage of their own peak.
let peak1 = CPU.measureFMAPeak(threads: 1)
let peakAll = CPU.measureFMAPeak(threads: Threads.count)
print("cpu: \(CPU.brand); flags: \(CPU.flags.joined(separator: " "))")
print(fmt("fp32 FMA peak: %.1f GFLOP/s per core, %.1f GFLOP/s on %d thread(s)", peak1, peakAll, Threads.count))
func pct(_ gflops: Double) -> String { fmt("%.0f%% of peak", 100 * gflops / peakAll) }

func timeIt(_ body: () -> Void) -> Double {
    body()  // warm-up
    var ts: [Double] = []
    for _ in 0..<reps { let t0 = now(); body(); ts.append(now() - t0) }
    return median(ts)
}

if let kcs = getenv("VIDATTN_DEMO_MK") {
    // Micro-kernel alone: A and B panels of kc steps, reused from cache.
    let kc = Int(String(cString: kcs)) ?? 256
    let a = allocFloats(MR * kc)!, b = allocFloats(NR * kc)!, c = allocFloats(MR * NR * 8)!
    fillRandom(a, MR * kc, seed: 1); fillRandom(b, NR * kc, seed: 2)
    let mk = FP32Kernels.selected.microKernel
    print("fp32 kernels: \(FP32Kernels.isa)")
    for _ in 0..<5 {
        let calls = 200_000_000 / kc
        let t0 = now()
        for i in 0..<calls { mk(kc, a, MR, b, NR, c + (i & 7) * MR * NR, NR, 1, 0, nil) }
        let dt = now() - t0
        print(
            fmt(
                "micro-kernel kc=%d: %.1f GFLOP/s (%.0f%% of peak)", kc, 2.0 * Double(MR * NR * kc * calls) / dt / 1e9,
                100 * 2.0 * Double(MR * NR * kc * calls) / dt / 1e9 / peak1))
    }
    exit(0)
}

if let cfgs = getenv("VIDATTN_DEMO_AB") {
    // Blocking A/B: "kc:mc,kc:mc,..." alternated round by round on the same data.
    let configs = String(cString: cfgs).split(separator: ",").map { c -> GemmBlocking in
        let p = c.split(separator: ":").map { Int($0)! }
        return GemmBlocking(kcMax: p[0], mcMax: p[1])
    }
    for (m, k, n) in demoShapes(default: [(3137, 768, 2304), (1569, 3072, 768), (6272, 192, 768), (392, 768, 2304)]) {
        let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
        fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
        let packs = configs.map { cfg -> PackedB in
            GemmBlocking.current = cfg
            return PackedB(transposed: true, k: k, n: n, b: w, ldb: k)!
        }
        var ts = [[Double]](repeating: [], count: configs.count)
        for _ in 0..<reps {
            for (i, cfg) in configs.enumerated() {
                GemmBlocking.current = cfg
                let t0 = now()
                _ = sgemm(transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: packs[i], beta: 0, c: c, ldc: n)
                ts[i].append(now() - t0)
            }
        }
        let base = median(ts[0])
        print(
            "\(m)x\(k)->\(n):",
            configs.indices.map {
                fmt(
                    "%d:%d %.2fms %.0fGF/s (%.2fx)", configs[$0].kcMax, configs[$0].mcMax, median(ts[$0]) * 1e3,
                    2e-9 * Double(m * k * n) / median(ts[$0]), base / median(ts[$0]))
            }.joined(separator: "  "))
    }
    exit(0)
}

if getenv("VIDATTN_DEMO_SPLIT") != nil {
    // Where a per-call GEMM's time goes: packing B vs the prepacked product.
    for (m, k, n) in [(3137, 768, 2304), (1569, 3072, 768), (6272, 192, 768), (392, 768, 2304)] {
        let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
        fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
        var tp: [Double] = [], tg: [Double] = [], tf: [Double] = []
        for _ in 0..<reps {
            var t0 = now()
            let packed = PackedB(transposed: true, k: k, n: n, b: w, ldb: k, scratch: true)!
            tp.append(now() - t0)
            t0 = now()
            _ = sgemm(transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: packed, beta: 0, c: c, ldc: n)
            tg.append(now() - t0)
            t0 = now()
            _ = sgemm(
                transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: w, ldb: k, beta: 0, c: c,
                ldc: n)
            tf.append(now() - t0)
        }
        let gf = 2.0 * Double(m * n * k) / 1e9
        print(
            fmt(
                "%dx%d->%d: pack %.2f ms, prepacked gemm %.2f ms (%.0f%% peak), per-call %.2f ms (%.0f%%)", m, k, n,
                median(tp) * 1e3, median(tg) * 1e3, 100 * gf / median(tg) / peakAll, median(tf) * 1e3,
                100 * gf / median(tf) / peakAll))
    }
    exit(0)
}

/// Self-attention of `heads` heads over `tokens` random tokens of `dim` (buffers kept for the
/// process's lifetime).
func randomAttention(heads h: Int, tokens n: Int, dim d: Int) -> AttentionArgs {
    let q = allocFloats(h * n * d)!, k = allocFloats(h * n * d)!, v = allocFloats(h * n * d)!,
        o = allocFloats(h * n * d)!
    fillRandom(q, h * n * d, seed: 3); fillRandom(k, h * n * d, seed: 4); fillRandom(v, h * n * d, seed: 5)
    let view = { (p: UnsafeMutablePointer<Float>) in
        HeadView(UnsafePointer(p), batchStride: h * n * d, headStride: n * d, rowStride: d)
    }
    return AttentionArgs(
        batch: 1, heads: h, nq: n, nk: n, d: d, q: view(q), k: view(k), v: view(v),
        o: HeadView(o, batchStride: h * n * d, headStride: n * d, rowStride: d),
        scale: 1 / Float(d).squareRoot())
}

if getenv("VIDATTN_DEMO_ACT") != nil {
    // Activations over fc1's output of TimeSformer-B (1569 × 3072), one thread.
    let n = 1569 * 3072
    let x = allocFloats(n)!, y = allocFloats(n)!
    fillRandom(x, n, seed: 9)
    for i in 0..<n { x[i] *= 4 }
    for act in [Activation.gelu, .geluTanh, .none] {
        var ts: [Double] = []
        for _ in 0..<reps { let t0 = now(); activation(act, x, y, n); ts.append(now() - t0) }
        print("\(act): " + fmt("%.2f ms, %.2f ns/value", median(ts) * 1e3, median(ts) * 1e9 / Double(n)))
    }
    exit(0)
}

if getenv("VIDATTN_DEMO_CHAIN") != nil {
    // A bf16 MLP (M×C → 4C, GELU, → C, added to x) through an fp32 hidden tensor and through
    // bf16 strips (fc1 writing fc2's A), alternating call by call; VIDATTN_DEMO_SHAPES gives M×C×4C.
    for (m, c, h) in demoShapes(default: [(1576, 768, 3072), (3137, 768, 3072), (25088, 96, 384)]) {
        let a = allocFloats(m * c)!, w1 = allocFloats(h * c)!, w2 = allocFloats(c * h)!, b1 = allocFloats(h)!
        let hidden = allocFloats(m * h)!, x = allocFloats(m * c)!
        fillRandom(a, m * c, seed: 1); fillRandom(w1, h * c, seed: 2); fillRandom(w2, c * h, seed: 3)
        fillRandom(b1, h, seed: 4); fillRandom(x, m * c, seed: 5)
        let p1 = PackedBF16B(weight: w1, n: h, k: c, ldw: c)!, p2 = PackedBF16B(weight: w2, n: c, k: h, ldw: h)!
        let strips = allocCounted(UInt16.self, bf16StripsCount(rows: m, k: h))!  // 64-byte aligned, as the library's
        let e1 = GemmEpilogue(bias: b1, activation: .gelu)
        var tf: [Double] = [], ts: [Double] = []
        for _ in 0..<(3 * reps) {
            var t0 = now()
            _ = gemmBF16(m: m, a: a, lda: c, packedB: p1, accumulate: false, c: hidden, ldc: h, epilogue: e1)
            _ = gemmBF16(m: m, a: hidden, lda: h, packedB: p2, accumulate: true, c: x, ldc: c)
            tf.append(now() - t0)
            t0 = now()
            _ = gemmBF16(m: m, a: a, lda: c, packedB: p1, epilogue: e1, intoStrips: strips)
            _ = gemmBF16(m: m, strips: strips, packedB: p2, accumulate: true, c: x, ldc: c)
            ts.append(now() - t0)
        }
        print(
            fmt(
                "bf16 MLP %dx%d->%d->%d: fp32 hidden %.2f ms, bf16 strips %.2f ms, strips/hidden per pair %.2f",
                m, c, h, c, median(tf) * 1e3, median(ts) * 1e3, median(zip(tf, ts).map { $1 / $0 })))
    }
    exit(0)
}

if getenv("VIDATTN_DEMO_COLD") != nil {
    // bf16 GEMM 1568×768→2304 with one weight (hot in cache) and cycling through 40 weights
    // (140 MB of bf16 panels, more than L3: each call streams its weight from memory).
    let m = 1568, k = 768, n = 2304
    let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
    fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
    let ws = (0..<40).map { _ in PackedBF16B(weight: w, n: n, k: k, ldw: k)! }
    var hot: [Double] = [], cold: [Double] = []
    for r in 0..<(4 * reps) {
        var t0 = now(); _ = gemmBF16(m: m, a: a, lda: k, packedB: ws[0], accumulate: false, c: c, ldc: n);
        hot.append(now() - t0)
        t0 = now(); _ = gemmBF16(m: m, a: a, lda: k, packedB: ws[1 + r % 39], accumulate: false, c: c, ldc: n);
        cold.append(now() - t0)
    }
    let gf = 2.0 * Double(m * n * k) / 1e9
    print(
        fmt(
            "bf16 %dx%d->%d: hot weight %.2f ms (%.0f GF/s), cold weight %.2f ms (%.0f GF/s)", m, k, n,
            median(hot) * 1e3, gf / median(hot), median(cold) * 1e3, gf / median(cold)))
    exit(0)
}

if getenv("VIDATTN_DEMO_ATTN") != nil {
    // Exact attention [12, 3137, 64] with fp32 and with bf16 products, alternating (the bf16
    // path only from VIDATTN_BF16_ATTENTION_MIN_KEYS keys on).
    let spec = String(cString: getenv("VIDATTN_DEMO_ATTN")).split(separator: "x").compactMap { Int($0) }
    let h = spec.count == 3 ? spec[0] : 12, n = spec.count == 3 ? spec[1] : 3137, d = spec.count == 3 ? spec[2] : 64
    let args = randomAttention(heads: h, tokens: n, dim: d)
    var t32: [Double] = [], t16: [Double] = []
    for _ in 0..<reps {
        var t0 = now(); attention(args); t32.append(now() - t0)
        t0 = now(); AttentionPrecision.$bf16.withValue(true) { _ = attention(args) }; t16.append(now() - t0)
    }
    let gf: Double = 4.0 * Double(h * n) * Double(n * d) / 1e9
    print(
        fmt(
            "attention [%d, %d, %d]: fp32 %.1f ms (%.0f GF/s), bf16 products %.1f ms (%.0f GF/s, best %.0f), bf16/fp32 per pair %.2f",
            h, n, d, median(t32) * 1e3, gf / median(t32), median(t16) * 1e3, gf / median(t16), gf / t16.min()!,
            median(zip(t32, t16).map { $1 / $0 })))
    exit(0)
}

/// GEMM shapes M×K→N from VIDATTN_DEMO_SHAPES ("MxKxN;MxKxN…"), else `default`.
func demoShapes(default shapes: [(Int, Int, Int)]) -> [(Int, Int, Int)] {
    guard let env = getenv("VIDATTN_DEMO_SHAPES").map({ String(cString: $0) }) else { return shapes }
    return env.split(separator: ";").map { $0.split(separator: "x").map { Int($0)! } }.map { ($0[0], $0[1], $0[2]) }
}

if getenv("VIDATTN_DEMO_FP32") != nil {
    // fp32 SGEMM: pre-packed weight without and with a bias epilogue, and packing the weight per
    // call (what a caller of vidattn_sgemm_fused pays), same shapes, alternating.
    for (m, k, n) in demoShapes(default: [
        (1576, 768, 2304), (1576, 768, 768), (1569, 768, 3072), (1569, 3072, 768), (6272, 192, 768)
    ]) {
        let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!, bias = allocFloats(n)!
        fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2); fillRandom(bias, n, seed: 3)
        let p32 = PackedB(transposed: true, k: k, n: n, b: w, ldb: k)!
        var tPlain: [Double] = [], tBias: [Double] = [], tCall: [Double] = []
        let epi = GemmEpilogue(bias: UnsafePointer(bias))
        for _ in 0..<reps {
            var t0 = now()
            _ = sgemm(transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: p32, beta: 0, c: c, ldc: n)
            tPlain.append(now() - t0)
            t0 = now()
            _ = sgemm(
                transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: p32, beta: 0, c: c, ldc: n, epilogue: epi)
            tBias.append(now() - t0)
            t0 = now()
            _ = sgemm(
                transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: w, ldb: k, beta: 0,
                c: c, ldc: n, epilogue: epi)
            tCall.append(now() - t0)
        }
        let gf = 2.0 * Double(m * n * k) / 1e9
        print(
            fmt(
                "%dx%d->%d fp32 GF/s (median, best): packed %.0f %.0f, packed+bias %.0f %.0f, per-call packing %.0f %.0f",
                m, k, n, gf / median(tPlain), gf / tPlain.min()!, gf / median(tBias), gf / tBias.min()!,
                gf / median(tCall), gf / tCall.min()!))
    }
    exit(0)
}

/// The AMX bf16 tile peak of all workers together (each runs the probe at once), FLOP/s; NaN
/// without AMX.
func tilePeakAllThreads() -> Double {
    let p = CPU.measureTilePeak(threads: Threads.count, rounds: 1).total
    return p > 0 ? p * 1e9 : .nan
}

if getenv("VIDATTN_DEMO_BF16") != nil {
    // bf16 and int8 GEMMs (packed weights, activations rounded / quantized per call) against
    // fp32, same shapes, alternating.
    for (m, k, n) in demoShapes(default: [
        (1576, 768, 2304), (1569, 768, 3072), (1569, 3072, 768), (3137, 768, 2304), (6272, 192, 768)
    ]) {
        let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
        fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
        let p32 = PackedB(transposed: true, k: k, n: n, b: w, ldb: k)!
        let p16 = PackedBF16B(weight: w, n: n, k: k, ldw: k)!
        let p8 = PackedInt8B(weight: w, n: n, k: k, ldw: k)!
        // bf16 only: settings alternated call by call, each against the tile peak measured right
        // before it on every worker. VIDATTN_DEMO_KC: K chunk sizes; VIDATTN_DEMO_STREAM: the output
        // stored from the tiles into C, then through streaming stores.
        var variants: [(label: String, set: () -> Void)] = []
        if let kcs = getenv("VIDATTN_DEMO_KC").map({ String(cString: $0).split(separator: ",").compactMap { Int($0) } })
        {
            variants = kcs.map { kc in ("kc \(kc)", { ReducedBlocking.kcOverride = kc }) }
        } else if getenv("VIDATTN_DEMO_STREAM") != nil {
            variants = [
                ("tiles stored into C", { ReducedBlocking.streamingStoresMinBytes = .max }),
                ("streaming stores", { ReducedBlocking.streamingStoresMinBytes = 0 })
            ]
        }
        if !variants.isEmpty {
            let (kcOverride, minBytes) = (ReducedBlocking.kcOverride, ReducedBlocking.streamingStoresMinBytes)
            var eff = [[Double]](repeating: [], count: variants.count)
            for _ in 0..<reps {
                for (i, v) in variants.enumerated() {
                    let peak = tilePeakAllThreads()
                    v.set()
                    let t0 = now()
                    _ = gemmBF16(m: m, a: a, lda: k, packedB: p16, accumulate: false, c: c, ldc: n)
                    eff[i].append(2.0 * Double(m * n * k) / (now() - t0) / peak)
                }
            }
            (ReducedBlocking.kcOverride, ReducedBlocking.streamingStoresMinBytes) = (kcOverride, minBytes)
            print(
                "\(m)x\(k)->\(n) bf16, % of the tile peak (median): "
                    + zip(variants, eff).map { "\($0.label): " + fmt("%.0f%%", 100 * median($1)) }.joined(
                        separator: ", "))
            continue
        }
        if let kcs = getenv("VIDATTN_DEMO_INT8_KC").map({
            String(cString: $0).split(separator: ",").compactMap { Int($0) }
        }), !kcs.isEmpty {
            // int8: K chunk sizes alternated call by call (0: the default from the L1 size);
            // medians and each one's time per pair against the first.
            let saved = ReducedBlocking.kcOverride
            var ts = [[Double]](repeating: [], count: kcs.count)
            for _ in 0..<reps {
                for (i, kc) in kcs.enumerated() {
                    ReducedBlocking.kcOverride = kc > 0 ? kc : nil
                    let t0 = now()
                    _ = gemmInt8(m: m, a: a, lda: k, packedB: p8, accumulate: false, c: c, ldc: n)
                    ts[i].append(now() - t0)
                }
            }
            ReducedBlocking.kcOverride = saved
            let gf = 2.0 * Double(m * n * k) / 1e9
            print(
                "\(m)x\(k)->\(n) int8 GOP/s (median; time per pair / first): "
                    + kcs.indices.map { i in
                        fmt(
                            "kc %d: %.0f (%.3f)", kcs[i], gf / median(ts[i]),
                            median(zip(ts[i], ts[0]).map { $0 / $1 }))
                    }.joined(separator: ", "))
            continue
        }
        var t32: [Double] = [], t16: [Double] = [], t8: [Double] = [], e16: [Double] = []
        for _ in 0..<reps {
            let peak = tilePeakAllThreads()
            var t0 = now()
            _ = sgemm(transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: p32, beta: 0, c: c, ldc: n)
            t32.append(now() - t0)
            t0 = now()
            _ = gemmBF16(m: m, a: a, lda: k, packedB: p16, accumulate: false, c: c, ldc: n)
            t16.append(now() - t0)
            e16.append(2.0 * Double(m * n * k) / t16.last! / peak)
            t0 = now()
            _ = gemmInt8(m: m, a: a, lda: k, packedB: p8, accumulate: false, c: c, ldc: n)
            t8.append(now() - t0)
        }
        let gf = 2.0 * Double(m * n * k) / 1e9
        // Medians, and the best run (AMX throughput on shared VMs is bimodal: the best run is
        // the undisturbed one).
        print(
            fmt(
                "%dx%d->%d: fp32 %.1f ms (%.0f GF/s, best %.0f), bf16 %.1f ms (%.0f GF/s, best %.0f; %.0f%% of the tile peak measured before each call), int8 %.1f ms (%.0f GOP/s, best %.0f)",
                m, k, n, median(t32) * 1e3, gf / median(t32), gf / t32.min()!, median(t16) * 1e3, gf / median(t16),
                gf / t16.min()!, 100 * median(e16), median(t8) * 1e3, gf / median(t8), gf / t8.min()!))
    }
    exit(0)
}

if let kps = getenv("VIDATTN_DEMO_AMX") {
    // bf16 block kernel alone: the tile peak, then 32×32 blocks with A and B reused from cache.
    let kp = Int(String(cString: kps)) ?? 768
    vidattn_amx_begin()
    for _ in 0..<3 {
        let t0 = now(); let f = vidattn_amx_probe(2_000_000); let dt = now() - t0
        print(fmt("AMX tile peak: %.0f GFLOP/s", f / dt / 1e9))
    }
    let strips = 8
    let a = allocCounted(UInt16.self, 32 * kp * strips)!  // 64-byte aligned tile rows
    a.initialize(repeating: 0x3F80, count: 32 * kp * strips)
    let b = allocCounted(UInt16.self, 32 * kp)!; b.initialize(repeating: 0x3F80, count: 32 * kp)
    let c = allocFloats(32 * 32)!
    for _ in 0..<3 {
        let calls = 400_000_000 / kp
        let t0 = now()
        for i in 0..<calls { vidattn_amx_bf16_32x32(kp, a + (i % strips) * 32 * kp, b, c, 32, 0, nil) }
        let dt = now() - t0
        print(
            fmt(
                "AMX 32x32 block kernel, kp=%d, %d A strips: %.0f GFLOP/s", kp, strips,
                2.0 * 32 * 32 * Double(kp) * Double(calls) / dt / 1e9))
    }
    vidattn_amx_end()
    exit(0)
}

if let kps = getenv("VIDATTN_DEMO_AMX8") {
    // int8 block kernel alone: the tile peak, then 32×32 blocks with A and B reused from cache.
    let kp = Int(String(cString: kps)) ?? 768
    vidattn_amx_begin()
    for _ in 0..<3 {
        let t0 = now(); let f = vidattn_amx_int8_probe(2_000_000); let dt = now() - t0
        print(fmt("AMX-INT8 tile peak: %.0f GOP/s", f / dt / 1e9))
    }
    let strips = 8
    let a = allocCounted(Int8.self, 32 * kp * strips)!  // 64-byte aligned tile rows
    a.initialize(repeating: 1, count: 32 * kp * strips)
    let b = allocCounted(Int8.self, 32 * kp)!; b.initialize(repeating: 1, count: 32 * kp)
    let c = allocCounted(Int32.self, 32 * 32)!
    for _ in 0..<3 {
        let calls = 800_000_000 / kp
        let t0 = now()
        for i in 0..<calls { vidattn_amx_s8_32x32(kp, a + (i % strips) * 32 * kp, b, c, 32, 0) }
        let dt = now() - t0
        print(
            fmt(
                "AMX-INT8 32x32 block kernel, kp=%d, %d A strips: %.0f GOP/s", kp, strips,
                2.0 * 32 * 32 * Double(kp) * Double(calls) / dt / 1e9))
    }
    vidattn_amx_end()
    exit(0)
}

if getenv("VIDATTN_DEMO_PROBE") != nil {
    // Threading probe: per-worker start/end offsets of a partitioned GEMM.
    let m = 3136, k = 768, n = 3072
    let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
    fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
    let packed = PackedB(transposed: true, k: k, n: n, b: w, ldb: k)!
    for _ in 0..<8 {
        var marks = [Double](repeating: 0, count: 4)
        let t0 = now()
        marks.withUnsafeMutableBufferPointer { mk in
            let mp = mk.baseAddress!
            parallelFor(2) { i, _ in
                mp[2 * i] = now() - t0
                _ = sgemm(
                    transA: false, m: m / 2, k: k, alpha: 1, a: a + i * (m / 2) * k, lda: k, packedB: packed,
                    beta: 0, c: c + i * (m / 2) * n, ldc: n, threads: 1)
                mp[2 * i + 1] = now() - t0
            }
        }
        print(marks.map { Int($0 * 1e4) })
    }
    exit(0)
}

// GEMM: the ViT-B MLP up-projection on 3136 tokens, weights [out, in] as in PyTorch.
do {
    let m = 3136, k = 768, n = 3072
    let a = allocFloats(m * k)!, w = allocFloats(n * k)!, c = allocFloats(m * n)!
    fillRandom(a, m * k, seed: 1); fillRandom(w, n * k, seed: 2)
    let packed = PackedB(transposed: true, k: k, n: n, b: w, ldb: k)!
    // Interleaved so that both see the same machine noise.
    var t1s: [Double] = [], t2s: [Double] = []
    for r in 0...reps {
        var t0 = now()
        _ = sgemm(transA: false, m: m, k: k, alpha: 1, a: a, lda: k, packedB: packed, beta: 0, c: c, ldc: n)
        if r > 0 { t1s.append(now() - t0) }
        t0 = now()
        _ = sgemm(
            transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: w, ldb: k, beta: 0, c: c, ldc: n)
        if r > 0 { t2s.append(now() - t0) }
    }
    let t = median(t1s), t2 = median(t2s)
    if getenv("VIDATTN_DEMO_VERBOSE") != nil {
        print("prepacked:", t1s.map { Int($0 * 1e4) }, "\nper call:", t2s.map { Int($0 * 1e4) })
    }
    let gf = 2.0 * Double(m * n * k) / 1e9
    print(
        fmt("sgemm %dx%dx%d  pre-packed: %7.2f ms  %6.1f GFLOP/s", m, k, n, t * 1e3, gf / t)
            + " (\(pct(gf / t)))" + fmt("   packing per call: %7.2f ms  %6.1f GFLOP/s", t2 * 1e3, gf / t2))
}

// Fused attention: ViT-B at 3137 tokens, 12 heads × 64.
do {
    let h = 12, n = 3137, d = 64
    let args = randomAttention(heads: h, tokens: n, dim: d)
    let t = timeIt { attention(args) }
    let gf: Double = 4.0 * Double(h * n) * Double(n * d) / 1e9
    print(fmt("attention [%d, %d, %d]: %7.2f ms  %6.1f GFLOP/s", h, n, d, t * 1e3, gf / t))
}
