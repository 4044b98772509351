// Blocks shared by the model files: the pre-LayerNorm transformer layer and the loop over
// layers (abort check and hidden-state capture), so a model file reads as its architecture.
import Kernels

/// The pre-LayerNorm layer of ViT-style models (ViViT, VideoMAE, HF TimeSformer's joint and
/// space-only layers): `x += o(attention(qkv(ln1 x)))`, then `x += fc2(act(fc1(ln2 x)))`.
struct PreLNBlock: Sendable {
    let ln1: LayerNorm, qkv: Linear, o: Linear, ln2: LayerNorm, fc1: Linear, fc2: Linear

    /// One layer on x [seqs·n, C] in place: joint attention within each of `seqs` sequences of n
    /// tokens. Scratch: y [seqs·n, max(3C, fc1 width)], a [seqs·n, C]. probs: [seqs, heads, n, n] or nil.
    func run(
        _ x: UnsafeMutablePointer<Float>, seqs: Int, n: Int, heads: Int, act: Activation,
        y: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>,
        probs: UnsafeMutablePointer<Float>? = nil
    ) throws {
        let rows = seqs * n
        ln1(x, rows: rows, into: a)
        try qkv(a, rows: rows, into: y)
        try selfAttention(qkv: y, seqs: seqs, n: n, channels: o.outFeatures, heads: heads, out: a, probs: probs)
        try o(a, rows: rows, into: x, accumulate: true)
        try mlp(x, rows: rows, act: act, y: y, a: a)
    }

    /// The feed-forward half alone: `x += fc2(act(fc1(ln2 x)))`.
    func mlp(
        _ x: UnsafeMutablePointer<Float>, rows: Int, act: Activation,
        y: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>
    ) throws {
        try residualMLP(x, rows: rows, norm: ln2, fc1: fc1, fc2: fc2, act: act, normed: a, hidden: y)
    }
}

/// The pre-norm feed-forward step every family shares: `x += fc2(act(fc1(norm x)))` on x [rows, C],
/// with scratch `normed` [rows, C] and `hidden` [rows, fc1 width].
func residualMLP(
    _ x: UnsafeMutablePointer<Float>, rows: Int, norm: LayerNorm, fc1: Linear, fc2: Linear, act: Activation,
    normed: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>
) throws {
    norm(x, rows: rows, into: normed)
    if try fc1.chain(normed, rows: rows, activation: act, then: fc2, accumulatingInto: x) { return }
    try fc1(normed, rows: rows, into: hidden, activation: act)
    try fc2(hidden, rows: rows, into: x, accumulate: true)
}

/// Runs `body` for each layer over the residual stream `x`: checks the progress callback
/// before each layer (stopping with `.aborted`), and with `outputHiddenStates` appends a copy of
/// x before the first layer and after each one to `hidden`.
func runLayers<Layer>(
    _ layers: [Layer], over x: Tensor, options: ForwardOptions, hidden: inout [Tensor],
    _ body: (Int, Layer) throws -> Void
) throws {
    if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
    for (l, layer) in layers.enumerated() {
        try checkContinue(options, l, layers.count)
        try body(l, layer)
        if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
    }
}

/// Throws `.aborted` when the progress callback asks to stop before layer `l` of `total`.
func checkContinue(_ options: ForwardOptions, _ l: Int, _ total: Int) throws {
    if let go = options.shouldContinue, !go(l, total) {
        throw VidAttnError(.aborted, "forward stopped by the callback before layer \(l)")
    }
}

/// Pre-LN layers over x [seqs, n, C] with the shared loop; with `outputAttentions` each layer's
/// probabilities [seqs, heads, n, n] are appended to `attentions`.
func runPreLNLayers(
    _ blocks: [PreLNBlock], over x: Tensor, seqs: Int, n: Int, heads: Int, act: Activation,
    y: Tensor, a: Tensor, options: ForwardOptions, hidden: inout [Tensor],
    attentions: inout [Tensor]
) throws {
    var atts: [Tensor] = []
    try runLayers(blocks, over: x, options: options, hidden: &hidden) { _, blk in
        let probs = options.outputAttentions ? try Tensor(shape: [seqs, heads, n, n]) : nil
        try blk.run(x.data, seqs: seqs, n: n, heads: heads, act: act, y: y.data, a: a.data, probs: probs?.data)
        if let probs { atts.append(probs) }
    }
    attentions += atts
}

// MARK: - Building blocks

/// Splits a fused projection qkv [seqs·n, 3·heads·d] (row: q heads | k heads | v heads) into
/// q, k and v [seqs, heads, n, d].
func splitHeads(
    _ qkv: UnsafePointer<Float>, seqs: Int, n: Int, heads: Int, d: Int,
    q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
) {
    let inner = heads * d
    parallelFor(seqs * heads) { sh, _ in
        let s = sh / heads, h = sh % heads
        for t in 0..<n {
            let src = qkv + (s * n + t) * 3 * inner + h * d, off = (sh * n + t) * d
            (q + off).update(from: src, count: d)
            (k + off).update(from: src + inner, count: d)
            (v + off).update(from: src + 2 * inner, count: d)
        }
    }
}

/// Merges per-head outputs o [seqs, heads, n, d] into rows [seqs·n, heads·d].
func mergeHeads(_ o: UnsafePointer<Float>, seqs: Int, n: Int, heads: Int, d: Int, into y: UnsafeMutablePointer<Float>) {
    let inner = heads * d
    parallelFor(seqs * n) { st, _ in
        let s = st / n, t = st % n
        for h in 0..<heads { (y + st * inner + h * d).update(from: o + ((s * heads + h) * n + t) * d, count: d) }
    }
}

/// Checks that pixel_values carries the `model` channel count.
func checkChannels(_ got: Int, _ model: Int) throws {
    try require(got == model, "pixel_values has \(got) channels, the model takes \(model)", status: .shapeMismatch)
}

/// Checks pixel_values [B, T, Cin, H, W] against a tubelet embedding of `channels` inputs and
/// returns the number of tubelets per clip (trailing remainders are dropped, as a strided Conv3d does).
func tubeletCount(
    frames T: Int, channels Cin: Int, height H: Int, width W: Int, modelChannels: Int, tubelet: (Int, Int, Int)
) throws -> Int {
    let (kt, kh, kw) = tubelet
    try checkChannels(Cin, modelChannels)
    try require(
        T >= kt && H >= kh && W >= kw,
        "input \(T)×\(H)×\(W) is smaller than one tubelet \(kt)×\(kh)×\(kw)", status: .shapeMismatch)
    return (T / kt) * (H / kh) * (W / kw)
}

/// Where token n of a sequence comes from: row `patch` of the batch element's patch embeddings,
/// plus up to two position rows (added in this order).
struct TokenSource {
    var patch: Int
    var pos: UnsafePointer<Float>?
    var pos2: UnsafePointer<Float>? = nil
}

/// Assembles x [B, 1 + N, C]: row 0 of each batch element is `cls` (+ `clsPos`), row 1 + n is
/// emb[b·N + source(n).patch] + source(n).pos (+ source(n).pos2). emb is [B·N, C].
func embedTokens(
    into x: UnsafeMutablePointer<Float>, batch B: Int, tokens N: Int, channels C: Int,
    cls: UnsafePointer<Float>, clsPos: UnsafePointer<Float>?, emb: UnsafePointer<Float>,
    source: (Int) -> TokenSource
) {
    for b in 0..<B {
        let row0 = x + b * (1 + N) * C
        row0.update(from: cls, count: C)
        if let clsPos { addInPlace(row0, clsPos, C) }
        for n in 0..<N {
            let s = source(n), dst = row0 + (1 + n) * C
            dst.update(from: emb + (b * N + s.patch) * C, count: C)
            if let p = s.pos { addInPlace(dst, p, C) }
            if let p = s.pos2 { addInPlace(dst, p, C) }
        }
    }
}

/// Non-overlapping patches (a Conv3d with kernel = stride) as GEMM rows:
/// pixels [B, T, C, H, W] → rows (b, t', i, j) of C·kt·kh·kw values ordered (c, dt, dy, dx),
/// the layout of a PyTorch Conv3d weight [out, C, kt, kh, kw]. Trailing remainders dropped.
func patchify(
    _ px: UnsafePointer<Float>, B: Int, T: Int, C: Int, H: Int, W: Int,
    kt: Int, kh: Int, kw: Int, into dst: UnsafeMutablePointer<Float>
) {
    let Tp = T / kt, h = H / kh, w = W / kw, K = C * kt * kh * kw
    parallelFor(B * Tp) { bt, _ in
        let b = bt / Tp, tp = bt % Tp
        for i in 0..<h {
            for j in 0..<w {
                var o = dst + ((bt * h + i) * w + j) * K
                for c in 0..<C {
                    for dt in 0..<kt {
                        for dy in 0..<kh {
                            let src = px + ((((b * T + tp * kt + dt) * C + c) * H + i * kh + dy) * W + j * kw)
                            o.update(from: src, count: kw)
                            o += kw
                        }
                    }
                }
            }
        }
        _ = b
    }
}

/// einops `b f c (h p1) (w p2) -> b (f h w) (p1 p2 c)` (lucidrains and FastTimeSformer):
/// patch rows of p·p·C values, channel fastest. Returns [B·F·(H/p)·(W/p), p·p·C].
func patchifyChannelsLast(_ px: UnsafePointer<Float>, B: Int, F: Int, C: Int, H: Int, W: Int, p: Int) throws -> Tensor {
    let hp = H / p, wp = W / p, pd = C * p * p
    let patches = try Tensor(shape: [B * F * hp * wp, pd])
    for b in 0..<B {
        for f in 0..<F {
            for i in 0..<hp {
                for j in 0..<wp {
                    let row = patches.data + (((b * F + f) * hp + i) * wp + j) * pd
                    for p1 in 0..<p {
                        for p2 in 0..<p {
                            for c in 0..<C {
                                row[(p1 * p + p2) * C + c] =
                                    px[(((b * F + f) * C + c) * H + i * p + p1) * W + j * p + p2]
                            }
                        }
                    }
                }
            }
        }
    }
    return patches
}

/// Self-attention of `seqs` sequences of n tokens from a fused qkv buffer [seqs·n, 3C]
/// ([q | k | v], heads contiguous) into out [seqs·n, C]; probs [seqs, heads, n, n] if given.
func selfAttention(
    qkv: UnsafePointer<Float>, seqs: Int, n: Int, channels C: Int, heads: Int,
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>? = nil
) throws {
    let profiled = Profile.begin(.attention); defer { Profile.end(profiled, .attention) }
    let d = C / heads
    let view = { (off: Int) in HeadView(qkv + off, batchStride: n * 3 * C, headStride: d, rowStride: 3 * C) }
    var a = AttentionArgs(
        batch: seqs, heads: heads, nq: n, nk: n, d: d, q: view(0), k: view(C), v: view(2 * C),
        o: HeadView(out, batchStride: n * C, headStride: d, rowStride: C),
        scale: 1 / Float(d).squareRoot())
    a.probs = probs
    guard attention(a) else { throw VidAttnError(.outOfMemory, "attention scratch for \(seqs)×\(n) tokens") }
}

func copyTensor(_ p: UnsafePointer<Float>, _ shape: [Int]) throws -> Tensor {
    let t = try Tensor(shape: shape)
    t.data.update(from: p, count: t.count)
    return t
}

func activationNamed(_ s: String, file: String) throws -> Activation {
    switch s {
    case "gelu", "gelu_python": return .gelu
    case "gelu_fast", "gelu_new", "gelu_pytorch_tanh", "gelu_tanh": return .geluTanh
    case "relu": return .relu
    case "tanh": return .tanh
    default: throw VidAttnError(.unsupported, "\(file): hidden_act '\(s)' is not supported")
    }
}

/// The lucidrains-style head: LayerNorm of each sequence's token 0, then a linear layer.
/// last_hidden_state is the residual stream x [B, S, D] itself.
func clsHeadOutput(_ x: Tensor, B: Int, S: Int, norm: LayerNorm, head: Linear, hidden: [Tensor]) throws -> ModelOutput {
    let D = x.shape[2]
    let clsRows = try Tensor(shape: [B, D])
    for b in 0..<B { norm(x.pointer + b * S * D, rows: 1, into: clsRows.data + b * D) }
    let logits = try Tensor(shape: [B, head.outFeatures])
    try head(clsRows.pointer, rows: B, into: logits.data)
    let out = ModelOutput(logits: logits, lastHiddenState: try copyTensor(x.pointer, x.shape))
    out.hiddenStates = hidden
    return out
}

/// The head of the Swin families: LayerNorm over x [B, tokens, C] (the last hidden state), the mean
/// over tokens, the classifier.
func meanPooledHeadOutput(
    _ x: Tensor, B: Int, tokens: Int, channels C: Int, norm: LayerNorm, head: Linear, hidden: [Tensor]
) throws -> ModelOutput {
    let last = try Tensor(shape: [B, tokens, C])
    norm(x.pointer, rows: B * tokens, into: last.data)
    let pooled = try Tensor(shape: [B, C])
    for b in 0..<B {
        meanOfRows(last.pointer + b * tokens * C, rows: tokens, stride: C, channels: C, into: pooled.data + b * C)
    }
    let logits = try Tensor(shape: [B, head.outFeatures])
    try head(pooled.pointer, rows: B, into: logits.data)
    let out = ModelOutput(logits: logits, lastHiddenState: last)
    out.hiddenStates = hidden
    return out
}

/// Swin patch merging of x [B, t, h, w, C] → [B, t, ⌈h/2⌉, ⌈w/2⌉, 2C] (odd sides zero-padded).
func mergePatches(
    _ x: Tensor, B: Int, t: Int, h: Int, w: Int, channels C: Int, _ merge: (norm: LayerNorm, reduction: Linear)
) throws -> Tensor {
    let y = try Tensor(shape: [B, t, (h + 1) / 2, (w + 1) / 2, 2 * C])
    try Ops.patchMerging(
        batch: B, t: t, h: h, w: w, c: C, x: x.pointer, y: y.data, normWeight: merge.norm.gamma.pointer,
        normBias: merge.norm.beta.pointer, reduction: merge.reduction, eps: merge.norm.eps)
    return y
}

/// Per-frame attention with its own CLS copy (HF TimeSformer's spatial step, FastTimeSformer):
/// x's CLS row += the mean over the `groups` CLS outputs, row 0 of each group of
/// `groupTokens` rows in r.
func addMeanCLS(
    _ x: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, groups: Int, groupTokens: Int,
    channels C: Int
) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: C) { m in
        meanOfRows(r, rows: groups, stride: groupTokens * C, channels: C, into: m.baseAddress!)
        addInPlace(x, m.baseAddress!, C)
    }
}
