/// Validated entry points to the kernels on caller-owned buffers. These check
/// shapes, strides and pointers and throw `VidAttnError` instead of trapping;
/// the C API (`vidattn_sgemm`, `vidattn_attention`) is a thin shell over them.
public enum Ops {
    /// C = act(alpha·op(A)·op(B) + beta·C + bias) + residual, row-major.
    /// `bias` has `n` entries; `residual` is m×n with row stride `ldResidual`.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>?, lda: Int, b: UnsafePointer<Float>?, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>?, ldc: Int,
        bias: UnsafePointer<Float>? = nil, activation: Activation = .none,
        residual: UnsafePointer<Float>? = nil, ldResidual: Int = 0
    ) throws {
        try require(m >= 0 && n >= 0 && k >= 0, "sizes must be non-negative (m=\(m), n=\(n), k=\(k))")
        if m == 0 || n == 0 { return }
        let c = try nonNull(c, "c")
        try require(ldc >= n, "ldc=\(ldc) is smaller than n=\(n)")
        try require(checkedProduct(m - 1, ldc) != nil, "m·ldc overflows")
        var aPtr: UnsafePointer<Float> = UnsafePointer(c), bPtr: UnsafePointer<Float> = UnsafePointer(c)
        if k > 0 {
            aPtr = try nonNull(a, "a"); bPtr = try nonNull(b, "b")
            try require(lda >= (transA ? m : k), "lda=\(lda) is smaller than \(transA ? "m" : "k")=\(transA ? m : k)")
            try require(ldb >= (transB ? k : n), "ldb=\(ldb) is smaller than \(transB ? "k" : "n")=\(transB ? k : n)")
            try require(
                checkedProduct(max(m, k), max(lda, 1)) != nil && checkedProduct(max(n, k), max(ldb, 1)) != nil,
                "matrix extent overflows")
        }
        if residual != nil { try require(ldResidual >= n, "ldResidual=\(ldResidual) is smaller than n=\(n)") }
        let ep = GemmEpilogue(bias: bias, activation: activation, residual: residual, ldResidual: ldResidual)
        let ok = Kernels.sgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: aPtr, lda: lda,
            b: bPtr, ldb: ldb, beta: beta, c: c, ldc: ldc, epilogue: ep)
        if !ok { throw VidAttnError(.outOfMemory, "sgemm: cannot allocate the packed B buffer (\(k)×\(n))") }
    }

    /// Fused exact attention on contiguous [batch, heads, n, d] buffers.
    ///
    /// - scale: nil or 0 gives 1/√d.
    /// - bias: additive, element (b, h, i, j) at b·biasStrides.0 + h·biasStrides.1
    ///   + i·biasStrides.2 + j (zero strides broadcast); nil strides mean a
    ///   contiguous [batch, heads, nq, nk] bias.
    /// - keyMask: [batch, nk] bytes, nonzero = attend. A query whose keys are all
    ///   masked gets a zero output row (PyTorch would give NaN).
    /// - probs: optional [batch, heads, nq, nk] output of the probabilities.
    public static func attention(
        batch: Int, heads: Int, nq: Int, nk: Int, d: Int,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?, v: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>?, scale: Float? = nil,
        bias: UnsafePointer<Float>? = nil, biasStrides: (Int, Int, Int)? = nil,
        keyMask: UnsafePointer<UInt8>? = nil,
        probs: UnsafeMutablePointer<Float>? = nil
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        try require(
            batch >= 0 && heads >= 0 && nq >= 0 && nk >= 0 && d >= 0,
            "sizes must be non-negative (batch=\(batch), heads=\(heads), nq=\(nq), nk=\(nk), d=\(d))")
        try require(d > 0, "head dimension d must be positive")
        try require(nk > 0 || nq == 0, "nk must be positive when there are queries")
        guard checkedProduct(batch, heads, max(nq, nk), d) != nil, checkedProduct(batch, heads, nq, nk) != nil else {
            throw VidAttnError(.invalidArgument, "attention sizes overflow")
        }
        if batch == 0 || heads == 0 || nq == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v"), out = try nonNull(out, "out")
        let s = scale ?? 0
        try require(s.isFinite, "scale must be finite")
        let view = { (p: UnsafePointer<Float>, n: Int) in
            HeadView(p, batchStride: heads * n * d, headStride: n * d, rowStride: d)
        }
        var args = AttentionArgs(
            batch: batch, heads: heads, nq: nq, nk: nk, d: d,
            q: view(q, nq), k: view(k, nk), v: view(v, nk),
            o: HeadView(out, batchStride: heads * nq * d, headStride: nq * d, rowStride: d),
            scale: s == 0 ? 1 / Float(d).squareRoot() : s)
        if let bias {
            let st = biasStrides ?? (heads * nq * nk, nq * nk, nk)
            try require(st.0 >= 0 && st.1 >= 0 && st.2 >= 0, "bias strides must be non-negative")
            args.bias = HeadView(bias, batchStride: st.0, headStride: st.1, rowStride: st.2)
        }
        args.keyMask = keyMask
        args.keyMaskStride = nk
        args.probs = probs
        guard Kernels.attention(args) else {
            throw VidAttnError(.outOfMemory, "attention: cannot allocate scratch for nk=\(nk), d=\(d)")
        }
    }
}

extension Ops {
    /// In-place row softmax with optional bias (see `softmaxRows`).
    public static func softmax(
        rows: Int, cols: Int, x: UnsafeMutablePointer<Float>?, ld: Int, scale: Float,
        bias: UnsafePointer<Float>?, ldBias: Int
    ) throws {
        try require(rows >= 0 && cols >= 0, "sizes must be non-negative (rows=\(rows), cols=\(cols))")
        if rows == 0 || cols == 0 { return }
        let x = try nonNull(x, "x")
        try require(ld >= cols, "ld=\(ld) is smaller than cols=\(cols)")
        try require(ldBias >= 0, "ld_bias must be non-negative")
        try require(checkedProduct(rows, ld) != nil, "rows·ld overflows")
        var s = SoftmaxArgs(rows: rows, cols: cols, x: UnsafePointer(x), ldx: ld, y: x, ldy: ld)
        s.scale = scale; s.bias = bias; s.ldBias = ldBias
        softmaxRows(s)
    }

    /// LayerNorm over `rows` rows of `cols` floats (checked arguments; gamma and beta optional).
    public static func layerNorm(
        rows: Int, cols: Int, x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?,
        gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float
    ) throws {
        try require(rows >= 0 && cols >= 0, "sizes must be non-negative (rows=\(rows), cols=\(cols))")
        try require(eps >= 0 && eps.isFinite, "eps must be finite and non-negative")
        if rows == 0 || cols == 0 { return }
        let x = try nonNull(x, "x"), y = try nonNull(y, "y")
        try require(checkedProduct(rows, cols) != nil, "rows·cols overflows")
        Kernels.layerNorm(rows: rows, cols: cols, x: x, ldx: cols, y: y, ldy: cols, gamma: gamma, beta: beta, eps: eps)
    }

    /// y = act(x) over n floats, `act` a vidattn_activation value (checked arguments).
    public static func activation(_ act: Int32, x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>?, n: Int)
        throws
    {
        guard let a = Activation(rawValue: act) else {
            throw VidAttnError(.invalidArgument, "unknown activation \(act)")
        }
        try require(n >= 0, "n must be non-negative")
        if n == 0 { return }
        Kernels.activation(a, try nonNull(x, "x"), try nonNull(y, "y"), n)
    }
}
