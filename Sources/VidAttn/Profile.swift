// A wall-time profile of forward passes by kind of work (`vidattn bench --profile`).
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where a forward spends its time. Sections nest; only the outermost section of the
/// profiling thread records, so the totals add up to at most the wall time and the rest
/// (patch embedding, token gathers, residual adds, heads) is "other". Work done inside
/// a section by worker threads counts towards that section.
public enum Profile {
    /// What a profiled forward's time is split into.
    public enum Section: Int, CaseIterable, Sendable {
        case linear, attention, norm
        /// The section's name in profile reports.
        public var name: String { ["linear", "attention", "norm"][rawValue] }
    }

    /// The profiling thread (0: off), the nesting depth and the totals in ns.
    static let thread = Atomic<UInt>(0)
    nonisolated(unsafe) static var depth = 0
    nonisolated(unsafe) static var totals = [UInt64](repeating: 0, count: Section.allCases.count)

    /// Profiles the calling thread's sections from now on, from zero.
    public static func start() {
        depth = 0
        totals = [UInt64](repeating: 0, count: Section.allCases.count)
        thread.store(UInt(pthread_self()), ordering: .sequentiallyConsistent)
    }

    /// Stops profiling; seconds per section since `start`.
    public static func stop() -> [Section: Double] {
        thread.store(0, ordering: .sequentiallyConsistent)
        var r: [Section: Double] = [:]
        for s in Section.allCases { r[s] = Double(totals[s.rawValue]) / 1e9 }
        return r
    }

    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Opens a section: `let p = Profile.begin(.linear); defer { Profile.end(p, .linear) }`.
    /// Returns 0 (and costs one atomic load) unless this thread is profiling.
    @inline(__always) static func begin(_ s: Section) -> UInt64 {
        let t = thread.load(ordering: .relaxed)
        guard t != 0, t == UInt(pthread_self()) else { return 0 }
        depth += 1
        return depth == 1 ? nanoseconds() : 0
    }

    @inline(__always) static func end(_ started: UInt64, _ s: Section) {
        let t = thread.load(ordering: .relaxed)
        guard t != 0, t == UInt(pthread_self()) else { return }
        if started != 0 { totals[s.rawValue] &+= nanoseconds() &- started }
        depth = max(depth - 1, 0)
    }
}
