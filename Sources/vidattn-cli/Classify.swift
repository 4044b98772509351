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
    @OptionGroup var views: Views
    @Option(name: [.short, .customLong("output")], help: "Write results to a .jsonl or .csv file.") var output: String?
    @Flag(help: "No progress on stderr.") var quiet = false
    @OptionGroup var common: Common

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        try views.check()
        if let f = frames, f < 1 { throw ValidationError("--frames must be at least 1") }
        if videos.isEmpty && list == nil {
            throw ValidationError("give at least one video, a directory, or --list FILE")
        }
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
                let names = try FileManager.default.contentsOfDirectory(atPath: v).filter { !$0.hasPrefix(".") }
                    .sorted()
                files += names.map { v + "/" + $0 }.filter {
                    var d: ObjCBool = false
                    return FileManager.default.fileExists(atPath: $0, isDirectory: &d) && !d.boolValue
                }
            } else {
                files.append(v)
            }
        }
        if let list {
            guard let text = try? String(contentsOfFile: list, encoding: .utf8) else {
                throw CLIError("\(list): cannot read the list")
            }
            files += text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty && !$0.hasPrefix("#")
            }
        }
        guard !files.isEmpty else { throw CLIError("no videos to classify") }
        return files
    }

    /// One decoded, preprocessed clip (or why it could not be had).
    struct Prepared {
        let path: String
        /// px: [views, T, 3, H', W'] (views = clips × crops, or timeline windows).
        let result: Result<(px: Tensor, n: Int, available: Int, h: Int, w: Int, fps: Double, decode: Double), Error>
    }

    func prepare(_ path: String, _ m: LoadedModel) -> Prepared {
        let t0 = now()
        return Prepared(
            path: path,
            result: Result {
                let clip = try views.load(path, m, frames: frames)
                return (clip.px, clip.n, clip.available, clip.h, clip.w, clip.fps, now() - t0)
            })
    }

    func run() throws {
        try common.apply()
        let files = try inputs()
        let m = try loadForCLI(model, precision: try common.loadPrecision)
        let single = files.count == 1 && output == nil
        var sink = try output.map { try ResultSink(path: $0, top: top) }
        let failures = try processFiles(
            files, quiet: quiet, single: single, prepare: { prepare($0, m) },
            onError: { path, msg in
                if sink != nil {
                    try sink!.write(["video": path, "error": msg])
                } else if common.json {
                    printRecord(["video": path, "error": msg], pretty: false)
                }
            }
        ) { prepared in
            let clip = try prepared.result.get()
            if single && !quiet {
                stderrLine(
                    String(
                        format: "decoded %d of %d frames of %dx%d in %.2f s", clip.n, clip.available, clip.w,
                        clip.h, clip.decode))
            }
            FlopCounter.reset(); FlopCounter.enabled = true
            var opts = ForwardOptions()
            if single && !quiet {
                opts.shouldContinue = { layer, layers in
                    stderrLine("layer \(layer + 1)/\(layers)"); return true
                }
            }
            let t1 = now()
            let nv = clip.px.shape[0]
            let out = try m.model.forward(
                clip.px.pointer, batch: nv, frames: clip.n, channels: 3,
                height: clip.px.shape[3], width: clip.px.shape[4], options: opts)
            let tFwd = now() - t1
            FlopCounter.enabled = false
            let L = m.model.numLabels
            // Softmax per view; views averaged (all of them, or per timeline window).
            func probs(_ v: Int) -> [Double] {
                let lg = Array(UnsafeBufferPointer(start: out.logits.pointer + v * L, count: L))
                let mx = lg.max() ?? 0
                let e = lg.map { Foundation.exp(Double($0 - mx)) }
                let s = e.reduce(0, +)
                return e.map { $0 / s }
            }
            func topOf(_ views: Range<Int>) -> [(label: String, index: Int, p: Double)] {
                var acc = [Double](repeating: 0, count: L)
                for v in views { for (i, p) in probs(v).enumerated() { acc[i] += p / Double(views.count) } }
                return Array(acc.indices.sorted { acc[$0] > acc[$1] }.prefix(self.top)).map {
                    (m.label($0), $0, acc[$0])
                }
            }
            let gf = Double(FlopCounter.gemm + FlopCounter.attention) / 1e9
            let top = topOf(0..<nv)
            var record: [String: Any] = [
                "video": prepared.path, "frames_decoded": clip.available, "frames_used": clip.n,
                "views": nv, "top": top.map { ["label": $0.label, "index": $0.index, "probability": $0.p] },
                "seconds": ["decode": clip.decode, "forward": tFwd], "gflops": gf, "gflops_per_second": gf / tFwd,
                "peak_rss_mib": peakRSSMiB()
            ]
            if let windows = views.timeline(available: clip.available, fps: clip.fps) {
                // One JSON line per window, on stdout (or in -o), then the summary below.
                let per = nv / windows.count
                for (w, win) in windows.enumerated() {
                    let t = topOf((w * per)..<((w + 1) * per))
                    let line: [String: Any] = [
                        "video": prepared.path, "start": win.start, "end": win.end,
                        "top": t.map { ["label": $0.label, "index": $0.index, "probability": $0.p] }
                    ]
                    if sink != nil { try sink!.write(line) } else { printRecord(line, pretty: false) }
                }
                record["windows"] = windows.count
            }
            if views.window != nil {
                // The windows are the output; nothing more for this file.
            } else if sink != nil {
                try sink!.write(record)
            } else if common.json {
                printRecord(record, pretty: single)
            } else {
                if !single { print("== \(prepared.path)") }
                let width = top.map { $0.label.count }.max() ?? 0
                for (r, t) in top.enumerated() {
                    print(
                        "\(String(format: "%2d.", r + 1)) \(t.label)\(String(repeating: " ", count: width - t.label.count))  "
                            + String(format: "%6.2f%%", 100 * t.p))
                }
                print(
                    String(
                        format: "%d of %d frames, forward %.3f s (%.1f GFLOP/s), decode %.2f s", clip.n,
                        clip.available, tFwd, gf / tFwd, clip.decode))
            }
        }
        try sink?.close()
        if failures > 0 { throw CLIError("\(failures) of \(files.count) files failed") }
    }

    func printRecord(_ r: [String: Any], pretty: Bool) {
        let data = try! JSONSerialization.data(
            withJSONObject: r, options: pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys])
        print(String(data: data, encoding: .utf8)!)
    }
}

/// Runs `body` on each file's prepared clip, decoding file i+1 on another thread while file i
/// runs; a file that fails is reported (stderr and `onError`) and the run goes on (with one
/// file, its error is thrown). Progress with files/s and ETA on stderr unless quiet.
/// Returns the number of files that failed.
func processFiles(
    _ files: [String], quiet: Bool, single: Bool, prepare: @escaping (String) -> Classify.Prepared,
    onError: (String, String) throws -> Void, body: (Classify.Prepared) throws -> Void
) throws -> Int {
    let started = now()
    let queue = DispatchQueue(label: "vidattn.decode")
    var next: DispatchWorkItem? = nil
    nonisolated(unsafe) var pending: Classify.Prepared? = nil
    func schedule(_ i: Int) {
        guard i < files.count else { next = nil; return }
        let item = DispatchWorkItem { pending = prepare(files[i]) }
        queue.async(execute: item)
        next = item
    }
    var failures = 0
    schedule(0)
    for i in 0..<files.count {
        next?.wait()
        let prepared = pending!
        schedule(i + 1)
        do {
            try body(prepared)
        } catch {
            failures += 1
            let msg = (error as? CLIError)?.message ?? (error as? VidAttnError)?.message ?? "\(error)"
            if single { throw CLIError(msg) }
            stderrLine("vidattn: error: \(msg)")
            try onError(prepared.path, msg)
        }
        if !quiet && !single {
            let rate = Double(i + 1) / max(now() - started, 1e-9)
            stderrLine(
                String(
                    format: "[%d/%d] %.2f files/s, ETA %.0f s%@", i + 1, files.count, rate,
                    Double(files.count - i - 1) / rate, failures > 0 ? " (\(failures) failed)" : ""))
        }
    }
    return failures
}

/// Results written as JSON lines or CSV (video, rank, label, index, probability; or the error).
struct ResultSink {
    let handle: FileHandle
    let csv: Bool
    let top: Int

    init(path: String, top: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path)
        else {
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
            let line =
                "\(video),\(rank + 1),\(q(t["label"] as? String ?? "")),\(t["index"] as? Int ?? -1),"
                + String(format: "%.6f", t["probability"] as? Double ?? 0) + ",\n"
            handle.write(line.data(using: .utf8)!)
        }
    }

    func close() throws { try handle.close() }
}
