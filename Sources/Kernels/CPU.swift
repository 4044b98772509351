#if canImport(Glibc)
import Glibc
#endif
import CKernels
import Dispatch

/// What this CPU and OS offer, detected once per process (CPUID, XCR0, and the AMX
/// permission from the kernel), and probes of the machine's own peak.
public enum CPU {
    /// The detected features (see ckernels.h).
    public static var info: vidattn_cpu_info { vidattn_cpu_detect().pointee }

    /// The processor's brand string, e.g. "Intel(R) Xeon(R) Processor".
    public static var brand: String {
        var i = info
        return withUnsafeBytes(of: &i.brand) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self).trimmingSpaces()
        }
    }

    /// The flags that matter to vidattn, by their /proc/cpuinfo names.
    public static var flags: [String] {
        let i = info
        let all: [(String, Int32)] = [
            ("avx2", i.avx2), ("fma", i.fma), ("f16c", i.f16c), ("avx512f", i.avx512f), ("avx512bw", i.avx512bw),
            ("avx512vl", i.avx512vl), ("avx512dq", i.avx512dq), ("avx512_bf16", i.avx512_bf16),
            ("avx512_vnni", i.avx512_vnni), ("avx_vnni", i.avx_vnni), ("amx_tile", i.amx_tile),
            ("amx_bf16", i.amx_bf16), ("amx_int8", i.amx_int8)
        ]
        return all.filter { $0.1 != 0 }.map { $0.0 }
    }

    /// Cache sizes in bytes (0 where the OS does not say).
    public static var caches: (l1d: Int, l2: Int, l3: Int) {
        let i = info
        return (Int(i.l1d), Int(i.l2), Int(i.l3))
    }

    /// fp32 FMA peak of one core in GFLOP/s, measured with independent FMA chains
    /// (AVX-512 where the CPU has it, else AVX2), best of `rounds` runs of ~50 ms.
    public static func measureFMAPeak(threads: Int = 1, rounds: Int = 5) -> Double {
        let wide = info.avx512f != 0
        var best = 0.0
        for _ in 0..<rounds {
            let iters = wide ? 2_000_000 : 4_000_000
            var flops = [Double](repeating: 0, count: threads)
            let t0 = monotonicSeconds()
            flops.withUnsafeMutableBufferPointer { f in
                nonisolated(unsafe) let fp = f.baseAddress!
                DispatchQueue.concurrentPerform(iterations: threads) { w in
                    fp[w] = wide ? vidattn_fma_probe_avx512(iters) : vidattn_fma_probe_avx2(iters)
                }
            }
            let dt = monotonicSeconds() - t0
            best = max(best, flops.reduce(0, +) / dt / 1e9)
        }
        return best
    }

    /// AMX bf16 tile-product throughput in GFLOP/s with the probe (`vidattn_amx_probe`, four
    /// independent tdpbf16ps on resident tiles) run on `threads` of the library's workers at
    /// once: the best of `rounds` runs of ~10–30 ms, as the sum over the workers and each
    /// worker's own rate in that run. Zero, and no rates, where the bf16 unit is not AMX (the CPU
    /// lacks it, the OS refused the tile state, or `VIDATTN_MAX_ISA` caps it). On the shared
    /// Sapphire Rapids VMs of BENCHMARKS.md this moved between about 800 and 2,800 GFLOP/s per
    /// core within seconds, while the fp32 FMA peak did not: AMX figures mean little without it.
    public static func measureTilePeak(threads: Int = 1, rounds: Int = 3) -> (total: Double, perWorker: [Double]) {
        guard BF16Unit.detected == .amx else { return (0, []) }
        let n = max(1, threads)
        var best: (total: Double, perWorker: [Double]) = (0, [])
        for _ in 0..<max(1, rounds) {
            var rates = [Double](repeating: 0, count: n)
            rates.withUnsafeMutableBufferPointer { r in
                let base = r.baseAddress!
                parallelFor(n, threads: n) { i, _ in
                    vidattn_amx_begin()
                    let t0 = monotonicSeconds()
                    let flops = vidattn_amx_probe(400_000)
                    base[i] = flops / (monotonicSeconds() - t0) / 1e9
                    vidattn_amx_end()
                }
            }
            let total = rates.reduce(0, +)
            if total > best.total { best = (total, rates) }
        }
        return best
    }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
