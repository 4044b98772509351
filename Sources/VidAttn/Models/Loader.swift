// Loading a checkpoint directory: config.json picks the architecture by model_type.

/// Loads `dir` (config.json + model.safetensors or a sharded index); `precision` chooses how
/// the Linear layers are stored and run (bf16/int8: converted once here, see `Linear`) and,
/// for bf16 and int8, that attention's products run on the bf16 unit.
public func loadModel(path dir: String, precision: Precision = .fp32) throws -> VideoModel {
    let model = try LoadContext.$precision.withValue(precision) { try loadModelHere(dir) }
    return precision == .fp32 ? model : ReducedPrecisionModel(model, precision: precision)
}

/// A model loaded at bf16 or int8: its forward runs with `AttentionPrecision.bf16` set, so
/// long-sequence attention multiplies in bf16 on AMX / AVX512-BF16 (fp32 softmax and
/// accumulation); everything else is the wrapped model's.
final class ReducedPrecisionModel: VideoModel {
    let inner: VideoModel
    let precision: Precision
    init(_ inner: VideoModel, precision: Precision) { self.inner = inner; self.precision = precision }
    var modelType: String { inner.modelType }
    var config: JSON { inner.config }
    var numLabels: Int { inner.numLabels }
    var hiddenSize: Int { inner.hiddenSize }
    var parameterCount: Int { inner.parameterCount }
    func forward(
        _ pixels: UnsafePointer<Float>, batch: Int, frames: Int, channels: Int, height: Int, width: Int,
        options: ForwardOptions
    ) throws -> ModelOutput {
        try AttentionPrecision.$bf16.withValue(true) {
            try inner.forward(
                pixels, batch: batch, frames: frames, channels: channels, height: height, width: width,
                options: options)
        }
    }
}

private func loadModelHere(_ dir: String) throws -> VideoModel {
    let cfgPath = dir + "/config.json"
    guard fileExists(cfgPath) else { throw VidAttnError(.io, "\(dir): no config.json") }
    let config = try JSON.parse(try MappedFile(path: cfgPath).text())
    guard config.object != nil else { throw VidAttnError(.badFormat, "\(cfgPath): not a JSON object") }
    guard let type = config["model_type"]?.string else { throw VidAttnError(.badFormat, "\(cfgPath): no model_type") }
    let store = try WeightStore(directory: dir)
    let w = Weights(store)
    switch type {
    case "vivit": return try ViViT(config: config, weights: w, file: cfgPath)
    case "timesformer": return try TimeSformerHF(config: config, weights: w, file: cfgPath)
    case "torchvision_swin3d": return try Swin3D(config: config, weights: w, file: cfgPath)
    case "timesformer_pytorch": return try TimeSformerLucidrains(config: config, weights: w, file: cfgPath)
    case "motionformer": return try Motionformer(config: config, weights: w, file: cfgPath)
    case "fasttimesformer": return try FastTimeSformer(config: config, weights: w, file: cfgPath)
    case "videomae": return try VideoMAE(config: config, weights: w, file: cfgPath)
    case "aim_swin": return try AIMSwin(config: config, weights: w, file: cfgPath)
    default:
        throw VidAttnError(
            .unsupported,
            "\(cfgPath): model_type '\(type)' is not supported "
                + "(supported: \(supportedModelTypes.joined(separator: ", ")))")
    }
}

/// Every `model_type` `loadModel` accepts.
public let supportedModelTypes = [
    "vivit", "timesformer", "videomae", "torchvision_swin3d", "aim_swin",
    "timesformer_pytorch", "motionformer", "fasttimesformer"
]

/// A checkpoint directory loaded for use: the model, its preprocessing, its labels and the
/// config text. What the C API's `vidattn_model` and the CLI both hold.
public final class LoadedModel: @unchecked Sendable {
    /// The network.
    public let model: VideoModel
    /// preprocessor_config.json (or the model family's defaults).
    public let preprocess: PreprocessConfig
    /// The directory it came from.
    public let path: String
    /// The precision it was loaded at.
    public let precision: Precision
    /// config.json as text ("{}" if it cannot be re-read).
    public let configText: String
    /// id2label from config.json, by class index.
    public let labels: [Int: String]

    /// Loads the checkpoint directory `path` at `precision`.
    public init(path: String, precision: Precision = .fp32) throws {
        model = try loadModel(path: path, precision: precision)
        preprocess = try PreprocessConfig(directory: path, modelConfig: model.config)
        self.path = path; self.precision = precision
        configText = (try? MappedFile(path: path + "/config.json").text()) ?? "{}"
        var l: [Int: String] = [:]
        for (k, v) in model.config["id2label"]?.object ?? [:] {
            if let i = Int(k), let s = v.string { l[i] = s }
        }
        labels = l
    }

    /// The label of class i, or its number.
    public func label(_ i: Int) -> String { labels[i] ?? String(i) }
    /// Frames per clip the model expects (16 when the checkpoint does not say).
    public var defaultFrames: Int { preprocess.numFrames ?? 16 }
    /// Frame size after preprocessing when it crops (else 224×224).
    public var defaultSize: (h: Int, w: Int) { preprocess.crop ?? (224, 224) }
}
