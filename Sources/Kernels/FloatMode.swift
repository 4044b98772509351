import CKernels

/// The floating-point mode of library work.
///
/// Subnormal numbers cost a microcode assist per instruction on Intel cores (exp of
/// scores masked with −100 gives them), so every kernel runs with flush-to-zero and
/// denormals-are-zero set. MXCSR is per thread: each thread that does library work
/// (the caller's and the workers) sets both bits on entry and restores its own
/// previous value on exit, so the host never sees a changed mode.
public enum FloatMode {
    /// The MXCSR bits set during library work.
    public static let flushBits: UInt32 = VIDATTN_MXCSR_FTZ | VIDATTN_MXCSR_DAZ
    /// The whole mode of library work: every exception masked (0x1F80), round to nearest
    /// even, FTZ and DAZ; the same results whatever rounding mode the host chose.
    public static let libraryMode: UInt32 = 0x1F80 | flushBits

    /// Runs `body` in `libraryMode` on this thread, then restores the previous MXCSR
    /// (the host's exception flags included: it sees none that library work raised).
    @inline(__always)
    public static func withFlushToZero<R>(_ body: () throws -> R) rethrows -> R {
        let saved = vidattn_mxcsr_get()
        vidattn_mxcsr_set(libraryMode)
        defer { vidattn_mxcsr_set(saved) }
        return try body()
    }

    /// The calling thread's MXCSR (for tests).
    public static var mxcsr: UInt32 {
        get { vidattn_mxcsr_get() }
        set { vidattn_mxcsr_set(newValue) }
    }
}
