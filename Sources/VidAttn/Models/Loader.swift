// Loading a checkpoint directory: config.json picks the architecture by model_type.

/// Loads `dir` (config.json + model.safetensors or a sharded index); `precision` chooses how
/// the Linear layers are stored and run (bf16: converted once here, see `Linear`).
public func loadModel(path dir: String, precision: Precision = .fp32) throws -> VideoModel {
    try LoadContext.$precision.withValue(precision) { try loadModelHere(dir) }
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
