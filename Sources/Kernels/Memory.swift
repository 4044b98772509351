#if canImport(Glibc)
import Glibc
#endif

/// 64-byte aligned float buffers. Returns nil instead of trapping when memory
/// is exhausted, so callers can report an out-of-memory status.
public func allocFloats(_ count: Int) -> UnsafeMutablePointer<Float>? {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
    if overflow { return nil }
    var raw: UnsafeMutableRawPointer? = nil
    if posix_memalign(&raw, 64, bytes) != 0 { return nil }
    return raw?.bindMemory(to: Float.self, capacity: max(count, 1))
}

public func freeFloats(_ p: UnsafeMutablePointer<Float>?) { free(p) }
