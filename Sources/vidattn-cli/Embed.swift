// `vidattn embed MODEL FILE… -o features.npy`: pooled embeddings to disk, one row per file and
// view, with an index naming the rows.
import ArgumentParser
import Foundation
import VidAttn

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write pooled embeddings of videos to a .npy file.",
        discussion: """
            One float32 row per file and view (clips × crops) in OUT (an .npy array [rows, hidden]), and \
            OUT with .index.csv (row, video, clip, crop) naming them. Rows are written as files finish, \
            so memory does not grow with the number of files. Files that fail are listed on stderr and \
            left out; the exit status is then 1.
            """)
    @Argument(help: "Checkpoint directory.") var model: String
    @Argument(help: "Video files or directories.") var videos: [String] = []
    @Option(help: "A file listing videos, one path a line.") var list: String?
    @Option(name: [.short, .customLong("output")], help: "The .npy file to write.") var output: String
    @Option(help: "cls (token 0) or mean (the patch tokens, CLS left out).") var pooling = "cls"
    @Option(help: "Frames to sample (default: what the model expects).") var frames: Int?
    @OptionGroup var views: Views
    @Flag(help: "No progress on stderr.") var quiet = false
    @OptionGroup var common: Common

    func validate() throws {
        guard pooling == "cls" || pooling == "mean" else { throw ValidationError("--pooling must be cls or mean") }
        guard output.hasSuffix(".npy") else { throw ValidationError("--output must end in .npy (got \(output))") }
        guard views.window == nil else { throw ValidationError("--window is for classify") }
        if let f = frames, f < 1 { throw ValidationError("--frames must be at least 1") }
        if videos.isEmpty && list == nil {
            throw ValidationError("give at least one video, a directory, or --list FILE")
        }
        try views.check()
    }

    func run() throws {
        try common.apply()
        // The file list and decoding are classify's.
        var c = try Classify.parse([model] + videos + (list.map { ["--list", $0] } ?? []))
        c.frames = frames
        c.views = views
        let files = try c.inputs()
        let m = try loadForCLI(model, precision: try common.loadPrecision)
        let npy = try NpyWriter(path: output, columns: m.model.hiddenSize)
        let indexPath = String(output.dropLast(4)) + ".index.csv"
        guard FileManager.default.createFile(atPath: indexPath, contents: "row,video,clip,crop\n".data(using: .utf8)),
            let index = FileHandle(forWritingAtPath: indexPath)
        else { throw CLIError("\(indexPath): cannot write") }
        index.seekToEndOfFile()
        let failures = try processFiles(
            files, quiet: quiet, single: false, prepare: { c.prepare($0, m) },
            onError: { _, _ in }
        ) { prepared in
            let clip = try prepared.result.get()
            let nv = clip.px.shape[0]
            let out = try m.model.forward(
                clip.px.pointer, batch: nv, frames: clip.n, channels: 3,
                height: clip.px.shape[3], width: clip.px.shape[4], options: ForwardOptions())
            let pooled = try m.model.pooled(out, pooling == "cls" ? .cls : .mean)
            for v in 0..<nv {
                let row = npy.rows
                try npy.append(
                    UnsafeBufferPointer(start: pooled.pointer + v * m.model.hiddenSize, count: m.model.hiddenSize))
                let video = "\"" + prepared.path.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                index.write("\(row),\(video),\(v / views.crops),\(v % views.crops)\n".data(using: .utf8)!)
            }
        }
        try npy.close()
        try index.close()
        if !quiet { stderrLine("wrote \(npy.rows) rows of \(m.model.hiddenSize) to \(output) (index: \(indexPath))") }
        if failures > 0 { throw CLIError("\(failures) of \(files.count) files failed") }
    }
}

/// A float32 .npy file of `columns` columns written row by row; the header (rewritten with the
/// final row count on close) has a fixed 128-byte size.
final class NpyWriter {
    let handle: FileHandle
    let columns: Int
    private(set) var rows = 0
    static let headerSize = 128

    init(path: String, columns: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path)
        else {
            throw CLIError("\(path): cannot write")
        }
        handle = h; self.columns = columns
        handle.write(NpyWriter.header(rows: 0, columns: columns))
    }

    static func header(rows: Int, columns: Int) -> Data {
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let fixed = 10  // magic (6), version (2), header length (2)
        dict += String(repeating: " ", count: headerSize - fixed - dict.utf8.count - 1) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(dict.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        d.append(dict.data(using: .ascii)!)
        return d
    }

    func append(_ row: UnsafeBufferPointer<Float>) throws {
        precondition(row.count == columns)
        handle.write(Data(buffer: row))
        rows += 1
    }

    func close() throws {
        handle.seek(toFileOffset: 0)
        handle.write(NpyWriter.header(rows: rows, columns: columns))
        try handle.close()
    }
}
