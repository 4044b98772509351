// `vidattn classify MODEL FILE…`: many files in one run, the model loaded once, the next file
// decoded while the current one runs, a file that fails reported and skipped.
import ArgumentParser
import Dispatch
import Foundation
import VidAttn

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify videos (any format ffmpeg reads).",
        discussion: """
            Give files, directories (their files, sorted) or --list FILE (one path a line). Only the \
            sampled frames are decoded and kept (memory is bounded by them, whatever the file's length). \
            A file that fails is reported (in -o as a row with its error) and the run goes on; the exit \
            status is then 1. Progress with files/s and ETA goes to stderr (--quiet silences it).
            """)
    @Argument(help: "Checkpoint directory.") var model: String
    @Argument(help: "Video files or directories.") var videos: [String] = []
    @Option(help: "A file listing videos, one path a line.") var list: String?
    @Option(help: "Frames to sample (default: what the model expects).") var frames: Int?
    @Option(help: "How many classes to print.") var top = 5
    @Option(name: [.short, .customLong("output")], help: "Write results to a .jsonl or .csv file.") var output: String?
    @Flag(help: "No progress on stderr.") var quiet = false
    @OptionGroup var common: Common

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        if let f = frames, f < 1 { throw ValidationError("--frames must be at least 1") }
        if videos.isEmpty && list == nil { throw ValidationError("give at least one video, a directory, or --list FILE") }
        if let o = output, !(o.hasSuffix(".jsonl") || o.hasSuffix(".csv")) {
            throw ValidationError("--output must end in .jsonl or .csv (got \(o))")
        }
    }

    /// The files to classify, in order: arguments, directories expanded, then the list.
    func inputs() throws -> [String] {
        var files: [String] = []
        for v in videos {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: v, isDirectory: &isDir), isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: v).filter { !$0.hasPrefix(".") }.sorted()
                files += names.map { v + "/" + $0 }.filter {
                    var d: ObjCBool = false
                    return FileManager.default.fileExists(atPath: $0, isDirectory: &d) && !d.boolValue
                }
            } else {
                files.append(v)
            }
        }
        if let list {
            guard let text = try? String(contentsOfFile: list, encoding: .utf8) else { throw CLIError("\(list): cannot read the list") }
            files += text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        guard !files.isEmpty else { throw CLIError("no videos to classify") }
        return files
    }

    /// One decoded, preprocessed clip (or why it could not be had).
    struct Prepared {
        let path: String
        let result: Result<(px: Tensor, n: Int, available: Int, h: Int, w: Int, decode: Double), Error>
    }

    func prepare(_ path: String, _ m: Loaded) -> Prepared {
        let t0 = now()
        return Prepared(path: path, result: Result {
            let info = try VideoDecoder.probe(path)
            let n = frames ?? m.defaultFrames
            if n > info.frames {
                stderrLine("vidattn: warning: \(path): \(n) frames requested, the clip has \(info.frames); frames repeat")
            }
            let idx = sampleFrameIndices(available: info.frames, count: n)
            let rgb = try VideoDecoder.frames(path, info: info, indices: idx)
            let (oh, ow) = m.pre.outputSize(h: info.height, w: info.width)
            let px = try Tensor(shape: [1, n, 3, oh, ow])
            rgb.withUnsafeBufferPointer { m.pre.apply(rgb: $0.baseAddress!, frames: n, h: info.height, w: info.width, into: px.data) }
            return (px, n, info.frames, info.height, info.width, now() - t0)
        })
    }

    func run() throws {
        try common.apply()
        let files = try inputs()
        let m = try Loaded(model, precision: try common.loadPrecision)
        let single = files.count == 1 && output == nil
        var sink = try output.map { try ResultSink(path: $0, top: top) }
        var failures = 0
        let started = now()
        // Decode file i+1 on another thread while file i runs.
        let queue = DispatchQueue(label: "vidattn.decode")
        var next: DispatchWorkItem? = nil
        nonisolated(unsafe) var pending: Prepared? = nil
        func schedule(_ i: Int) {
            guard i < files.count else { next = nil; return }
            let item = DispatchWorkItem { pending = prepare(files[i], m) }
            queue.async(execute: item)
            next = item
        }
        schedule(0)
        for i in 0..<files.count {
            next?.wait()
            let prepared = pending!
            schedule(i + 1)
            do {
                let clip = try prepared.result.get()
                if single && !quiet {
                    stderrLine(String(format: "decoded %d of %d frames of %dx%d in %.2f s", clip.n, clip.available, clip.w,
                                      clip.h, clip.decode))
                }
                FlopCounter.reset(); FlopCounter.enabled = true
                var opts = ForwardOptions()
                if single && !quiet { opts.shouldContinue = { layer, layers in stderrLine("layer \(layer + 1)/\(layers)"); return true } }
                let t1 = now()
                let out = try m.model.forward(clip.px.pointer, batch: 1, frames: clip.n, channels: 3,
                                              height: clip.px.shape[3], width: clip.px.shape[4], options: opts)
                let tFwd = now() - t1
                FlopCounter.enabled = false
                let logits = Array(UnsafeBufferPointer(start: out.logits.pointer, count: m.model.numLabels))
                let mx = logits.max() ?? 0
                let e = logits.map { Foundation.exp(Double($0 - mx)) }
                let sum = e.reduce(0, +)
                let order = Array(e.indices.sorted { e[$0] > e[$1] }.prefix(top))
                let top = order.map { (label: m.label($0), index: $0, p: e[$0] / sum) }
                let gf = Double(FlopCounter.gemm + FlopCounter.attention) / 1e9
                let record: [String: Any] = [
                    "video": prepared.path, "frames_decoded": clip.available, "frames_used": clip.n,
                    "top": top.map { ["label": $0.label, "index": $0.index, "probability": $0.p] },
                    "seconds": ["decode": clip.decode, "forward": tFwd], "gflops": gf, "gflops_per_second": gf / tFwd,
                    "peak_rss_mib": peakRSSMiB()]
                if sink != nil { try sink!.write(record) } else if common.json { printRecord(record, pretty: single) }
                else {
                    if !single { print("== \(prepared.path)") }
                    let width = top.map { $0.label.count }.max() ?? 0
                    for (r, t) in top.enumerated() {
                        print("\(String(format: "%2d.", r + 1)) \(t.label)\(String(repeating: " ", count: width - t.label.count))  "
                              + String(format: "%6.2f%%", 100 * t.p))
                    }
                    print(String(format: "%d of %d frames, forward %.3f s (%.1f GFLOP/s), decode %.2f s", clip.n,
                                 clip.available, tFwd, gf / tFwd, clip.decode))
                }
            } catch {
                failures += 1
                let msg = (error as? CLIError)?.message ?? (error as? VidAttnError)?.message ?? "\(error)"
                if single { throw CLIError(msg) }
                stderrLine("vidattn: error: \(msg)")
                if sink != nil { try sink!.write(["video": prepared.path, "error": msg]) }
                else if common.json { printRecord(["video": prepared.path, "error": msg], pretty: false) }
            }
            if !quiet && !single {
                let done = Double(i + 1), rate = done / max(now() - started, 1e-9)
                stderrLine(String(format: "[%d/%d] %.2f files/s, ETA %.0f s%@", i + 1, files.count, rate,
                                  Double(files.count - i - 1) / rate, failures > 0 ? " (\(failures) failed)" : ""))
            }
        }
        try sink?.close()
        if failures > 0 { throw CLIError("\(failures) of \(files.count) files failed") }
    }

    func printRecord(_ r: [String: Any], pretty: Bool) {
        let data = try! JSONSerialization.data(withJSONObject: r, options: pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys])
        print(String(data: data, encoding: .utf8)!)
    }
}

/// Results written as JSON lines or CSV (video, rank, label, index, probability; or the error).
struct ResultSink {
    let handle: FileHandle
    let csv: Bool
    let top: Int

    init(path: String, top: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError("\(path): cannot write")
        }
        handle = h; csv = path.hasSuffix(".csv"); self.top = top
        if csv { handle.write("video,rank,label,index,probability,error\n".data(using: .utf8)!) }
    }

    mutating func write(_ r: [String: Any]) throws {
        if !csv {
            var data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys])
            data.append(0x0A)
            handle.write(data)
            return
        }
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let video = q(r["video"] as? String ?? "")
        if let err = r["error"] as? String {
            handle.write("\(video),,,,,\(q(err))\n".data(using: .utf8)!)
            return
        }
        for (rank, t) in ((r["top"] as? [[String: Any]]) ?? []).enumerated() {
            let line = "\(video),\(rank + 1),\(q(t["label"] as? String ?? "")),\(t["index"] as? Int ?? -1),"
                + String(format: "%.6f", t["probability"] as? Double ?? 0) + ",\n"
            handle.write(line.data(using: .utf8)!)
        }
    }

    func close() throws { try handle.close() }
}
