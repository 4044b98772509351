// C exports of the positional pieces (rotary tables, token shift, GEGLU).
import VidAttn

private func copyOut(_ t: Tensor, _ p: UnsafeMutablePointer<Float>) { p.update(from: t.pointer, count: t.count) }

/// C `vidattn_rotary_time_table` (include/vidattn.h): Rotary time table [frames, dim] into sin and cos (caller-owned).
@_cdecl("vidattn_rotary_time_table")
public func vidattn_rotary_time_table(
    _ frames: Int64, _ dim: Int64, _ consistent: Int32,
    _ sin: UnsafeMutablePointer<Float>?, _ cos: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try require(
            frames > 0 && dim > 0 && dim % 2 == 0 && frames * dim <= 1 << 30,
            "frames must be positive and dim positive and even (got \(frames), \(dim))")
        let s = try nonNull(sin, "sin"), c = try nonNull(cos, "cos")
        let t = try Rotary.timeTable(frames: Int(frames), dim: Int(dim), consistent: consistent != 0)
        copyOut(t.sin, s); copyOut(t.cos, c)
    }
}

/// C `vidattn_rotary_image_table` (include/vidattn.h): Axial rotary image table [h*w, dim] (AxialRotaryEmbedding, max_freq 10 there).
@_cdecl("vidattn_rotary_image_table")
public func vidattn_rotary_image_table(
    _ h: Int64, _ w: Int64, _ dim: Int64, _ maxFreq: Float,
    _ sin: UnsafeMutablePointer<Float>?, _ cos: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try require(
            h > 0 && w > 0 && dim >= 4 && dim % 4 == 0 && h * w * dim <= 1 << 30,
            "h, w must be positive and dim a positive multiple of 4 (got \(h), \(w), \(dim))")
        try require(maxFreq > 0 && maxFreq.isFinite, "max_freq must be positive")
        let s = try nonNull(sin, "sin"), c = try nonNull(cos, "cos")
        let t = try Rotary.imageTable(h: Int(h), w: Int(w), dim: Int(dim), maxFreq: maxFreq)
        copyOut(t.sin, s); copyOut(t.cos, c)
    }
}

/// C `vidattn_rotary_apply` (include/vidattn.h): applies a rotary table in place to x [rows, d].
@_cdecl("vidattn_rotary_apply")
public func vidattn_rotary_apply(
    _ rows: Int64, _ d: Int64, _ x: UnsafeMutablePointer<Float>?,
    _ sin: UnsafePointer<Float>?, _ cos: UnsafePointer<Float>?,
    _ tableRows: Int64, _ tableDim: Int64, _ positions: UnsafePointer<Int64>?
) -> Int32 {
    guarded {
        let pos: [Int]? = positions.map { p in (0..<Int(max(rows, 0))).map { Int(p[$0]) } }
        try withOptionalInts(pos) { pp in
            try Ops.applyRotary(
                rows: Int(rows), d: Int(d), x: x, sin: sin, cos: cos, tableRows: Int(tableRows),
                tableDim: Int(tableDim), positions: pp)
        }
    }
}

private func withOptionalInts(_ a: [Int]?, _ body: (UnsafePointer<Int>?) throws -> Void) rethrows {
    if let a { try a.withUnsafeBufferPointer { try body($0.baseAddress) } } else { try body(nil) }
}

/// C `vidattn_token_shift` (include/vidattn.h): Token shift.
@_cdecl("vidattn_token_shift")
public func vidattn_token_shift(
    _ batch: Int64, _ frames: Int64, _ patches: Int64, _ channels: Int64,
    _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try Ops.tokenShift(
            batch: Int(batch), frames: Int(frames), patches: Int(patches), channels: Int(channels), x: x, y: y)
    }
}

/// C `vidattn_geglu_ff` (include/vidattn.h): GEGLU feed-forward.
@_cdecl("vidattn_geglu_ff")
public func vidattn_geglu_ff(
    _ rows: Int64, _ dim: Int64, _ hidden: Int64, _ out: Int64, _ x: UnsafePointer<Float>?,
    _ w1: UnsafePointer<Float>?, _ b1: UnsafePointer<Float>?,
    _ w2: UnsafePointer<Float>?, _ b2: UnsafePointer<Float>?,
    _ y: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        try Ops.gegluFeedForward(
            rows: Int(rows), dim: Int(dim), hidden: Int(hidden), out: Int(out), x: x,
            w1: w1, b1: b1, w2: w2, b2: b2, y: y)
    }
}
