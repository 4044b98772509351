// Token shift of lucidrains' TimeSformer-pytorch (`shift_tokens`): a third of the channels
// of each patch token come from the next frame, a third from the previous one.
import Kernels

extension Ops {
    /// Token shift on x [B, 1+F·P, C] → y (docs/models.md, timesformer_pytorch): channel chunk 0
    /// (⌊C/3⌋ wide) takes frame t+1, chunk 2 frame t−1 (zeros past the ends), the rest and CLS
    /// are copied. x and y must not alias.
    public static func tokenShift(
        batch B: Int, frames F: Int, patches P: Int, channels C: Int,
        x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?
    ) throws {
        try require(B >= 0 && F > 0 && P > 0 && C > 0, "token shift needs positive frames, patches, channels")
        if B == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        let T = 1 + F * P, ch = C / 3
        for b in 0..<B {
            (y + b * T * C).update(from: x + b * T * C, count: C)
            for f in 0..<F {
                for p in 0..<P {
                    let dst = y + (b * T + 1 + f * P + p) * C
                    let at = { (ff: Int) in x + (b * T + 1 + ff * P + p) * C }
                    dst.update(from: at(f), count: C)
                    if ch > 0 {
                        if f + 1 < F {
                            dst.update(from: at(f + 1), count: ch)
                        } else {
                            dst.update(repeating: 0, count: ch)
                        }
                        if f > 0 {
                            (dst + 2 * ch).update(from: at(f - 1) + 2 * ch, count: ch)
                        } else {
                            (dst + 2 * ch).update(repeating: 0, count: ch)
                        }
                    }
                }
            }
        }
    }
}
