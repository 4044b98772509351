import XCTest
@testable import Kernels

/// Deterministic float buffers for the parity tests.
final class Buf {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ count: Int, seed: UInt64 = 0, scale: Float = 1) {
        self.count = count
        p = allocFloats(max(count, 1))!
        var s = seed &+ 0x9E3779B97F4A7C15
        for i in 0..<max(count, 1) {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            p[i] = (Float(UInt32(truncatingIfNeeded: s >> 32)) / Float(UInt32.max) * 2 - 1) * scale
        }
    }
    init(copying other: Buf) {
        count = other.count
        p = allocFloats(max(count, 1))!
        p.update(from: other.p, count: max(count, 1))
    }
    deinit { freeFloats(p) }
    var c: UnsafePointer<Float> { UnsafePointer(p) }
}

/// Largest |a - b| over n floats.
func maxAbsDiff(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var m: Float = 0
    for i in 0..<n {
        let d = abs(a[i] - b[i])
        if d.isNaN { return .nan }
        m = max(m, d)
    }
    return m
}

/// Whether n floats are the same bits (NaNs included).
func sameBits(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Bool {
    for i in 0..<n where a[i].bitPattern != b[i].bitPattern { return false }
    return true
}

/// Runs body with the kernels forced to their SIMD path and restores the mode.
func withOptimised<T>(_ body: () throws -> T) rethrows -> T {
    let saved = KernelMode.useReference
    KernelMode.useReference = false
    defer { KernelMode.useReference = saved }
    return try body()
}
