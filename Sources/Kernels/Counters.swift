import Synchronization

/// Floating-point operation counters of the GEMM and attention kernels, for `vidattn
/// flops` and benchmarks: off by default (one relaxed atomic add per call when on).
public enum FlopCounter {
    static let gemmCount = Atomic<Int>(0)
    static let attentionCount = Atomic<Int>(0)
    static let on = Atomic<Bool>(false)
    /// Whether the counters count (off by default; the FLOP tests turn them on).
    public static var enabled: Bool {
        get { on.load(ordering: .relaxed) }
        set { on.store(newValue, ordering: .relaxed) }
    }

    @inline(__always) static func addGemm(_ n: Int) { if enabled { gemmCount.add(n, ordering: .relaxed) } }
    @inline(__always) static func addAttention(_ n: Int) { if enabled { attentionCount.add(n, ordering: .relaxed) } }

    /// Sets every counter to zero.
    public static func reset() {
        gemmCount.store(0, ordering: .relaxed)
        attentionCount.store(0, ordering: .relaxed)
    }
    /// FLOPs (2 per multiply–add) of GEMMs since the last reset.
    public static var gemm: Int { gemmCount.load(ordering: .relaxed) }
    /// FLOPs of the fused attention's two matmuls since the last reset.
    public static var attention: Int { attentionCount.load(ordering: .relaxed) }
}
