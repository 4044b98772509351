// C exports of the attention mechanisms (vidattn_attn_*).
import VidAttn
import CVidAttnTypes

/// C `vidattn_attn_joint` (include/vidattn.h): Joint space-time attention (ViViT).
@_cdecl("vidattn_attn_joint")
public func vidattn_attn_joint(
    _ batch: Int64, _ heads: Int64, _ tokens: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ out: UnsafeMutablePointer<Float>?, _ scale: Float,
    _ keyMask: UnsafePointer<UInt8>?
) -> Int32 {
    guarded {
        try Ops.attention(
            batch: Int(batch), heads: Int(heads), nq: Int(tokens), nk: Int(tokens), d: Int(d),
            q: q, k: k, v: v, out: out, scale: scale, keyMask: keyMask)
    }
}

/// C `vidattn_attn_divided` (include/vidattn.h): Divided space-time attention (TimeSformer).
@_cdecl("vidattn_attn_divided")
public func vidattn_attn_divided(
    _ batch: Int64, _ heads: Int64, _ frames: Int64, _ patches: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ out: UnsafeMutablePointer<Float>?, _ grouping: Int32, _ cls: Int32,
    _ scale: Float, _ frameMask: UnsafePointer<UInt8>?
) -> Int32 {
    guarded {
        guard let g = DividedGrouping(rawValue: grouping) else {
            throw VidAttnError(.invalidArgument, "unknown grouping \(grouping) (0 = time, 1 = space)")
        }
        guard let c = DividedCLSScheme(rawValue: cls) else {
            throw VidAttnError(.invalidArgument, "unknown CLS scheme \(cls) (0 = all keys, 1 = per-frame copy)")
        }
        try Ops.dividedAttention(
            DividedShape(
                batch: Int(batch), heads: Int(heads), frames: Int(frames),
                patches: Int(patches), headDim: Int(d)),
            grouping: g, scheme: c, q: q, k: k, v: v, out: out,
            scale: scale == 0 ? nil : scale, frameMask: frameMask)
    }
}

/// C `vidattn_trajectory_default_params` (include/vidattn.h): Default trajectory options (see vidattn_trajectory_params).
@_cdecl("vidattn_trajectory_default_params")
public func vidattn_trajectory_default_params() -> vidattn_trajectory_params {
    vidattn_trajectory_params(
        struct_size: MemoryLayout<vidattn_trajectory_params>.size, use_original_code: 1,
        approx: VIDATTN_APPROX_NONE, landmarks: 128, orthoformer_start: 0,
        performer_projection: nil, performer_features: 256, performer_seed: 0, scale: 0)
}

/// C `vidattn_attn_trajectory` (include/vidattn.h): Trajectory attention (Motionformer), up to but excluding the final proj.
@_cdecl("vidattn_attn_trajectory")
public func vidattn_attn_trajectory(
    _ batch: Int64, _ heads: Int64, _ frames: Int64, _ patches: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ projQ: UnsafePointer<Float>?, _ projQBias: UnsafePointer<Float>?,
    _ projKV: UnsafePointer<Float>?, _ projKVBias: UnsafePointer<Float>?,
    _ out: UnsafeMutablePointer<Float>?,
    _ params: UnsafePointer<vidattn_trajectory_params>?
) -> Int32 {
    guarded {
        var p = vidattn_trajectory_default_params()
        if let params {
            guard params.pointee.struct_size >= MemoryLayout<vidattn_trajectory_params>.size else {
                throw VidAttnError(
                    .invalidArgument,
                    "params.struct_size \(params.pointee.struct_size) is smaller "
                        + "than this library's vidattn_trajectory_params (\(MemoryLayout<vidattn_trajectory_params>.size))"
                )
            }
            p = params.pointee
        }
        try require(
            heads > 0 && d > 0 && heads <= Int64(Int32.max) && d <= Int64(Int32.max),
            "heads and d must be positive (got \(heads), \(d))")
        let c = Int(heads * d)
        let weights = try TrajectoryWeights(
            channels: c, projQ: try nonNull(projQ, "proj_q_weight"), projQBias: projQBias,
            projKV: try nonNull(projKV, "proj_kv_weight"), projKVBias: projKVBias)
        var generated: Tensor? = nil
        let approx: TrajectoryApprox
        switch p.approx.rawValue {
        case VIDATTN_APPROX_NONE.rawValue: approx = .none
        case VIDATTN_APPROX_NYSTROM.rawValue: approx = .nystrom(landmarks: Int(p.landmarks))
        case VIDATTN_APPROX_ORTHOFORMER.rawValue:
            approx = .orthoformer(landmarks: Int(p.landmarks), start: Int(p.orthoformer_start))
        case VIDATTN_APPROX_PERFORMER.rawValue:
            try require(
                p.performer_features > 0 && p.performer_features <= 1 << 20,
                "performer_features must be in 1...\(1 << 20) (got \(p.performer_features))")
            if p.performer_projection == nil {
                generated = try performerProjection(
                    features: Int(p.performer_features), dim: Int(d), seed: p.performer_seed)
            }
            approx = .none  // replaced below, inside the buffer's lifetime
        default:
            throw VidAttnError(.invalidArgument, "unknown approximation \(p.approx.rawValue)")
        }
        var a = approx
        if p.approx.rawValue == VIDATTN_APPROX_PERFORMER.rawValue {
            a = .performer(
                projection: p.performer_projection ?? generated!.pointer, features: Int(p.performer_features))
        }
        try withExtendedLifetime(generated) {
            try Ops.trajectoryAttention(
                batch: Int(batch), heads: Int(heads), frames: Int(frames), patches: Int(patches),
                headDim: Int(d), q: q, k: k, v: v, weights: weights, out: out,
                useOriginalCode: p.use_original_code != 0, approx: a,
                scale: p.scale == 0 ? nil : p.scale)
        }
    }
}

/// C `vidattn_attn_performer` (include/vidattn.h): Performer softmax-kernel attention (performer-pytorch FastAttention, non-causal).
@_cdecl("vidattn_attn_performer")
public func vidattn_attn_performer(
    _ batch: Int64, _ heads: Int64, _ nq: Int64, _ nk: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ projection: UnsafePointer<Float>?, _ features: Int64, _ eps: Float,
    _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try Ops.performerAttention(
            batch: Int(batch), heads: Int(heads), nq: Int(nq), nk: Int(nk), d: Int(d),
            q: q, k: k, v: v, projection: projection, features: Int(features), out: out, eps: eps)
    }
}

/// C `vidattn_performer_projection` (include/vidattn.h): Fills projection [features, d] with a seeded Gaussian orthogonal random matrix (orthonormal blocks of d rows scaled by chi(d) row norms).
@_cdecl("vidattn_performer_projection")
public func vidattn_performer_projection(
    _ features: Int64, _ d: Int64, _ seed: UInt64,
    _ projection: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try require(
            features > 0 && d > 0 && features <= 1 << 20 && d <= 1 << 16,
            "features and d must be positive and reasonable (got \(features), \(d))")
        let dst = try nonNull(projection, "projection")
        let omega = try performerProjection(features: Int(features), dim: Int(d), seed: seed)
        dst.update(from: omega.pointer, count: omega.count)
    }
}

/// C `vidattn_attn_fastformer` (include/vidattn.h): Fastformer additive attention per head.
@_cdecl("vidattn_attn_fastformer")
public func vidattn_attn_fastformer(
    _ batch: Int64, _ heads: Int64, _ n: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ wq: UnsafePointer<Float>?, _ wk: UnsafePointer<Float>?, _ form: Int32,
    _ scale: Float, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        guard let f = FastformerForm(rawValue: form) else {
            throw VidAttnError(.invalidArgument, "unknown fastformer form \(form) (0 = paper, 1 = implemented)")
        }
        try Ops.fastformer(
            batch: Int(batch), heads: Int(heads), n: Int(n), d: Int(d), q: q, k: k, v: v,
            wq: wq, wk: wk, out: out, form: f, scale: scale == 0 ? nil : scale)
    }
}

/// C `vidattn_attn_window3d` (include/vidattn.h): 3-D shifted-window attention (Video Swin; torchvision shifted_window_attention_3d), qkv and proj included.
@_cdecl("vidattn_attn_window3d")
public func vidattn_attn_window3d(
    _ batch: Int64, _ t: Int64, _ h: Int64, _ w: Int64, _ channels: Int64, _ heads: Int64,
    _ window: UnsafePointer<Int64>?, _ shift: UnsafePointer<Int64>?,
    _ x: UnsafePointer<Float>?, _ qkvW: UnsafePointer<Float>?, _ qkvB: UnsafePointer<Float>?,
    _ projW: UnsafePointer<Float>?, _ projB: UnsafePointer<Float>?,
    _ table: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let win = try nonNull(window, "window"), sh = try nonNull(shift, "shift")
        for i in 0..<3 {
            try require(win[i] > 0 && win[i] <= 1024, "window[\(i)] = \(win[i]) must be in 1...1024")
            try require(sh[i] >= 0 && sh[i] < win[i], "shift[\(i)] = \(sh[i]) must be in 0..<window[\(i)]")
        }
        try require(
            channels > 0 && heads > 0 && channels <= 1 << 20 && heads <= channels,
            "channels and heads must be positive (got \(channels), \(heads))")
        let weights = try WindowAttention3DWeights(
            channels: Int(channels), heads: Int(heads), window: (Int(win[0]), Int(win[1]), Int(win[2])),
            qkvWeight: try nonNull(qkvW, "qkv_weight"), qkvBias: qkvB, projWeight: try nonNull(projW, "proj_weight"),
            projBias: projB, relativePositionTable: try nonNull(table, "relative_position_table"))
        try Ops.windowAttention3D(
            batch: Int(batch), t: Int(t), h: Int(h), w: Int(w), x: x, y: y, weights: weights,
            shift: (Int(sh[0]), Int(sh[1]), Int(sh[2])))
    }
}

/// C `vidattn_patch_merging` (include/vidattn.h): Swin patch merging.
@_cdecl("vidattn_patch_merging")
public func vidattn_patch_merging(
    _ batch: Int64, _ t: Int64, _ h: Int64, _ w: Int64, _ c: Int64,
    _ x: UnsafePointer<Float>?, _ normW: UnsafePointer<Float>?, _ normB: UnsafePointer<Float>?,
    _ reduction: UnsafePointer<Float>?, _ eps: Float, _ y: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try require(c > 0 && c <= 1 << 20, "channels must be positive (got \(c))")
        try Ops.patchMerging(
            batch: Int(batch), t: Int(t), h: Int(h), w: Int(w), c: Int(c), x: x, y: y,
            normWeight: normW, normBias: normB, reductionWeight: reduction, eps: eps)
    }
}

/// C `vidattn_attn_landmark` (include/vidattn.h): Landmark attention over all keys (the Motionformer helpers with one frame).
@_cdecl("vidattn_attn_landmark")
public func vidattn_attn_landmark(
    _ kind: Int32, _ batch: Int64, _ heads: Int64, _ n: Int64, _ d: Int64,
    _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?,
    _ landmarks: Int64, _ start: Int64, _ out: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        guard let kd = LandmarkKind(rawValue: kind) else {
            throw VidAttnError(.invalidArgument, "landmark kind must be NYSTROM (1) or ORTHOFORMER (2), got \(kind)")
        }
        try Ops.landmarkAttention(
            kd, batch: Int(batch), heads: Int(heads), n: Int(n), d: Int(d), q: q, k: k, v: v,
            out: out, landmarks: Int(landmarks), start: Int(start))
    }
}

/// C `vidattn_attn_temporal_aim` (include/vidattn.h): AIM temporal attention.
@_cdecl("vidattn_attn_temporal_aim")
public func vidattn_attn_temporal_aim(
    _ groups: Int64, _ frames: Int64, _ channels: Int64, _ heads: Int64,
    _ z: UnsafePointer<Float>?, _ qkvW: UnsafePointer<Float>?, _ qkvB: UnsafePointer<Float>?,
    _ projW: UnsafePointer<Float>?, _ projB: UnsafePointer<Float>?,
    _ table: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try require(channels > 0 && channels <= 1 << 20, "channels must be positive (got \(channels))")
        try Ops.temporalAttentionAIM(
            groups: Int(groups), frames: Int(frames), channels: Int(channels), heads: Int(heads),
            z: z, qkvWeight: qkvW, qkvBias: qkvB, projWeight: projW, projBias: projB,
            table: table, y: y)
    }
}

/// C `vidattn_mechanism_default_shape` (include/vidattn.h): Default shape for vidattn_flops().
@_cdecl("vidattn_mechanism_default_shape")
public func vidattn_mechanism_default_shape() -> vidattn_mechanism_shape {
    let s = MechanismShape()
    return vidattn_mechanism_shape(
        struct_size: MemoryLayout<vidattn_mechanism_shape>.size, channels: Int64(s.channels), heads: Int64(s.heads),
        frames: Int64(s.frames), patches: Int64(s.patches), tokens: Int64(s.tokens), landmarks: Int64(s.landmarks),
        window: (Int64(s.window.0), Int64(s.window.1), Int64(s.window.2)),
        grid: (Int64(s.grid.0), Int64(s.grid.1), Int64(s.grid.2)))
}

/// C `vidattn_flops` (include/vidattn.h): Multiply-accumulates of one clip through `mechanism`, both ways (see vidattn_macs); multiply by 2 for FLOPs.
@_cdecl("vidattn_flops")
public func vidattn_flops(
    _ mechanism: Int32, _ shape: UnsafePointer<vidattn_mechanism_shape>?,
    _ out: UnsafeMutablePointer<vidattn_macs>?
) -> Int32 {
    guarded {
        guard let m = Mechanism(rawValue: mechanism) else {
            throw VidAttnError(.invalidArgument, "unknown mechanism \(mechanism)")
        }
        let sp = try nonNull(shape, "shape"), o = try nonNull(out, "out")
        try require(
            sp.pointee.struct_size >= MemoryLayout<vidattn_mechanism_shape>.size,
            "shape.struct_size \(sp.pointee.struct_size) is smaller than this library's struct")
        let c = sp.pointee
        let fields = [
            c.channels, c.heads, c.frames, c.patches, c.landmarks, c.window.0, c.window.1, c.window.2,
            c.grid.0, c.grid.1, c.grid.2
        ]
        try require(
            fields.allSatisfy { $0 > 0 && $0 <= 1 << 24 } && c.tokens >= 0 && c.tokens <= 1 << 24,
            "shape fields must be positive (tokens may be 0) and at most 2^24")
        try require(c.channels % c.heads == 0, "channels \(c.channels) must be a multiple of heads \(c.heads)")
        var s = MechanismShape()
        s.channels = Int(c.channels); s.heads = Int(c.heads); s.frames = Int(c.frames); s.patches = Int(c.patches)
        s.tokens = Int(c.tokens); s.landmarks = Int(c.landmarks)
        s.window = (Int(c.window.0), Int(c.window.1), Int(c.window.2))
        s.grid = (Int(c.grid.0), Int(c.grid.1), Int(c.grid.2))
        let r = macs(m, s)
        o.pointee = vidattn_macs(attention: r.attention, total: r.total)
    }
}
