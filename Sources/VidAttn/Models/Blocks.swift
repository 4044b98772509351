// Blocks shared by the model files: the pre-LayerNorm transformer layer and the loop over
// layers (abort check and hidden-state capture), so a model file reads as its architecture.
import Kernels

/// The pre-LayerNorm layer of ViT-style models (ViViT, VideoMAE, HF TimeSformer's joint and
/// space-only layers): `x += o(attention(qkv(ln1 x)))`, then `x += fc2(act(fc1(ln2 x)))`.
struct PreLNBlock: Sendable {
    let ln1: LayerNormP, qkv: Linear, o: Linear, ln2: LayerNormP, fc1: Linear, fc2: Linear

    /// One layer on x [seqs·n, C] in place: joint attention within each of `seqs` sequences of n
    /// tokens. Scratch: y [seqs·n, max(3C, fc1 width)], a [seqs·n, C]. probs: [seqs, heads, n, n] or nil.
    func run(_ x: UnsafeMutablePointer<Float>, seqs: Int, n: Int, heads: Int, act: Activation,
             y: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>,
             probs: UnsafeMutablePointer<Float>? = nil) throws {
        let rows = seqs * n
        ln1(x, rows: rows, into: a)
        try qkv(a, rows: rows, into: y)
        try selfAttention(qkv: y, seqs: seqs, n: n, channels: o.outFeatures, heads: heads, out: a, probs: probs)
        try o(a, rows: rows, into: x, accumulate: true)
        try mlp(x, rows: rows, act: act, y: y, a: a)
    }

    /// The feed-forward half alone: `x += fc2(act(fc1(ln2 x)))`.
    func mlp(_ x: UnsafeMutablePointer<Float>, rows: Int, act: Activation,
             y: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>) throws {
        ln2(x, rows: rows, into: a)
        try fc1(a, rows: rows, into: y, activation: act)
        try fc2(y, rows: rows, into: x, accumulate: true)
    }
}

/// Runs `body` for each layer over the residual stream `x`: checks the progress callback
/// before each layer (stopping with `.aborted`), and with `outputHiddenStates` appends a copy of
/// x before the first layer and after each one to `hidden`.
func runLayers<Layer>(_ layers: [Layer], over x: Tensor, options: ForwardOptions, hidden: inout [Tensor],
                      _ body: (Int, Layer) throws -> Void) throws {
    if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
    for (l, layer) in layers.enumerated() {
        if let go = options.shouldContinue, !go(l, layers.count) {
            throw VidAttnError(.aborted, "forward stopped by the callback before layer \(l)")
        }
        try body(l, layer)
        if options.outputHiddenStates { hidden.append(try copyTensor(x.pointer, x.shape)) }
    }
}

/// Pre-LN layers over x [seqs, n, C] with the shared loop; with `outputAttentions` each layer's
/// probabilities [seqs, heads, n, n] are appended to `attentions`.
func runPreLNLayers(_ blocks: [PreLNBlock], over x: Tensor, seqs: Int, n: Int, heads: Int, act: Activation,
                    y: Tensor, a: Tensor, options: ForwardOptions, hidden: inout [Tensor],
                    attentions: inout [Tensor]) throws {
    var atts: [Tensor] = []
    try runLayers(blocks, over: x, options: options, hidden: &hidden) { _, blk in
        let probs = options.outputAttentions ? try Tensor(shape: [seqs, heads, n, n]) : nil
        try blk.run(x.data, seqs: seqs, n: n, heads: heads, act: act, y: y.data, a: a.data, probs: probs?.data)
        if let probs { atts.append(probs) }
    }
    attentions += atts
}
