// Video decoding for the CLI through the ffmpeg executables: probe a file, then decode only the
// frames in use. Memory is bounded by those frames (plus one being read), never the whole file.
import Foundation

/// A failure while doing the work (as opposed to a usage mistake): printed as one line
/// `vidattn: error: …`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// What ffprobe says about a file's first video stream.
struct VideoInfo {
    let width: Int, height: Int
    /// Frames in the stream (from the container, else duration × frame rate).
    let frames: Int
    let fps: Double
    let duration: Double
}

enum VideoDecoder {
    /// Files up to this many frames are decoded in one pass that keeps only the sampled
    /// frames; longer ones by one accurate seek per sampled frame.
    static let onePassLimit = 600

    static func probe(_ path: String) throws -> VideoInfo {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw CLIError("\(path): is a directory, not a video")
        }
        guard FileManager.default.isReadableFile(atPath: path) else { throw CLIError("\(path): cannot read") }
        let out = try run(
            [
                "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                "stream=width,height,nb_frames,avg_frame_rate,r_frame_rate,duration:format=duration,format_name",
                "-of", "json", path
            ], what: path)
        guard let json = try? JSONSerialization.jsonObject(with: out) as? [String: Any] else {
            throw CLIError("\(path): not a video (ffprobe could not read it)")
        }
        let format = (json["format"] as? [String: Any]) ?? [:]
        let formatName = format["format_name"] as? String ?? ""
        // Still images open as one-frame "videos" (image2, png_pipe, jpeg_pipe, …): refused.
        if formatName.contains("image2") || formatName.hasSuffix("_pipe") {
            throw CLIError("\(path): a still image (\(formatName)), not a video")
        }
        guard let stream = (json["streams"] as? [[String: Any]])?.first,
            let w = stream["width"] as? Int, let h = stream["height"] as? Int, w > 0, h > 0
        else {
            throw CLIError("\(path): not a video (no video stream)")
        }
        func rate(_ s: Any?) -> Double? {
            guard let s = s as? String else { return nil }
            let p = s.split(separator: "/").compactMap { Double($0) }
            if p.count == 2, p[1] > 0, p[0] > 0 { return p[0] / p[1] }
            return p.count == 1 && p[0] > 0 ? p[0] : nil
        }
        let fps = rate(stream["avg_frame_rate"]) ?? rate(stream["r_frame_rate"]) ?? 25
        let duration = Double(stream["duration"] as? String ?? "") ?? Double(format["duration"] as? String ?? "") ?? 0
        var frames = Int(stream["nb_frames"] as? String ?? "") ?? 0
        if frames <= 0 { frames = Int((duration * fps).rounded(.down)) }
        guard frames > 0 else { throw CLIError("\(path): not a video (no frames)") }
        return VideoInfo(width: w, height: h, frames: frames, fps: fps, duration: duration)
    }

    /// RGB24 of the frames at `indices` (in that order, repeats allowed), [n, h, w, 3].
    static func frames(_ path: String, info: VideoInfo, indices: [Int]) throws -> [UInt8] {
        let frameBytes = info.width * info.height * 3
        let wanted = Array(Set(indices)).sorted()
        var byIndex: [Int: ArraySlice<UInt8>] = [:]
        if info.frames <= onePassLimit {
            // One pass; the select filter passes only the wanted frames on.
            let expr = wanted.map { "eq(n\\,\($0))" }.joined(separator: "+")
            let raw = try run(
                [
                    "ffmpeg", "-v", "error", "-i", path, "-vf", "select='\(expr)'", "-fps_mode", "passthrough",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-"
                ], what: path)
            let got = raw.count / frameBytes
            guard got > 0 else { throw CLIError("\(path): no frames decoded") }
            let bytes = [UInt8](raw)
            for (i, idx) in wanted.enumerated() {
                let k = min(i, got - 1)  // a container that overstated its frame count: repeat the last
                byIndex[idx] = bytes[(k * frameBytes)..<((k + 1) * frameBytes)]
            }
        } else {
            // Long files: an accurate seek per wanted frame, one frame decoded each time.
            for idx in wanted {
                let t = String(format: "%.6f", Double(idx) / info.fps)
                let raw = try run(
                    [
                        "ffmpeg", "-v", "error", "-ss", t, "-i", path, "-frames:v", "1",
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-"
                    ], what: path)
                if raw.count >= frameBytes { byIndex[idx] = [UInt8](raw.prefix(frameBytes))[...] }
            }
            guard let last = byIndex.keys.max().flatMap({ byIndex[$0] }) else {
                throw CLIError("\(path): no frames decoded")
            }
            for idx in wanted where byIndex[idx] == nil { byIndex[idx] = last }  // past the real end
        }
        var out = [UInt8]()
        out.reserveCapacity(indices.count * frameBytes)
        for idx in indices { out.append(contentsOf: byIndex[idx]!) }
        return out
    }

    static func run(_ args: [String], what: String) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { throw CLIError("cannot run \(args[0]) (install ffmpeg): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal || p.terminationStatus == 127 {
            throw CLIError("cannot run \(args[0]) (install ffmpeg)")
        }
        guard p.terminationStatus == 0 else {
            let msg = String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw CLIError("\(what): not a video or unreadable (\(args[0]): \(msg.split(separator: "\n").last ?? ""))")
        }
        return data
    }
}
