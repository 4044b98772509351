// The public model API: the loaded-model protocol, forward options and outputs, pooling.
import Kernels

/// What a forward pass should return besides the logits, and how it may be stopped.
public struct ForwardOptions {
    /// Collect the hidden state after the embedding and after every layer.
    public var outputHiddenStates = false
    /// Collect each layer's attention probabilities (costs memory: [B, heads, N, N] per layer).
    public var outputAttentions = false
    /// [B, T] bytes, nonzero = real frame (models that take one).
    public var frameMask: UnsafePointer<UInt8>? = nil
    /// Called between layers with (layer, layers); return false to stop (status aborted).
    public var shouldContinue: ((Int, Int) -> Bool)? = nil
    /// Default options: logits only, no capture, no callback.
    public init() {}
}

/// What a forward pass returns. Token layouts follow the reference model.
public final class ModelOutput: @unchecked Sendable {
    /// [B, labels].
    public var logits: Tensor
    /// The base model's last hidden state (after its final norm), [B, tokens, hidden].
    public var lastHiddenState: Tensor
    /// With `outputHiddenStates`: the embedding output, then each layer's output.
    public var hiddenStates: [Tensor] = []
    /// With `outputAttentions`: each layer's attention probabilities.
    public var attentions: [Tensor] = []
    init(logits: Tensor, lastHiddenState: Tensor) { self.logits = logits; self.lastHiddenState = lastHiddenState }
}

/// How `pooled` reduces the last hidden state to one vector per clip.
public enum Pooling: Int32, Sendable {
    /// Token 0 (the CLS token where the model has one).
    case cls = 0
    /// The mean over the patch tokens (prefix tokens left out).
    case mean = 1
}

/// A loaded video model: immutable, shareable between threads.
public protocol VideoModel: AnyObject, Sendable {
    /// config.json's `model_type` (one of `supportedModelTypes`).
    var modelType: String { get }
    /// The parsed config.json.
    var config: JSON { get }
    /// Classifier outputs.
    var numLabels: Int { get }
    /// Width of the last hidden state.
    var hiddenSize: Int { get }
    /// Parameters loaded from the checkpoint (exact count).
    var parameterCount: Int { get }
    /// pixel_values [B, T, C, H, W], fp32.
    func forward(
        _ pixels: UnsafePointer<Float>, batch: Int, frames: Int, channels: Int, height: Int, width: Int,
        options: ForwardOptions
    ) throws -> ModelOutput
}

extension VideoModel {
    /// Tokens before the patch tokens in `lastHiddenState` (the CLS token), which mean pooling
    /// leaves out as timm's average pooling does: 1 for the families with a CLS token, else 0.
    public var prefixTokens: Int {
        ["vivit", "timesformer", "motionformer", "timesformer_pytorch", "fasttimesformer"].contains(modelType) ? 1 : 0
    }

    /// CLS (token 0), or the mean over the patch tokens (the CLS token left out), of the last
    /// hidden state: [B, hidden].
    public func pooled(_ out: ModelOutput, _ pooling: Pooling) throws -> Tensor {
        let h = out.lastHiddenState
        let B = h.shape[0], N = h.shape[1], C = h.shape[2]
        let r = try Tensor(zeros: [B, C])
        let first = min(prefixTokens, N - 1)
        for b in 0..<B {
            let dst = r.data + b * C
            switch pooling {
            case .cls: dst.update(from: h.data + b * N * C, count: C)
            case .mean:
                meanOfRows(h.pointer + (b * N + first) * C, rows: N - first, stride: C, channels: C, into: dst)
            }
        }
        return r
    }
}
