import Synchronization

/// Floating-point operation counters of the GEMM and attention kernels, for `vidattn
/// flops` and benchmarks: off by default (one relaxed atomic add per call when on).
public enum FlopCounter {
    static let gemmCount = Atomic<Int>(0)
    static let gemmFP32Count = Atomic<Int>(0)
    static let attentionCount = Atomic<Int>(0)
    static let on = Atomic<Bool>(false)
    /// Whether the counters count (off by default; the FLOP tests turn them on).
    public static var enabled: Bool {
        get { on.load(ordering: .relaxed) }
        set { on.store(newValue, ordering: .relaxed) }
    }

    /// Counts a GEMM of n FLOPs; `fp32`: it ran on the fp32 kernels (also counted apart).
    @inline(__always) static func addGemm(_ n: Int, fp32: Bool = false) {
        guard enabled else { return }
        gemmCount.add(n, ordering: .relaxed)
        if fp32 { gemmFP32Count.add(n, ordering: .relaxed) }
    }
    @inline(__always) static func addAttention(_ n: Int) { if enabled { attentionCount.add(n, ordering: .relaxed) } }

    /// Sets every counter to zero.
    public static func reset() {
        gemmCount.store(0, ordering: .relaxed)
        gemmFP32Count.store(0, ordering: .relaxed)
        attentionCount.store(0, ordering: .relaxed)
    }
    /// FLOPs (2 per multiply–add) of GEMMs since the last reset.
    public static var gemm: Int { gemmCount.load(ordering: .relaxed) }
    /// The part of `gemm` that ran on the fp32 kernels (SGEMM, also the emulation of bf16 and int8
    /// on a CPU without the unit): what a bf16 or int8 model leaves at fp32.
    public static var gemmFP32: Int { gemmFP32Count.load(ordering: .relaxed) }
    /// FLOPs of the fused attention's two matmuls since the last reset.
    public static var attention: Int { attentionCount.load(ordering: .relaxed) }
}
