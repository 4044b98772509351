// vidattn — the command-line tool: info, classify, flops, bench.
import ArgumentParser
import Foundation
import VidAttn

@main
enum Entry {
    /// Usage mistakes print the usage (exit 64, from ArgumentParser); failures while doing
    /// the work print one line `vidattn: error: …` and exit 1.
    static func main() {
        do {
            var command = try VidAttnCLI.parseAsRoot()
            try command.run()
        } catch let e as CLIError {
            stderrLine("vidattn: error: \(e.message)"); exit(1)
        } catch let e as VidAttnError {
            stderrLine("vidattn: error: \(e.message)"); exit(1)
        } catch {
            VidAttnCLI.exit(withError: error)
        }
    }
}

struct VidAttnCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vidattn",
        abstract: "Video-transformer inference on the CPU.",
        version: Version.string,
        subcommands: [Info.self, Classify.self, Embed.self, Flops.self, Bench.self])
}

struct Common: ParsableArguments {
    @Option(name: .long, help: "Worker threads (default: VIDATTN_NUM_THREADS or all cores).")
    var threads: Int?
    @Flag(name: .long, help: "Machine-readable JSON on stdout.")
    var json = false
    @Option(
        name: .long, help: "Linear layers in fp32 (default), bf16 (AMX / AVX512-BF16) or int8 (AMX-INT8 / AVX512-VNNI)."
    )
    var precision = "fp32"

    var loadPrecision: Precision {
        get throws {
            guard let p = Precision(rawValue: precision) else {
                throw ValidationError("--precision must be fp32, bf16 or int8 (got \(precision))")
            }
            return p
        }
    }

    func apply() throws {
        _ = try loadPrecision
        if let t = threads {
            guard t >= 1 else { throw ValidationError("--threads must be at least 1") }
            Threads.count = t
        }
    }
}

func stderrLine(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

func printJSON(_ obj: Any) {
    let data = try! JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
    print(String(data: data, encoding: .utf8)!)
}

func now() -> Double { Date().timeIntervalSince1970 }

func peakRSSMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    return (Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "0") ?? 0) / 1024
}

/// Steal and total jiffies of all CPUs from /proc/stat's `cpu` line (steal: time the hypervisor
/// ran other guests on this machine's cores), nil where there is no such line or field.
func cpuStealJiffies() -> (steal: Double, total: Double)? {
    guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
    else { return nil }
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is counted
    // in user and nice already.
    let v = line.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
    guard v.count == 8 else { return nil }
    return (v[7], v.reduce(0, +))
}

/// Per cent of the CPU time between two `cpuStealJiffies` readings that was stolen.
func stealPercent(_ a: (steal: Double, total: Double)?, _ b: (steal: Double, total: Double)?) -> Double? {
    guard let a, let b, b.total > a.total else { return nil }
    return 100 * (b.steal - a.steal) / (b.total - a.total)
}

/// Loads a checkpoint for a command, saying on stderr what was loaded and how long it took.
func loadForCLI(_ path: String, precision: Precision = .fp32) throws -> LoadedModel {
    let t0 = now()
    let m = try LoadedModel(path: path, precision: precision)
    stderrLine(
        String(
            format: "loaded %@ (%@, %.1f M parameters, %@) in %.2f s", path, m.model.modelType,
            Double(m.model.parameterCount) / 1e6,
            precision == .bf16
                ? "bf16 on \(BF16Unit.detected.summary)"
                : precision == .int8 ? "int8 on \(Int8Unit.detected.rawValue)" : "fp32", now() - t0))
    return m
}

extension LoadedModel {
    /// Runs a forward on zeros of the default shape, counting FLOPs.
    func countFlops() throws -> (gemm: Int, attention: Int, seconds: Double, gemmFP32: Int) {
        let (h, w) = defaultSize, t = defaultFrames
        let px = try Tensor(zeros: [1, t, 3, h, w])
        FlopCounter.reset(); FlopCounter.enabled = true
        defer { FlopCounter.enabled = false }
        let t0 = now()
        _ = try model.forward(
            px.pointer, batch: 1, frames: t, channels: 3, height: h, width: w, options: ForwardOptions())
        return (FlopCounter.gemm, FlopCounter.attention, now() - t0, FlopCounter.gemmFP32)
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Architecture, parameters and FLOPs of a checkpoint.",
        discussion: "Model types: \(supportedModelTypes.joined(separator: ", ")).")
    @Argument(help: "Checkpoint directory (config.json + model.safetensors).") var model: String
    @OptionGroup var common: Common

    func run() throws {
        try common.apply()
        let m = try loadForCLI(model, precision: try common.loadPrecision)
        let f = try m.countFlops()
        let (h, w) = m.defaultSize
        if common.json {
            printJSON([
                "model_type": m.model.modelType, "parameters": m.model.parameterCount, "labels": m.model.numLabels,
                "hidden_size": m.model.hiddenSize, "input": [1, m.defaultFrames, 3, h, w],
                "gflops_total": Double(f.gemm + f.attention) / 1e9, "gflops_attention": Double(f.attention) / 1e9,
                "gflops_gemm_fp32": Double(f.gemmFP32) / 1e9, "precision": m.precision.rawValue,
                "supported_model_types": supportedModelTypes, "cpu": CPU.brand, "cpu_flags": CPU.flags,
                "kernels": [
                    "fp32": FP32Kernels.isa, "baseline": FP32Kernels.baselineISA,
                    "bf16": BF16Unit.detected.rawValue, "int8": Int8Unit.detected.rawValue, "max_isa": ISALevel.cap.name
                ]
            ])
        } else {
            print("model type   \(m.model.modelType) (supported: \(supportedModelTypes.joined(separator: ", ")))")
            print("parameters   \(m.model.parameterCount)")
            print("labels       \(m.model.numLabels)")
            print("hidden size  \(m.model.hiddenSize)")
            print("input        [1, \(m.defaultFrames), 3, \(h), \(w)]")
            print(
                String(
                    format: "GFLOPs       %.2f total (all matmuls), %.2f in attention matmuls",
                    Double(f.gemm + f.attention) / 1e9, Double(f.attention) / 1e9))
            if m.precision != .fp32 {
                let fp32 = String(format: "%.2f", Double(f.gemmFP32) / 1e9)
                print("             \(fp32) of them in GEMMs left on the fp32 kernels at \(m.precision.rawValue)")
            }
            print("cpu          \(CPU.brand); \(CPU.flags.joined(separator: " "))")
            print(
                "kernels      fp32 \(FP32Kernels.isa) (library built for \(FP32Kernels.baselineISA)), "
                    + "bf16 \(BF16Unit.detected.rawValue), int8 \(Int8Unit.detected.rawValue), VIDATTN_MAX_ISA \(ISALevel.cap.name)"
            )
        }
    }
}

struct Flops: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "FLOPs of one forward at the model's default input, both ways.")
    @Argument(help: "Checkpoint directory.") var model: String
    @OptionGroup var common: Common

    func run() throws {
        try common.apply()
        let m = try loadForCLI(model, precision: try common.loadPrecision)
        let f = try m.countFlops()
        if common.json {
            printJSON(["total": f.gemm + f.attention, "attention": f.attention, "gemm": f.gemm])
        } else {
            print(String(format: "total      %.3f GFLOPs (every matmul)", Double(f.gemm + f.attention) / 1e9))
            print(
                String(
                    format: "attention  %.3f GFLOPs (Q·Kᵀ and A·V only, the AIM/Swin convention)",
                    Double(f.attention) / 1e9))
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Median forward latency, GFLOP/s, peak memory and the hypervisor's steal share.")
    @Argument(help: "Checkpoint directory.") var model: String
    @Option(help: "Timed runs after one warm-up.") var reps = 5
    @Flag(help: "After the timed runs, one profiled run: time per kind of work and per layer.") var profile = false
    @OptionGroup var common: Common

    func run() throws {
        try common.apply()
        guard reps >= 1 else { throw ValidationError("--reps must be at least 1") }
        let m = try loadForCLI(model, precision: try common.loadPrecision)
        let f = try m.countFlops()
        let (h, w) = m.defaultSize, t = m.defaultFrames
        let px = try Tensor(zeros: [1, t, 3, h, w])
        // AMX timings come with the tile unit's throughput before and after them: on shared
        // machines it can change within seconds (docs/benchmarking.md).
        let onTiles = try common.loadPrecision != .fp32 && BF16Unit.detected == .amx
        let probeBefore = onTiles ? CPU.measureTilePeak(threads: Threads.count) : nil
        var times: [Double] = []
        var stealStart: (steal: Double, total: Double)?  // read after the warm-up: the timed runs only
        for i in 0...reps {
            if i == 1 { stealStart = cpuStealJiffies() }
            let t0 = now()
            _ = try m.model.forward(
                px.pointer, batch: 1, frames: t, channels: 3, height: h, width: w, options: ForwardOptions())
            if i > 0 { times.append(now() - t0); stderrLine(String(format: "run %d/%d: %.3f s", i, reps, times.last!)) }
        }
        let med = times.sorted()[times.count / 2]
        // On a VM, the share of the timed runs' CPU time the hypervisor gave to other guests
        // (docs/benchmarking.md, "Read the steal column").
        let steal = stealPercent(stealStart, cpuStealJiffies())
        let probeAfter = onTiles ? CPU.measureTilePeak(threads: Threads.count) : nil
        let gf = Double(f.gemm + f.attention) / 1e9
        let prof = profile ? try profiledRun(m, px) : nil
        if common.json {
            var j: [String: Any] = [
                "median_seconds": med, "gflops_per_second": gf / med, "peak_rss_mib": peakRSSMiB(),
                "threads": Threads.count, "input": [1, t, 3, h, w]
            ]
            if let steal { j["steal_percent"] = steal }
            if let probeBefore, let probeAfter {
                j["tile_probe_gflops"] = ["before": probeBefore.perWorker, "after": probeAfter.perWorker]
            }
            if let prof {
                j["profile"] = [
                    "total_seconds": prof.total, "embedding_seconds": prof.embedding, "layer_seconds": prof.layers,
                    "sections": Dictionary(uniqueKeysWithValues: prof.sections.map { ($0.key.name, $0.value) })
                ]
            }
            printJSON(j)
        } else {
            print(
                String(
                    format:
                        "median %.3f s over %d runs, %.1f GFLOP/s, peak RSS %.0f MiB, %d threads, input [1, %d, 3, %d, %d]",
                    med, reps, gf / med, peakRSSMiB(), Threads.count, t, h, w)
                    + (steal.map { String(format: ", steal %.0f%%", $0) } ?? ", steal n/a"))
            if let probeBefore, let probeAfter {
                let rates = { (p: (total: Double, perWorker: [Double])) in
                    p.perWorker.map { String(format: "%.0f", $0) }.joined(separator: " + ")
                }
                print(
                    "AMX tile probe (GFLOP/s per worker): \(rates(probeBefore)) before the runs, \(rates(probeAfter)) after"
                )
            }
            if let prof { printProfile(prof) }
        }
    }

    struct Breakdown {
        var total = 0.0, embedding = 0.0, layers: [Double] = [], sections: [Profile.Section: Double] = [:]
    }

    /// One forward with the section profile on and a timestamp at each layer boundary.
    func profiledRun(_ m: LoadedModel, _ px: Tensor) throws -> Breakdown {
        var b = Breakdown(), marks: [Double] = []
        var opts = ForwardOptions()
        opts.shouldContinue = { _, _ in
            marks.append(now()); return true
        }
        let (h, w) = m.defaultSize, t = m.defaultFrames
        Profile.start()
        let t0 = now()
        defer { _ = Profile.stop() }
        _ = try m.model.forward(px.pointer, batch: 1, frames: t, channels: 3, height: h, width: w, options: opts)
        let t1 = now()
        b.total = t1 - t0
        b.sections = Profile.stop()
        // The callback runs before each layer: marks[i] is where layer i starts.
        let points = [t0] + marks + [t1]
        b.embedding = marks.isEmpty ? 0 : marks[0] - t0
        for i in 1..<(points.count - 1) { b.layers.append(points[i + 1] - points[i]) }
        return b
    }

    func printProfile(_ b: Breakdown) {
        print(String(format: "profiled run: %.1f ms", 1e3 * b.total))
        var rest = b.total
        func row(_ name: String, _ v: Double, _ note: String = "") {
            print(
                "  " + name.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%9.1f ms  %5.1f%%", 1e3 * v, 100 * v / b.total) + note)
        }
        for s in Profile.Section.allCases {
            let v = b.sections[s] ?? 0
            rest -= v
            row(s.name, v)
        }
        row("other", rest, "  (embedding, gathers, residual adds, head)")
        print(String(format: "  before the first layer (embedding): %.1f ms", 1e3 * b.embedding))
        print("  per layer (ms; the last includes the final norm and head):")
        print("   " + b.layers.map { String(format: " %.1f", 1e3 * $0) }.joined())
    }
}

extension VidAttnError: LocalizedError {
    /// The error's text, for Swift's error printing.
    public var errorDescription: String? { description }
}
