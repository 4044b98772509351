import XCTest
@testable import Kernels

/// Each compilation of the hot loops this CPU can run, called directly through its table
/// (whatever VIDATTN_MAX_ISA selects), against the scalar references. Compilations the CPU
/// cannot run are reported by name as not run.
final class DispatchTests: XCTestCase {
    func testSelectionFollowsCPUAndCap() {
        let cap = ProcessInfo.processInfo.environment["VIDATTN_MAX_ISA"]
        if cap == "avx2" || !FP32Kernels.avx512Usable {
            XCTAssertEqual(FP32Kernels.isa, FP32Kernels.baselineISA)
        } else {
            XCTAssertEqual(FP32Kernels.isa, "avx512")
        }
        let names = FP32Kernels.runnable.map(\.isa)
        print(
            "fp32 kernel compilations run here: \(names.joined(separator: ", "))"
                + (FP32Kernels.avx512Usable ? "" : "; not run (CPU lacks AVX-512): avx512"))
    }

    func testEveryRunnableTableMatchesReferences() {
        for t in FP32Kernels.runnable {
            // Micro-kernel, packed A (aStep 12) and wider k-major A (aStep 20), beta 0 / 1 / other,
            // with and without the bias row.
            for (kc, aStep, beta, withBias) in [
                (1, 12, Float(0), false), (37, 12, 1, true), (300, 20, 0.5, false),
                (5, 12, 0, true)
            ] {
                let a = Buf(kc * aStep, seed: 11), b = Buf(kc * 40, seed: 12), c0 = Buf(12 * 35, seed: 13)
                let c = Buf(copying: c0), bias = Buf(32, seed: 17)
                t.microKernel(kc, a.c, aStep, b.c, 40, c.p, 35, 0.75, beta, withBias ? bias.c : nil)
                var err: Float = 0
                for r in 0..<12 {
                    for j in 0..<32 {
                        var s: Float = 0
                        for k in 0..<kc { s += a.p[k * aStep + r] * b.p[k * 40 + j] }
                        let want = 0.75 * s + beta * c0.p[r * 35 + j] + (withBias ? bias.p[j] : 0)
                        err = max(err, abs(c.p[r * 35 + j] - want))
                    }
                    for j in 32..<35 { XCTAssertEqual(c.p[r * 35 + j], c0.p[r * 35 + j], "\(t.isa): past the tile") }
                }
                XCTAssertLessThanOrEqual(err, 2e-6 * Float(kc + 1), "\(t.isa) micro-kernel kc=\(kc)")
            }
            // Softmax, LayerNorm and GELU rows.
            let rows = 5, cols = 77
            let x = Buf(rows * cols, seed: 14, scale: 8), y = Buf(rows * cols), yr = Buf(rows * cols)
            let sm = SoftmaxArgs(rows: rows, cols: cols, x: x.c, ldx: cols, y: y.p, ldy: cols)
            t.softmaxRows(sm, 0, rows)
            softmaxRowsReference(SoftmaxArgs(rows: rows, cols: cols, x: x.c, ldx: cols, y: yr.p, ldy: cols))
            XCTAssertLessThanOrEqual(maxAbsDiff(y.c, yr.c, rows * cols), 1e-6, "\(t.isa) softmax")
            let g = Buf(cols, seed: 15), be = Buf(cols, seed: 16)
            t.layerNormRows(
                LayerNormArgs(
                    cols: cols, x: x.c, ldx: cols, y: y.p, ldy: cols, gamma: g.c, beta: be.c,
                    eps: 1e-5), 0, rows)
            layerNormReference(
                rows: rows, cols: cols, x: x.c, ldx: cols, y: yr.p, ldy: cols, gamma: g.c, beta: be.c, eps: 1e-5)
            XCTAssertLessThanOrEqual(maxAbsDiff(y.c, yr.c, rows * cols), 1e-5, "\(t.isa) layernorm")
            t.activation(.gelu, x.c, y.p, rows * cols)
            activationReference(.gelu, x.c, yr.p, rows * cols)
            XCTAssertLessThanOrEqual(maxAbsDiff(y.c, yr.c, rows * cols), 2e-6, "\(t.isa) gelu")
        }
    }
}
