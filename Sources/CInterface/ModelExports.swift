// C exports of model loading and inference (vidattn_model_*, vidattn_output_*).
#if canImport(Glibc)
import Glibc
#endif
import VidAttn
import CVidAttnTypes

/// A loaded model as C sees it: the shared `LoadedModel` and the C strings handed out.
final class ModelBox {
    let loaded: LoadedModel
    let typeString: UnsafeMutablePointer<CChar>
    let configString: UnsafeMutablePointer<CChar>
    let labels: [Int: UnsafeMutablePointer<CChar>]
    var model: VideoModel { loaded.model }
    var preprocess: PreprocessConfig { loaded.preprocess }
    init(_ l: LoadedModel) {
        loaded = l
        typeString = strdup(l.model.modelType)
        configString = strdup(l.configText)
        labels = l.labels.mapValues { strdup($0) }
    }
    deinit { free(typeString); free(configString); labels.values.forEach { free($0) } }
}

final class OutputBox {
    let out: ModelOutput
    let cls: Tensor, mean: Tensor
    init(_ o: ModelOutput, cls: Tensor, mean: Tensor) { out = o; self.cls = cls; self.mean = mean }

    /// The tensors of one vidattn_output_kind (include/vidattn_types.h).
    func tensors(_ kind: Int32) -> [Tensor] {
        switch UInt32(bitPattern: kind) {
        case VIDATTN_OUT_LOGITS.rawValue: return [out.logits]
        case VIDATTN_OUT_LAST_HIDDEN.rawValue: return [out.lastHiddenState]
        case VIDATTN_OUT_HIDDEN_STATE.rawValue: return out.hiddenStates
        case VIDATTN_OUT_ATTENTION.rawValue: return out.attentions
        case VIDATTN_OUT_POOLED_CLS.rawValue: return [cls]
        case VIDATTN_OUT_POOLED_MEAN.rawValue: return [mean]
        default: return []
        }
    }
}

private func box(_ p: OpaquePointer?) -> ModelBox? {
    p.map { Unmanaged<ModelBox>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}
private func outBox(_ p: OpaquePointer?) -> OutputBox? {
    p.map { Unmanaged<OutputBox>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

/// C `vidattn_model_default_params` (include/vidattn.h): Defaults for vidattn_model_load().
@_cdecl("vidattn_model_default_params")
public func vidattn_model_default_params() -> vidattn_model_params {
    vidattn_model_params(
        struct_size: MemoryLayout<vidattn_model_params>.size, precision: Int32(VIDATTN_PRECISION_FP32.rawValue))
}

/// C `vidattn_model_load` (include/vidattn.h): Loads a checkpoint directory.
@_cdecl("vidattn_model_load")
public func vidattn_model_load(
    _ path: UnsafePointer<CChar>?, _ params: UnsafePointer<vidattn_model_params>?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        let out = try nonNull(out, "out")
        out.pointee = nil
        let path = String(cString: try nonNull(path, "path"))
        var precision = Precision.fp32
        if let params {
            try require(
                params.pointee.struct_size >= MemoryLayout<vidattn_model_params>.size,
                "params.struct_size \(params.pointee.struct_size) is smaller than this library's struct")
            switch params.pointee.precision {
            case Int32(VIDATTN_PRECISION_FP32.rawValue): precision = .fp32
            case Int32(VIDATTN_PRECISION_BF16.rawValue): precision = .bf16
            case Int32(VIDATTN_PRECISION_INT8.rawValue): precision = .int8
            default:
                throw VidAttnError(
                    .invalidArgument, "params.precision \(params.pointee.precision) is not a vidattn_precision")
            }
        }
        let loaded = try LoadedModel(path: path, precision: precision)
        out.pointee = OpaquePointer(Unmanaged.passRetained(ModelBox(loaded)).toOpaque())
    }
}

/// C `vidattn_model_free` (include/vidattn.h): Frees a model; NULL is ignored.
@_cdecl("vidattn_model_free")
public func vidattn_model_free(_ m: OpaquePointer?) {
    guard let m else { return }
    Unmanaged<ModelBox>.fromOpaque(UnsafeRawPointer(m)).release()
}

private let empty: UnsafeMutablePointer<CChar> = strdup("")

/// C `vidattn_model_type` (include/vidattn.h): the checkpoint's model_type (static for the model's lifetime).
@_cdecl("vidattn_model_type")
public func vidattn_model_type(_ m: OpaquePointer?) -> UnsafePointer<CChar> {
    UnsafePointer(box(m)?.typeString ?? empty)
}
/// C `vidattn_model_config_json` (include/vidattn.h): config.json as loaded.
@_cdecl("vidattn_model_config_json")
public func vidattn_model_config_json(_ m: OpaquePointer?) -> UnsafePointer<CChar> {
    UnsafePointer(box(m)?.configString ?? empty)
}
/// C `vidattn_model_num_labels` (include/vidattn.h): classifier outputs (0 without a classifier head).
@_cdecl("vidattn_model_num_labels")
public func vidattn_model_num_labels(_ m: OpaquePointer?) -> Int64 { Int64(box(m)?.model.numLabels ?? -1) }
/// C `vidattn_model_hidden_size` (include/vidattn.h): width of the last hidden state.
@_cdecl("vidattn_model_hidden_size")
public func vidattn_model_hidden_size(_ m: OpaquePointer?) -> Int64 { Int64(box(m)?.model.hiddenSize ?? -1) }
/// C `vidattn_model_parameter_count` (include/vidattn.h): parameters loaded from the checkpoint.
@_cdecl("vidattn_model_parameter_count")
public func vidattn_model_parameter_count(_ m: OpaquePointer?) -> Int64 { Int64(box(m)?.model.parameterCount ?? -1) }

/// C `vidattn_forward_default_params` (include/vidattn.h): Defaults for vidattn_model_forward().
@_cdecl("vidattn_forward_default_params")
public func vidattn_forward_default_params() -> vidattn_forward_params {
    vidattn_forward_params(
        struct_size: MemoryLayout<vidattn_forward_params>.size, output_hidden_states: 0,
        output_attentions: 0, frame_mask: nil, progress: nil, progress_user_data: nil)
}

/// C `vidattn_model_forward` (include/vidattn.h): One forward pass.
@_cdecl("vidattn_model_forward")
public func vidattn_model_forward(
    _ m: OpaquePointer?, _ pixels: UnsafePointer<Float>?, _ batch: Int64,
    _ frames: Int64, _ channels: Int64, _ height: Int64, _ width: Int64,
    _ params: UnsafePointer<vidattn_forward_params>?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        let out = try nonNull(out, "out")
        out.pointee = nil
        guard let mb = box(m) else { throw VidAttnError(.nullPointer, "model is NULL") }
        let px = try nonNull(pixels, "pixel_values")
        try require(
            batch > 0 && frames > 0 && channels > 0 && height > 0 && width > 0,
            "pixel_values dimensions must be positive (got [\(batch), \(frames), \(channels), \(height), \(width)])")
        guard let total = checkedProduct(Int(batch), Int(frames), Int(channels), Int(height), Int(width)),
            total <= 1 << 34
        else {
            throw VidAttnError(
                .invalidArgument, "pixel_values of [\(batch), \(frames), \(channels), \(height), \(width)] is too large"
            )
        }
        var p = vidattn_forward_default_params()
        if let params {
            try require(
                params.pointee.struct_size >= MemoryLayout<vidattn_forward_params>.size,
                "params.struct_size \(params.pointee.struct_size) is smaller than this library's struct")
            p = params.pointee
        }
        var o = ForwardOptions()
        o.outputHiddenStates = p.output_hidden_states != 0
        o.outputAttentions = p.output_attentions != 0
        o.frameMask = p.frame_mask
        if let cb = p.progress {
            let user = p.progress_user_data
            o.shouldContinue = { layer, layers in cb(user, Int32(layer), Int32(layers)) != 0 }
        }
        let result = try mb.model.forward(
            px, batch: Int(batch), frames: Int(frames), channels: Int(channels),
            height: Int(height), width: Int(width), options: o)
        let ob = OutputBox(result, cls: try mb.model.pooled(result, .cls), mean: try mb.model.pooled(result, .mean))
        out.pointee = OpaquePointer(Unmanaged.passRetained(ob).toOpaque())
    }
}

/// C `vidattn_output_count` (include/vidattn.h): number of tensors of a kind in an output (hidden states and attention maps: one per layer; else 0 or 1).
@_cdecl("vidattn_output_count")
public func vidattn_output_count(_ o: OpaquePointer?, _ kind: Int32) -> Int64 {
    Int64(outBox(o)?.tensors(kind).count ?? 0)
}

private func outputTensor(_ o: OpaquePointer?, _ kind: Int32, _ index: Int64) throws -> Tensor {
    guard let ob = outBox(o) else { throw VidAttnError(.nullPointer, "output is NULL") }
    guard kind >= 0 && kind <= Int32(VIDATTN_OUT_POOLED_MEAN.rawValue) else {
        throw VidAttnError(.invalidArgument, "unknown output kind \(kind)")
    }
    let ts = ob.tensors(kind)
    guard index >= 0, index < Int64(ts.count) else {
        throw VidAttnError(
            .invalidArgument,
            "output index \(index) out of range (\(ts.count) tensors of kind \(kind); "
                + "hidden states and attentions must be requested in the forward params)")
    }
    return ts[Int(index)]
}

/// C `vidattn_output_shape` (include/vidattn.h): Shape of tensor `index` of a kind.
@_cdecl("vidattn_output_shape")
public func vidattn_output_shape(
    _ o: OpaquePointer?, _ kind: Int32, _ index: Int64,
    _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?
) -> Int32 {
    guarded {
        let t = try outputTensor(o, kind, index)
        let s = try nonNull(shape, "shape"), n = try nonNull(ndim, "ndim")
        for (i, d) in t.shape.prefix(8).enumerated() { s[i] = Int64(d) }
        n.pointee = Int32(min(t.shape.count, 8))
    }
}

/// C `vidattn_output_copy` (include/vidattn.h): Copies tensor `index` of a kind into dst (capacity floats; too small is an error).
@_cdecl("vidattn_output_copy")
public func vidattn_output_copy(
    _ o: OpaquePointer?, _ kind: Int32, _ index: Int64, _ dst: UnsafeMutablePointer<Float>?,
    _ capacity: Int64
) -> Int32 {
    guarded {
        let t = try outputTensor(o, kind, index)
        let d = try nonNull(dst, "dst")
        try require(capacity >= Int64(t.count), "dst holds \(capacity) floats but the tensor \(t.shape) has \(t.count)")
        d.update(from: t.pointer, count: t.count)
    }
}

/// C `vidattn_output_free` (include/vidattn.h): Frees outputs; NULL is ignored.
@_cdecl("vidattn_output_free")
public func vidattn_output_free(_ o: OpaquePointer?) {
    guard let o else { return }
    Unmanaged<OutputBox>.fromOpaque(UnsafeRawPointer(o)).release()
}

/// C `vidattn_model_num_frames` (include/vidattn.h): Frames the model expects per clip (config num_frames / frames; 0 if any count works).
@_cdecl("vidattn_model_num_frames")
public func vidattn_model_num_frames(_ m: OpaquePointer?) -> Int64 { Int64(box(m)?.preprocess.numFrames ?? 0) }

/// C `vidattn_model_label` (include/vidattn.h): Label of class `index` from config.json id2label, or NULL.
@_cdecl("vidattn_model_label")
public func vidattn_model_label(_ m: OpaquePointer?, _ index: Int64) -> UnsafePointer<CChar>? {
    guard let b = box(m), index >= 0, index < Int64(Int32.max), let s = b.labels[Int(index)] else { return nil }
    return UnsafePointer(s)
}

/// C `vidattn_model_input_size` (include/vidattn.h): Size of preprocessed frames for input frames of height x width (after the checkpoint's resize and centre crop).
@_cdecl("vidattn_model_input_size")
public func vidattn_model_input_size(
    _ m: OpaquePointer?, _ h: Int64, _ w: Int64, _ oh: UnsafeMutablePointer<Int64>?,
    _ ow: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        guard let b = box(m) else { throw VidAttnError(.nullPointer, "model is NULL") }
        try require(h > 0 && w > 0 && h <= 1 << 16 && w <= 1 << 16, "frame size \(h)×\(w) out of range")
        let (a, c) = b.preprocess.outputSize(h: Int(h), w: Int(w))
        try nonNull(oh, "out_height").pointee = Int64(a)
        try nonNull(ow, "out_width").pointee = Int64(c)
    }
}

/// C `vidattn_model_preprocess` (include/vidattn.h): Preprocesses decoded frames per the checkpoint's preprocessor_config.json (shortest-edge resize, bilinear; centre crop; rescale; normalise).
@_cdecl("vidattn_model_preprocess")
public func vidattn_model_preprocess(
    _ m: OpaquePointer?, _ rgb: UnsafePointer<UInt8>?, _ frames: Int64, _ h: Int64,
    _ w: Int64, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    guarded {
        guard let b = box(m) else { throw VidAttnError(.nullPointer, "model is NULL") }
        try require(
            frames > 0 && h > 0 && w > 0 && h <= 1 << 16 && w <= 1 << 16 && frames <= 1 << 16,
            "frames, height, width must be positive (got \(frames), \(h), \(w))")
        let src = try nonNull(rgb, "rgb"), dst = try nonNull(out, "pixel_values")
        let (oh, ow) = b.preprocess.outputSize(h: Int(h), w: Int(w))
        let need = Int64(frames) * 3 * Int64(oh) * Int64(ow)
        try require(
            capacity >= need, "pixel_values holds \(capacity) floats but \(frames)×3×\(oh)×\(ow) = \(need) are needed")
        try b.preprocess.apply(rgb: src, frames: Int(frames), h: Int(h), w: Int(w), into: dst)
    }
}
