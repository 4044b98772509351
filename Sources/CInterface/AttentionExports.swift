// C exports of the attention mechanisms (vidattn_attn_*).
import VidAttn

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
