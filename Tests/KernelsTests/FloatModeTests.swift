import Dispatch
import Glibc
import XCTest
@testable import Kernels

/// Library work runs with FTZ/DAZ on every thread that does it, and each thread's own
/// MXCSR is back afterwards; exp never returns a subnormal.
final class FloatModeTests: XCTestCase {
    func testWorkersRunFlushedAndRestore() {
        let saved = FloatMode.mxcsr
        defer { FloatMode.mxcsr = saved }
        FloatMode.mxcsr = 0x1F80  // the host's default: no FTZ/DAZ
        let seen = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        defer { seen.deallocate() }
        nonisolated(unsafe) let out = seen
        parallelFor(64, threads: 2) { i, _ in out[i] = FloatMode.mxcsr }
        for i in 0..<64 {
            XCTAssertEqual(seen[i] & FloatMode.flushBits, FloatMode.flushBits, "item \(i) ran without FTZ/DAZ")
        }
        XCTAssertEqual(FloatMode.mxcsr, 0x1F80, "the caller's MXCSR changed")
        // The same pool threads, reached directly, are back in the default mode.
        DispatchQueue.concurrentPerform(iterations: 64) { i in out[i] = FloatMode.mxcsr }
        for i in 0..<64 { XCTAssertEqual(seen[i] & FloatMode.flushBits, 0, "a worker kept FTZ/DAZ after library work") }
    }

    func testExpGivesZeroNotSubnormal() {
        var x: Float = -110
        while x < -80 {
            let v = vexp(Vec(repeating: x))[0], s = sexp(x)
            for y in [v, s] {
                XCTAssertTrue(y == 0 || y >= Float.leastNormalMagnitude, "exp(\(x)) = \(y) is subnormal")
            }
            if x > -87 { XCTAssertGreaterThan(v, 0) }
            x += 0.01
        }
        // Under the caller's default mode too (no FTZ): the clamp, not the mode, gives the zero.
        XCTAssertEqual(sexp(-87.5), 0)
        XCTAssertEqual(sexp(-87.3), Float(-87.3).exp_(), accuracy: 1e-44)
    }
}

private extension Float {
    func exp_() -> Float { Float(Glibc.exp(Double(self))) }
}
