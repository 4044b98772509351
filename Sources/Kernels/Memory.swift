#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Allocation-failure injection for tests: after `failAfter(n)`, the n-th following
/// call of `allocFloats` (0-based) returns nil once, as if memory were exhausted.
/// Every allocation of the library goes through `allocFloats`, so sweeping n over a
/// whole load + forward reaches every out-of-memory path. Disarmed, the cost is one
/// relaxed atomic load per allocation.
public enum AllocationFaults {
    static let armed = Atomic<Bool>(false)
    static let remaining = Atomic<Int>(0)
    static let seen = Atomic<Int>(0)

    /// Arms the injection (n >= 0) or disarms it (n < 0); resets the allocation count.
    public static func failAfter(_ n: Int) {
        seen.store(0, ordering: .relaxed)
        remaining.store(n, ordering: .relaxed)
        armed.store(n >= 0, ordering: .sequentiallyConsistent)
    }
    /// Allocations requested since the last `failAfter`, while armed.
    public static var count: Int { seen.load(ordering: .relaxed) }

    /// Buffers from `allocFloats` / `allocCounted` not freed yet (always counted): a test that
    /// frees everything it made (models, outputs, cached scratch) can check that nothing leaked,
    /// also on the paths where an allocation failed.
    public static var live: Int { liveCount.load(ordering: .relaxed) }
    static let liveCount = Atomic<Int>(0)

    @inline(__always) static func shouldFail() -> Bool {
        guard armed.load(ordering: .relaxed) else { return false }
        seen.add(1, ordering: .relaxed)
        if remaining.subtract(1, ordering: .relaxed).newValue == -1 {
            armed.store(false, ordering: .relaxed)
            return true
        }
        return false
    }
}

/// 64-byte aligned float buffers. Returns nil instead of trapping when memory
/// is exhausted, so callers can report an out-of-memory status.
public func allocFloats(_ count: Int) -> UnsafeMutablePointer<Float>? {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
    if overflow || AllocationFaults.shouldFail() { return nil }
    var raw: UnsafeMutableRawPointer? = nil
    if posix_memalign(&raw, 64, bytes) != 0 { return nil }
    AllocationFaults.liveCount.add(1, ordering: .relaxed)
    return raw?.bindMemory(to: Float.self, capacity: max(count, 1))
}

/// Frees memory from allocFloats (nil is ignored).
public func freeFloats(_ p: UnsafeMutablePointer<Float>?) {
    guard let p else { return }
    AllocationFaults.liveCount.subtract(1, ordering: .relaxed)
    free(p)
}

/// `count` values of a trivial type (indices, labels) from the same counted allocator, nil
/// when it fails (so allocation-failure injection reaches them too); free with `freeCounted`.
public func allocCounted<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T>? {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
    if overflow { return nil }
    guard let p = allocFloats((bytes + 3) / 4) else { return nil }
    return UnsafeMutableRawPointer(p).bindMemory(to: T.self, capacity: max(count, 1))
}

/// Frees a buffer from `allocCounted`.
public func freeCounted<T>(_ p: UnsafeMutablePointer<T>?) {
    freeFloats(p.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) })
}

/// A small cache of large scratch buffers, so that repeated calls do not pay
/// for fresh pages (a 10 MB buffer from mmap costs ~2500 page faults per call).
/// At most `maxBuffers` buffers and `maxBytes` bytes are kept.
public final class ScratchPool: @unchecked Sendable {
    /// The process-wide pool.
    public static let shared = ScratchPool()

    private var lock = pthread_mutex_t()
    private var free_: [(p: UnsafeMutablePointer<Float>, count: Int)] = []
    private let maxBuffers = 6
    private let maxBytes = 512 << 20

    init() { pthread_mutex_init(&lock, nil) }

    /// A buffer of at least `count` floats (contents undefined), or nil if out of memory.
    public func take(_ count: Int) -> (p: UnsafeMutablePointer<Float>, count: Int)? {
        pthread_mutex_lock(&lock)
        var best = -1
        for (i, b) in free_.enumerated() where b.count >= count && b.count <= 2 * count + 4096 {
            if best < 0 || b.count < free_[best].count { best = i }
        }
        if best >= 0 {
            let b = free_.remove(at: best)
            pthread_mutex_unlock(&lock)
            return b
        }
        pthread_mutex_unlock(&lock)
        guard let p = allocFloats(count) else { return nil }
        return (p, count)
    }

    /// Buffers of at least `counts[i]` floats, or nil (with none kept) if any of them
    /// cannot be had.
    public func take(_ counts: Int...) -> [(p: UnsafeMutablePointer<Float>, count: Int)]? {
        var got: [(p: UnsafeMutablePointer<Float>, count: Int)] = []
        for c in counts {
            guard let b = take(c) else { got.forEach(give); return nil }
            got.append(b)
        }
        return got
    }

    /// Returns a buffer from `take`; the pool keeps it for reuse within its limits, else frees it.
    public func give(_ b: (p: UnsafeMutablePointer<Float>, count: Int)) {
        pthread_mutex_lock(&lock)
        free_.append(b)
        free_.sort { $0.count > $1.count }
        var total = free_.reduce(0) { $0 + $1.count * 4 }
        while free_.count > maxBuffers || total > maxBytes {
            let x = free_.removeLast()  // drop the smallest first
            total -= x.count * 4
            freeFloats(x.p)
        }
        pthread_mutex_unlock(&lock)
    }

    /// Returns every cached buffer to the system.
    public func trim() {
        pthread_mutex_lock(&lock)
        for b in free_ { freeFloats(b.p) }
        free_.removeAll()
        pthread_mutex_unlock(&lock)
    }
}

/// Runs body with a scratch buffer of `count` floats from the shared pool;
/// returns nil (without running body) if the memory cannot be had.
@inline(__always)
public func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R? {
    guard let b = ScratchPool.shared.take(max(count, 1)) else { return nil }
    defer { ScratchPool.shared.give(b) }
    return body(b.p)
}
