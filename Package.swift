// swift-tools-version:6.0
import PackageDescription
import Foundation

// MARK: - Target CPU
//
// Swift emits scalar code for SIMD16<Float> unless the Clang importer is told
// the target CPU, so every Swift target gets `-Xcc -march=<cpu>`. The default is
// x86-64-v3 (AVX2 + FMA): the library runs on any such CPU, and the hot loops are
// compiled a second time for x86-64-v4 (the `KernelsAVX512` target, same sources)
// and chosen at run time (Sources/Kernels/Dispatch.swift). `VIDATTN_MARCH=native`
// builds everything for the build machine instead (opt-in; not portable).
// Whether a target's AVX-512 code paths (and SLEEF's 16-wide functions) are
// compiled follows its CPU, and can be forced with `VIDATTN_AVX512=0/1`.

let env = ProcessInfo.processInfo.environment
let march = env["VIDATTN_MARCH"].flatMap { $0.isEmpty ? nil : $0 } ?? "x86-64-v3"

func targetHasAVX512(_ cpu: String) -> Bool {
    if let forced = env["VIDATTN_AVX512"], !forced.isEmpty { return forced != "0" }
    if cpu == "native" {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.contains(" avx512f ") && info.contains(" avx512bw ")
    }
    let avx512CPUs = [
        "x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake", "cannonlake",
        "icelake-client", "icelake-server", "tigerlake", "rocketlake",
        "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5"
    ]
    return avx512CPUs.contains(cpu)
}

let avx512 = targetHasAVX512(march)

var simdSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=\(march)"])
]
if avx512 { simdSwiftSettings.append(.define("VIDATTN_AVX512")) }

// The second compilation of the hot loops, for AVX-512 CPUs.
let avx512SwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v4"]), .define("VIDATTN_AVX512")
]

// A self-contained .so links the Swift runtime (and libdispatch) statically. The
// ThreadSanitizer build links them dynamically instead (`VIDATTN_DYNAMIC_STDLIB=1`):
// TSan understands Dispatch's synchronisation only through its interceptors of the
// shared libdispatch, and would report the statically linked copy's as races.
let staticStdlib = env["VIDATTN_DYNAMIC_STDLIB"] != "1"
let libraryLinkFlags = (staticStdlib ? ["-static-stdlib"] : []) + ["-Xlinker", "-soname=libvidattn.so.0"]

// MARK: - Package

let package = Package(
    name: "vidattn",
    products: [
        // libvidattn.so: the C ABI (include/vidattn.h) for C programs and Python.
        .library(name: "vidattn", type: .dynamic, targets: ["CInterface"]),
        // The Swift API, for Swift packages (see README: depend by path or branch).
        .library(name: "VidAttn", targets: ["VidAttn"]),
        .executable(name: "vidattn-demo", targets: ["vidattn-demo"]),
        // The command-line tool, installed as `vidattn` (the library product owns that name).
        .executable(name: "vidattn-cli", targets: ["vidattn-cli"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // MARK: C libraries
        .systemLibrary(name: "CSleef", path: "Sources/CSleef"),
        // The C API's enums and structs (include/vidattn_types.h), for CInterface.
        .systemLibrary(name: "CVidAttnTypes", path: "Sources/CVidAttnTypes"),
        // Floating-point mode, CPU detection, and micro-kernels Swift cannot emit
        // (per-function target attributes: no unsafeFlags, runs on any x86-64).
        .target(name: "CKernels", path: "Sources/CKernels"),

        // MARK: Swift modules
        // The argument and plan types of the hot loops, shared by both compilations.
        .target(name: "KernelTypes", path: "Sources/KernelTypes"),
        // Sources/Kernels/Hot compiled for x86-64-v4 (its files are symlinks).
        .target(
            name: "KernelsAVX512", dependencies: ["CSleef", "CKernels", "KernelTypes"],
            path: "Sources/KernelsAVX512", swiftSettings: avx512SwiftSettings),
        .target(
            name: "Kernels", dependencies: ["CSleef", "CKernels", "KernelTypes", "KernelsAVX512"],
            swiftSettings: simdSwiftSettings),
        .target(
            name: "VidAttn", dependencies: ["Kernels"],
            swiftSettings: simdSwiftSettings),
        .target(
            name: "CInterface", dependencies: ["VidAttn", "Kernels", "CVidAttnTypes"],
            swiftSettings: simdSwiftSettings,
            // A self-contained .so: the Swift runtime is linked in and hidden.
            linkerSettings: [.unsafeFlags(libraryLinkFlags)]),

        // MARK: Executables
        .executableTarget(
            name: "vidattn-demo", dependencies: ["VidAttn", "Kernels", "CKernels"],
            swiftSettings: simdSwiftSettings),
        .executableTarget(
            name: "vidattn-cli",
            dependencies: [
                "VidAttn", "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ],
            swiftSettings: simdSwiftSettings),

        // MARK: Tests
        .testTarget(
            name: "KernelsTests", dependencies: ["Kernels", "CKernels"],
            swiftSettings: simdSwiftSettings)
    ],
    swiftLanguageModes: [.v5]
)
