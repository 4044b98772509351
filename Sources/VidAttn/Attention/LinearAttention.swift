// Linear-cost attentions of FastTimeSformer and performer-pytorch (docs/attention.md).
import Kernels
import Synchronization

/// Which Fastformer formulation to compute.
public enum FastformerForm: Int32, Sendable {
    /// Wu et al. 2021: global key vector k̄ = Σ β_i p_i, u_i = k̄ ⊙ v_i.
    case paper = 0
    /// FastTimeSformer as implemented: a scalar κ_i = β_i⟨q̄, k_i⟩ per token, u_i = κ_i v_i.
    case implemented = 1
}

extension Ops {
    /// Performer softmax-kernel attention (performer-pytorch `FastAttention`, non-causal):
    /// φ = FAVOR+ features with Ω [m, d] and stabiliser `eps` (1e-4 there), key max per
    /// (batch, head); out = φq(φkᵀV) / (φq·Σφk). q [B, H, nq, d], k, v [B, H, nk, d].
    public static func performerAttention(
        batch B: Int, heads H: Int, nq: Int, nk: Int, d: Int,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?, v: UnsafePointer<Float>?,
        projection: UnsafePointer<Float>?, features m: Int,
        out: UnsafeMutablePointer<Float>?, eps: Float = 1e-4
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        try require(
            B >= 0 && H >= 0 && nq >= 0 && nk > 0 && d > 0 && m > 0,
            "performer attention needs nk, d, features > 0 (got nk=\(nk), d=\(d), m=\(m))")
        guard checkedProduct(B, H, max(nq, nk), max(m, d)) != nil else {
            throw VidAttnError(.invalidArgument, "performer attention sizes overflow")
        }
        if B == 0 || H == 0 || nq == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v")
        let omega = try nonNull(projection, "projection"), out = try nonNull(out, "out")
        try require(eps.isFinite && eps >= 0, "eps must be finite and non-negative")
        let per = nq * m + nk * m + max(nq, nk) * d + m * d + m + nq
        let failed = Atomic<Bool>(false)
        parallelFor(B * H) { bh, _ in
            let ok: Bool? = withScratch(per) { buf in
                let pq = buf, pk = pq + nq * m, xs = pk + nk * m, ctx = xs + max(nq, nk) * d
                let ksum = ctx + m * d, den = ksum + m
                let qh = q + bh * nq * d, kh = k + bh * nk * d, vh = v + bh * nk * d, oh = out + bh * nq * d
                guard favorFeatures(nq, d, m, omega, qh, xs, pq, isQuery: true, stabiliser: eps, keyMaxPerRow: false)
                else { return false }
                guard favorFeatures(nk, d, m, omega, kh, xs, pk, isQuery: false, stabiliser: eps, keyMaxPerRow: false)
                else { return false }
                guard
                    Kernels.sgemm(
                        transA: true, transB: false, m: m, n: d, k: nk, alpha: 1, a: pk, lda: m,
                        b: vh, ldb: d, beta: 0, c: ctx, ldc: d, threads: 1)
                else { return false }
                for j in 0..<m { ksum[j] = 0 }
                for r in 0..<nk { let row = pk + r * m; for j in 0..<m { ksum[j] += row[j] } }
                guard mm(nq, d, m, pq, m, ctx, d, oh, d) else { return false }
                guard mm(nq, 1, m, pq, m, ksum, 1, den, 1) else { return false }
                for i in 0..<nq {
                    let inv = den[i] > 0 ? 1 / den[i] : 0  // all features underflowed (eps = 0): no mass
                    for t in 0..<d { oh[i * d + t] *= inv }
                }
                return true
            }
            if ok != true { failed.store(true, ordering: .relaxed) }
        }
        if failed.load(ordering: .relaxed) {
            throw VidAttnError(.outOfMemory, "performer attention: cannot allocate scratch")
        }
    }

    /// Fastformer additive attention per head (FastTimeSformer `FastformerAttention`, docs/attention.md):
    /// α = softmax_i(s·wq·q_i), q̄ = Σ α_i q_i, p_i = q̄ ⊙ k_i, β = softmax_i(s·wk·p_i),
    /// then u_i per `form`. wq, wk: [d], shared by all heads; s = scale (default d^−½).
    /// q, k, v, out: [B, H, n, d]; out holds u (the caller applies to_out and the residual).
    public static func fastformer(
        batch B: Int, heads H: Int, n: Int, d: Int,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?, v: UnsafePointer<Float>?,
        wq: UnsafePointer<Float>?, wk: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>?, form: FastformerForm,
        scale: Float? = nil
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        try require(B >= 0 && H >= 0 && n >= 0 && d > 0, "fastformer needs d > 0 and non-negative sizes")
        guard checkedProduct(B, H, n, d) != nil else {
            throw VidAttnError(.invalidArgument, "fastformer sizes overflow")
        }
        if B == 0 || H == 0 || n == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v")
        let wq = try nonNull(wq, "wq"), wk = try nonNull(wk, "wk"), out = try nonNull(out, "out")
        let s = scale ?? 1 / Float(d).squareRoot()
        let failures = Atomic<Int>(0)
        parallelFor(B * H) { bh, _ in
            let qh = q + bh * n * d, kh = k + bh * n * d, vh = v + bh * n * d, oh = out + bh * n * d
            let done: Bool? = withScratch(n + 2 * d) { buf in
                let w = buf, qbar = buf + n, kbar = qbar + d
                // α and the global query.
                var mx = -Float.infinity
                for i in 0..<n {
                    var a: Float = 0
                    for t in 0..<d { a += wq[t] * qh[i * d + t] }
                    w[i] = s * a; mx = max(mx, w[i])
                }
                var sum: Float = 0
                for i in 0..<n { w[i] = sexp(w[i] - mx); sum += w[i] }
                for t in 0..<d { qbar[t] = 0 }
                for i in 0..<n { let a = w[i] / sum; for t in 0..<d { qbar[t] += a * qh[i * d + t] } }
                // β over p_i = q̄ ⊙ k_i.
                mx = -Float.infinity
                for i in 0..<n {
                    var a: Float = 0
                    for t in 0..<d { a += wk[t] * qbar[t] * kh[i * d + t] }
                    w[i] = s * a; mx = max(mx, w[i])
                }
                sum = 0
                for i in 0..<n { w[i] = sexp(w[i] - mx); sum += w[i] }
                switch form {
                case .paper:
                    for t in 0..<d { kbar[t] = 0 }
                    for i in 0..<n { let b = w[i] / sum; for t in 0..<d { kbar[t] += b * qbar[t] * kh[i * d + t] } }
                    for i in 0..<n { for t in 0..<d { oh[i * d + t] = kbar[t] * vh[i * d + t] } }
                case .implemented:
                    for i in 0..<n {
                        var dot: Float = 0
                        for t in 0..<d { dot += qbar[t] * kh[i * d + t] }
                        let kappa = w[i] / sum * dot
                        for t in 0..<d { oh[i * d + t] = kappa * vh[i * d + t] }
                    }
                }
                return true
            }
            if done == nil { failures.add(1, ordering: .relaxed) }
        }
        if failures.load(ordering: .relaxed) > 0 {
            throw VidAttnError(.outOfMemory, "fastformer attention: cannot allocate scratch for n=\(n)")
        }
    }
}

/// Which landmark approximation of softmax attention to compute.
public enum LandmarkKind: Int32, Sendable {
    case nystrom = 1
    case orthoformer = 2
}

extension Ops {
    /// Landmark attention over one softmax of all keys (the Motionformer helpers with a
    /// single frame): Nyström = K1·pinv₆(K2)·(K3·V) with L contiguous segment-mean
    /// landmarks; Orthoformer = K1·(K2·V) with greedy orthogonal landmarks from `start`.
    /// q, k, v, out: [B, H, N, d]. Note: lucidrains' nystrom-attention package differs
    /// (front padding, another pinv init, a conv residual); this is not that algorithm.
    public static func landmarkAttention(
        _ kind: LandmarkKind, batch B: Int, heads H: Int, n N: Int, d: Int,
        q: UnsafePointer<Float>?, k: UnsafePointer<Float>?, v: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>?, landmarks L: Int, start: Int = 0
    ) throws {
        let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
        try require(B >= 0 && H >= 0 && N > 0 && d > 0, "landmark attention needs n, d > 0")
        try require(L > 0 && L <= N, "landmark count \(L) must be in 1...\(N)")
        try require(start >= 0 && start < N, "orthoformer start \(start) outside 0..<\(N)")
        guard checkedProduct(B, H, N, max(L, d)) != nil else { throw VidAttnError(.invalidArgument, "sizes overflow") }
        if B == 0 || H == 0 { return }
        let q = try nonNull(q, "q"), k = try nonNull(k, "k"), v = try nonNull(v, "v"), out = try nonNull(out, "out")
        let approx: TrajectoryApprox =
            kind == .nystrom ? .nystrom(landmarks: L) : .orthoformer(landmarks: L, start: start)
        guard let f = SpatialFactors(B: B, H: H, F: 1, P: N, d: d, q: q, k: k, v: v, approx: approx, cls: 0) else {
            throw VidAttnError(.outOfMemory, "landmark attention: cannot allocate factors")
        }
        let failed = Atomic<Bool>(false)
        parallelFor(B * H) { bh, _ in
            if !Kernels.sgemm(
                transA: false, transB: false, m: N, n: d, k: L, alpha: 1, a: f.w + bh * N * L, lda: L,
                b: f.m + bh * L * d, ldb: d, beta: 0, c: out + bh * N * d, ldc: d, threads: 1)
            {
                failed.store(true, ordering: .relaxed)
            }
        }
        if failed.load(ordering: .relaxed) {
            throw VidAttnError(.outOfMemory, "landmark attention: cannot allocate GEMM scratch")
        }
    }
}
