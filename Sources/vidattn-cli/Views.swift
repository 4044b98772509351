// Which frames and crops of a video the CLI runs: temporal clips, spatial crops, a frame range
// or stride, or a timeline of windows. All views of a file go through one batched forward.
import ArgumentParser
import Foundation
import VidAttn

struct Views: ParsableArguments {
    @Option(help: "Uniform temporal clips per video; their softmax scores are averaged.") var clips = 1
    @Option(help: "Spatial crops per clip: 1 (centre) or 3 (along the long side).") var crops = 1
    @Option(help: "Frames between sampled frames (default: spread evenly over each clip).") var stride: Int?
    @Option(help: "Start of the part used, in seconds.") var start: Double?
    @Option(help: "End of the part used, in seconds.") var end: Double?
    @Option(help: "Timeline: classify windows of this many seconds (one JSON line each).") var window: Double?
    @Option(help: "Timeline: seconds between window starts (default: --window).") var hop: Double?

    func check() throws {
        guard clips >= 1 else { throw ValidationError("--clips must be at least 1") }
        guard crops == 1 || crops == 3 else { throw ValidationError("--crops must be 1 or 3") }
        if let s = stride, s < 1 { throw ValidationError("--stride must be at least 1") }
        if let s = start, s < 0 { throw ValidationError("--start must not be negative") }
        if let s = start, let e = end, e <= s { throw ValidationError("--end must be after --start") }
        if let w = window, w <= 0 { throw ValidationError("--window must be positive") }
        if let h = hop, h <= 0 { throw ValidationError("--hop must be positive") }
        if hop != nil && window == nil { throw ValidationError("--hop needs --window") }
        if window != nil && clips != 1 { throw ValidationError("--window takes one clip per window (drop --clips)") }
    }

    /// Frame indices of `clips` clips of `count` frames over [lo, hi): the centre of each of
    /// `count` equal segments, or `count` frames `stride` apart around each clip's middle.
    static func sample(count: Int, lo: Int, hi: Int, clips: Int, stride: Int?) -> [[Int]] {
        let span = max(hi - lo, 1)
        return (0..<clips).map { c in
            let a = lo + span * c / clips, b = lo + span * (c + 1) / clips
            if let s = stride {
                let first = max(a, (a + b) / 2 - s * count / 2)
                return (0..<count).map { min(hi - 1, first + s * $0) }
            }
            let n = max(b - a, 1)
            return (0..<count).map { min(hi - 1, a + Int((Double($0) + 0.5) * Double(n) / Double(count))) }
        }
    }

    /// Timeline windows in seconds, or nil when --window is not given.
    func timeline(available: Int, fps: Double) -> [(start: Double, end: Double)]? {
        guard let w = window else { return nil }
        let total = Double(available) / fps, h = hop ?? w
        var out: [(Double, Double)] = []
        var t = start ?? 0
        let stop = min(end ?? total, total)
        repeat { out.append((t, min(t + w, stop))); t += h } while t < stop - 1e-9
        return out
    }

    /// Decodes the frames of every view of `path` and preprocesses them: px [views, n, 3, H', W'].
    func load(_ path: String, _ m: LoadedModel, frames: Int?) throws
        -> (px: Tensor, n: Int, available: Int, h: Int, w: Int, fps: Double)
    {
        let info = try VideoDecoder.probe(path)
        let n = frames ?? m.defaultFrames
        let lo = Int(((start ?? 0) * info.fps).rounded(.down)),
            hi = min(info.frames, end.map { Int($0 * info.fps) } ?? info.frames)
        guard lo < hi else { throw CLIError("\(path): --start/--end leave no frames (the video has \(info.frames))") }
        var groups: [[Int]]
        if let wins = timeline(available: info.frames, fps: info.fps) {
            groups = wins.map { win in
                Views.sample(
                    count: n, lo: Int(win.start * info.fps),
                    hi: max(Int(win.start * info.fps) + 1, min(hi, Int(win.end * info.fps))),
                    clips: 1, stride: stride)[0]
            }
        } else {
            if n > hi - lo {
                stderrLine("vidattn: warning: \(path): \(n) frames requested, the clip has \(hi - lo); frames repeat")
            }
            groups = Views.sample(count: n, lo: lo, hi: hi, clips: clips, stride: stride)
        }
        let rgb = try VideoDecoder.frames(path, info: info, indices: groups.flatMap { $0 })
        let fb = info.width * info.height * 3
        // Crop squares along the long side (the short side, at the start, centre and end).
        let side = min(info.width, info.height)
        let offsets =
            crops == 1
            ? [nil]
            : [0, (max(info.width, info.height) - side) / 2, max(info.width, info.height) - side].map { Optional($0) }
        let (vh, vw) = crops == 1 ? (info.height, info.width) : (side, side)
        let (oh, ow) = m.preprocess.outputSize(h: vh, w: vw)
        let views = groups.count * offsets.count
        let px = try Tensor(shape: [views, n, 3, oh, ow])
        var view = [UInt8](repeating: 0, count: n * vh * vw * 3)
        var v = 0
        for g in groups.indices {
            for off in offsets {
                for f in 0..<n {
                    let src = (g * n + f) * fb
                    if let o = off {
                        for y in 0..<vh {
                            let sy = info.width >= info.height ? y : y + o, sx = info.width >= info.height ? o : 0
                            let s0 = src + (sy * info.width + sx) * 3, d0 = (f * vh + y) * vw * 3
                            for b in 0..<(vw * 3) { view[d0 + b] = rgb[s0 + b] }
                        }
                    } else {
                        for b in 0..<fb { view[f * fb + b] = rgb[src + b] }
                    }
                }
                try view.withUnsafeBufferPointer {
                    try m.preprocess.apply(
                        rgb: $0.baseAddress!, frames: n, h: vh, w: vw, into: px.data + v * n * 3 * oh * ow)
                }
                v += 1
            }
        }
        return (px, n, info.frames, info.height, info.width, info.fps)
    }
}
