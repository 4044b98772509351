// C exports of the attention mechanisms (vidattn_attn_*).
import VidAttn
import CVidAttnTypes

@_cdecl("vidattn_attn_joint")
public func vidattn_attn_joint(_ batch: Int64, _ heads: Int64, _ tokens: Int64, _ d: Int64,
                               _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                               _ out: UnsafeMutablePointer<Float>?, _ scale: Float,
                               _ keyMask: UnsafePointer<UInt8>?) -> Int32 {
    guarded {
        try Ops.attention(batch: Int(batch), heads: Int(heads), nq: Int(tokens), nk: Int(tokens), d: Int(d),
                          q: q, k: k, v: v, out: out, scale: scale, keyMask: keyMask)
    }
}

@_cdecl("vidattn_attn_divided")
public func vidattn_attn_divided(_ batch: Int64, _ heads: Int64, _ frames: Int64, _ patches: Int64, _ d: Int64,
                                 _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                                 _ out: UnsafeMutablePointer<Float>?, _ grouping: Int32, _ cls: Int32,
                                 _ scale: Float, _ frameMask: UnsafePointer<UInt8>?) -> Int32 {
    guarded {
        guard let g = DividedGrouping(rawValue: grouping) else {
            throw VidAttnError(.invalidArgument, "unknown grouping \(grouping) (0 = time, 1 = space)")
        }
        guard let c = DividedCLSScheme(rawValue: cls) else {
            throw VidAttnError(.invalidArgument, "unknown CLS scheme \(cls) (0 = all keys, 1 = per-frame copy)")
        }
        try Ops.dividedAttention(DividedShape(batch: Int(batch), heads: Int(heads), frames: Int(frames),
                                              patches: Int(patches), headDim: Int(d)),
                                 grouping: g, scheme: c, q: q, k: k, v: v, out: out,
                                 scale: scale == 0 ? nil : scale, frameMask: frameMask)
    }
}

@_cdecl("vidattn_trajectory_default_params")
public func vidattn_trajectory_default_params() -> vidattn_trajectory_params {
    vidattn_trajectory_params(struct_size: MemoryLayout<vidattn_trajectory_params>.size, use_original_code: 1,
                              approx: VIDATTN_APPROX_NONE, landmarks: 128, orthoformer_start: 0,
                              performer_projection: nil, performer_features: 256, performer_seed: 0, scale: 0)
}

@_cdecl("vidattn_attn_trajectory")
public func vidattn_attn_trajectory(_ batch: Int64, _ heads: Int64, _ frames: Int64, _ patches: Int64, _ d: Int64,
                                    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                                    _ projQ: UnsafePointer<Float>?, _ projQBias: UnsafePointer<Float>?,
                                    _ projKV: UnsafePointer<Float>?, _ projKVBias: UnsafePointer<Float>?,
                                    _ out: UnsafeMutablePointer<Float>?,
                                    _ params: UnsafePointer<vidattn_trajectory_params>?) -> Int32 {
    guarded {
        var p = vidattn_trajectory_default_params()
        if let params {
            guard params.pointee.struct_size >= MemoryLayout<vidattn_trajectory_params>.size else {
                throw VidAttnError(.invalidArgument, "params.struct_size \(params.pointee.struct_size) is smaller " +
                                   "than this library's vidattn_trajectory_params (\(MemoryLayout<vidattn_trajectory_params>.size))")
            }
            p = params.pointee
        }
        try require(heads > 0 && d > 0 && heads <= Int64(Int32.max) && d <= Int64(Int32.max),
                    "heads and d must be positive (got \(heads), \(d))")
        let c = Int(heads * d)
        let weights = try TrajectoryWeights(channels: c, projQ: try nonNull(projQ, "proj_q_weight"), projQBias: projQBias,
                                            projKV: try nonNull(projKV, "proj_kv_weight"), projKVBias: projKVBias)
        var generated: [Float] = []
        let approx: TrajectoryApprox
        switch p.approx.rawValue {
        case VIDATTN_APPROX_NONE.rawValue: approx = .none
        case VIDATTN_APPROX_NYSTROM.rawValue: approx = .nystrom(landmarks: Int(p.landmarks))
        case VIDATTN_APPROX_ORTHOFORMER.rawValue:
            approx = .orthoformer(landmarks: Int(p.landmarks), start: Int(p.orthoformer_start))
        case VIDATTN_APPROX_PERFORMER.rawValue:
            try require(p.performer_features > 0 && p.performer_features <= 1 << 20,
                        "performer_features must be in 1...\(1 << 20) (got \(p.performer_features))")
            if p.performer_projection == nil {
                generated = performerProjection(features: Int(p.performer_features), dim: Int(d), seed: p.performer_seed)
            }
            approx = .none  // replaced below, inside the buffer's lifetime
        default:
            throw VidAttnError(.invalidArgument, "unknown approximation \(p.approx.rawValue)")
        }
        try generated.withUnsafeBufferPointer { gen in
            var a = approx
            if p.approx.rawValue == VIDATTN_APPROX_PERFORMER.rawValue {
                a = .performer(projection: p.performer_projection ?? gen.baseAddress!, features: Int(p.performer_features))
            }
            try Ops.trajectoryAttention(batch: Int(batch), heads: Int(heads), frames: Int(frames), patches: Int(patches),
                                        headDim: Int(d), q: q, k: k, v: v, weights: weights, out: out,
                                        useOriginalCode: p.use_original_code != 0, approx: a,
                                        scale: p.scale == 0 ? nil : p.scale)
        }
    }
}

@_cdecl("vidattn_attn_performer")
public func vidattn_attn_performer(_ batch: Int64, _ heads: Int64, _ nq: Int64, _ nk: Int64, _ d: Int64,
                                   _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                                   _ projection: UnsafePointer<Float>?, _ features: Int64, _ eps: Float,
                                   _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        try Ops.performerAttention(batch: Int(batch), heads: Int(heads), nq: Int(nq), nk: Int(nk), d: Int(d),
                                   q: q, k: k, v: v, projection: projection, features: Int(features), out: out, eps: eps)
    }
}

@_cdecl("vidattn_performer_projection")
public func vidattn_performer_projection(_ features: Int64, _ d: Int64, _ seed: UInt64,
                                         _ projection: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        try require(features > 0 && d > 0 && features <= 1 << 20 && d <= 1 << 16,
                    "features and d must be positive and reasonable (got \(features), \(d))")
        let dst = try nonNull(projection, "projection")
        let omega = performerProjection(features: Int(features), dim: Int(d), seed: seed)
        omega.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: omega.count) }
    }
}

@_cdecl("vidattn_attn_fastformer")
public func vidattn_attn_fastformer(_ batch: Int64, _ heads: Int64, _ n: Int64, _ d: Int64,
                                    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
                                    _ wq: UnsafePointer<Float>?, _ wk: UnsafePointer<Float>?, _ form: Int32,
                                    _ scale: Float, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        guard let f = FastformerForm(rawValue: form) else {
            throw VidAttnError(.invalidArgument, "unknown fastformer form \(form) (0 = paper, 1 = implemented)")
        }
        try Ops.fastformer(batch: Int(batch), heads: Int(heads), n: Int(n), d: Int(d), q: q, k: k, v: v,
                           wq: wq, wk: wk, out: out, form: f, scale: scale == 0 ? nil : scale)
    }
}
