#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Thread count used by every multithreaded kernel.
///
/// Defaults to `VIDATTN_NUM_THREADS` when set, otherwise to the number of online
/// cores. Changing it between calls is allowed; a call in flight keeps the count
/// it started with.
public enum Threads {
    // Atomic: another thread may change the setting while forwards run (relaxed is
    // enough, each call reads it once per kernel).
    private static let _count = Atomic<Int>(defaultCount())

    /// Worker threads of each compute call (at least 1).
    public static var count: Int {
        get { _count.load(ordering: .relaxed) }
        set { _count.store(max(1, min(newValue, 1024)), ordering: .relaxed) }
    }

    /// VIDATTN_NUM_THREADS when set to a positive integer, else the CPUs this process may run on.
    public static func defaultCount() -> Int {
        if let s = getenv("VIDATTN_NUM_THREADS"), let n = Int(String(cString: s)), n > 0 {
            return min(n, 1024)
        }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}

/// What a worker runs its share of a parallel call under: flush-to-zero (`FloatMode`, its own
/// MXCSR restored after) and the caller's task-local attention precision, which does not follow
/// work onto Dispatch's threads by itself (Swin's windows, run one per worker, once took fp32
/// attention there while the caller's took bf16).
@inline(__always)
func workerScope(_ bf16Attention: Bool, _ body: () -> Void) {
    AttentionPrecision.$bf16.withValue(bf16Attention) { FloatMode.withFlushToZero(body) }
}

/// Runs `body(i)` for `i` in `0..<n` on up to `threads` workers.
///
/// Every worker runs with flush-to-zero set and the caller's attention precision (`workerScope`).
///
/// Work is split statically into contiguous ranges, one per worker, so callers
/// should make items coarse (waking a Dispatch worker costs 10–20 µs here).
/// `body` receives the item index and the worker index (for per-worker scratch).
@inline(__always)
public func parallelFor(_ n: Int, threads: Int = Threads.count, _ body: (_ item: Int, _ worker: Int) -> Void) {
    if n <= 0 { return }
    let workers = min(max(threads, 1), n)
    if workers == 1 {
        FloatMode.withFlushToZero { for i in 0..<n { body(i, 0) } }
        return
    }
    let attention = AttentionPrecision.bf16
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * n / workers, hi = (w + 1) * n / workers
            workerScope(attention) { for i in lo..<hi { body(i, w) } }
        }
    }
}

/// Runs `body(lo, hi, worker)` once per worker over contiguous ranges of `0..<n`.
@inline(__always)
public func parallelRanges(
    _ n: Int, threads: Int = Threads.count, _ body: (_ lo: Int, _ hi: Int, _ worker: Int) -> Void
) {
    if n <= 0 { return }
    let workers = min(max(threads, 1), n)
    if workers == 1 { FloatMode.withFlushToZero { body(0, n, 0) }; return }
    let attention = AttentionPrecision.bf16
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            workerScope(attention) { body(w * n / workers, (w + 1) * n / workers, w) }
        }
    }
}

/// Runs `body(item, worker)` for every item of `0..<n`; up to `threads` workers take the
/// next item from a shared counter, so a worker on a slower core simply takes fewer
/// (these VMs are noisy: static halves wait for the slower one). Items should be coarse.
@inline(__always)
public func parallelDynamic(_ n: Int, threads: Int = Threads.count, _ body: (_ item: Int, _ worker: Int) -> Void) {
    if n <= 0 { return }
    let workers = min(max(threads, 1), n)
    if workers == 1 {
        FloatMode.withFlushToZero { for i in 0..<n { body(i, 0) } }
        return
    }
    let next = Atomic<Int>(0), attention = AttentionPrecision.bf16
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            workerScope(attention) {
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= n { break }
                    body(i, w)
                }
            }
        }
    }
}
