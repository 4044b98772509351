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
    func forward(_ pixels: UnsafePointer<Float>, batch: Int, frames: Int, channels: Int, height: Int, width: Int,
                 options: ForwardOptions) throws -> ModelOutput {
        try AttentionPrecision.$bf16.withValue(true) {
            try inner.forward(pixels, batch: batch, frames: frames, channels: channels, height: height, width: width,
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
        throw VidAttnError(.unsupported, "\(cfgPath): model_type '\(type)' is not supported " +
                           "(supported: \(supportedModelTypes.joined(separator: ", ")))")
    }
}

/// Every `model_type` `loadModel` accepts.
public let supportedModelTypes = ["vivit", "timesformer", "videomae", "torchvision_swin3d", "aim_swin",
                                  "timesformer_pytorch", "motionformer", "fasttimesformer"]
