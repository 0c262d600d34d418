// swift-tools-version: 6.1
// Extrapolate: length-extrapolation research on transformer language models.
// Targets and who may import whom: see Docs/design.md (mirrors ../shared/DESIGN.md).
import CompilerPluginSupport
import PackageDescription

/// Flags that keep result-builder and generic type-checking cheap; a regression shows up as a warning.
let typeCheckBudget: [SwiftSetting] = [
    .unsafeFlags([
        "-Xfrontend", "-warn-long-expression-type-checking=200",
        "-Xfrontend", "-warn-long-function-bodies=300",
    ])
]

let package = Package(
    name: "Extrapolate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "extrapolate", targets: ["extrapolate"]),
        .library(name: "Architecture", targets: ["Architecture"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-syntax", from: "603.0.1"),
        // The daemon: the result store on SQLite (Debian: libsqlite3-dev), logging and service lifecycle.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The daemon's HTTP server and its /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The fleet's store: PostgreSQL over SwiftNIO (no libpq), and TLS for it.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Already there through Hummingbird; named for the `api` fuzz target (an HTTP field, a channel that is no
        // socket).
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        // Tests only: reading Docs/http-api.yaml to check the server's responses against it.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .macro(
            name: "ArchitectureMacros",
            dependencies: [
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
            ]
        ),
        .target(
            name: "Architecture",
            dependencies: ["ArchitectureMacros"],
            swiftSettings: typeCheckBudget
        ),
        // OpenBLAS (Debian: libopenblas-dev). Link `openblas`, not the `blas` alternative, which lacks openblas_*.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // The inner loops (fused attention, norms, activations, log-softmax). -O3 even in debug builds, so `swift test`
        // runs the kernels at full speed; each kernel set (AVX-512, AVX2 + FMA, portable) is compiled for its own
        // target in its own file and dispatch.c picks the one the CPU supports: no -march for the whole target, which
        // would crash CPUs without it.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast", "-Wno-psabi"])]
        ),
        .target(name: "Kernels", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Checkpoints"),
        // libzstd (Debian: libzstd-dev); 1.5.4 has no seekable API, so TokenData writes the seek table itself.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "TokenData", dependencies: ["CZstd"]),
        .target(name: "Evaluation", dependencies: ["Engine", "TokenData", "Architecture", "Checkpoints", "Kernels"]),
        // Rendering results (tables, CSV, JSON, SVG plots); the CLI and the daemon's pages share it.
        .target(name: "Reports", dependencies: ["Evaluation", "Architecture", "TokenData", "ResultStore"]),
        .target(name: "Engine", dependencies: ["Architecture", "Kernels", "Checkpoints"]),
        // Exact gradients (the engine's forward kernels and bound weights, a backward pass per layer kind) and, on
        // them, training.
        .target(
            name: "Training",
            dependencies: ["Engine", "Evaluation", "TokenData", "Architecture", "Kernels", "Checkpoints"]),
        // Runs, checkpoint versions, jobs and results behind a protocol: SQLite (GRDB), PostgreSQL and in-memory.
        .target(
            name: "ResultStore",
            dependencies: [
                "Evaluation", "Checkpoints", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The daemon: discovery, completeness, watching, the queue worker, configuration and lifecycle.
        .target(
            name: "Service",
            dependencies: [
                "Evaluation", "Engine", "Reports", "ResultStore", "Checkpoints", "TokenData",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The daemon's HTTP API, web page (every asset embedded in the binary), metrics and systemd notification.
        .target(
            name: "Server",
            dependencies: [
                "Service", "ResultStore", "Reports", "Evaluation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .embedInCode("Assets/index.html"), .embedInCode("Assets/app.js"), .embedInCode("Assets/style.css"),
                .embedInCode("Assets/http-api.yaml"),
            ]
        ),
        .target(
            name: "ExtrapolateCLI",
            dependencies: [
                "Architecture",
                "Engine",
                "Training",
                "Checkpoints",
                "TokenData",
                "Evaluation",
                "Reports",
                "Kernels",
                "ResultStore",
                "Service",
                "Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "extrapolate", dependencies: ["ExtrapolateCLI", "Kernels"]),
        // Shared by every test target: repository paths, expectClose, the seeded generator.
        .target(
            name: "TestSupport", dependencies: ["Evaluation", "Kernels", "ResultStore"], path: "Tests/TestSupport"),
        .testTarget(
            name: "ArchitectureTests",
            dependencies: ["Architecture", "TestSupport"],
            swiftSettings: typeCheckBudget
        ),
        .testTarget(
            name: "ArchitectureMacrosTests",
            dependencies: [
                "ArchitectureMacros",
                .product(name: "SwiftSyntaxMacrosGenericTestSupport", package: "swift-syntax"),
            ]
        ),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"]),
        .testTarget(name: "TokenDataTests", dependencies: ["TokenData", "CZstd", "TestSupport"]),
        .testTarget(
            name: "EvaluationTests",
            dependencies: ["Evaluation", "Engine", "TokenData", "Architecture", "Checkpoints", "TestSupport"]
        ),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Evaluation", "ResultStore", "TestSupport"]),
        .testTarget(
            name: "EngineTests", dependencies: ["Engine", "Kernels", "Checkpoints", "Architecture", "TestSupport"]),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "Engine", "Kernels", "Checkpoints", "Architecture", "TestSupport"]),
        .testTarget(
            name: "ResultStoreTests",
            dependencies: ["ResultStore", "Evaluation", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "Service", "ResultStore", "Evaluation", "Checkpoints", "TokenData", "Reports", "Engine", "Kernels",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Service", "ResultStore", "Reports", "Evaluation", "Engine", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "ExtrapolateCLITests",
            dependencies: [
                "ExtrapolateCLI", "Architecture", "Checkpoints", "Evaluation", "Reports", "TokenData", "TestSupport",
            ]
        ),
        // Every parser as one entry taking arbitrary bytes (Tests/fuzz): the fuzzer's targets and the corpus replay.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "Architecture", "Checkpoints", "Evaluation", "TokenData", "Service", "Server", "ResultStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets", "TestSupport"]),
    ]
)

// `EXTRAPOLATE_FUZZ=1 swift build --product extrapolate-fuzz` (what Tests/fuzz/run.sh does, in .build-fuzz): the
// libFuzzer harness, with coverage and AddressSanitizer on the project's own modules (not on its dependencies or its
// macro plugin, which runs inside the compiler). An ordinary build never sees these targets or flags.
//
// The modules are compiled with `-sanitize=fuzzer,address` (coverage for libFuzzer, AddressSanitizer); the harness
// has a `main` of its own that calls libFuzzer's driver, so it links libclang_rt.fuzzer_no_main from the folder
// EXTRAPOLATE_FUZZ_RUNTIME names (run.sh finds it beside swiftc) rather than the runtime with libFuzzer's `main`.
if Context.environment["EXTRAPOLATE_FUZZ"] == "1" {
    let instrumented: SwiftSetting = .unsafeFlags(["-sanitize=fuzzer,address"])
    let runtime = Context.environment["EXTRAPOLATE_FUZZ_RUNTIME"] ?? "/usr/lib/clang/lib/linux"
    for target in package.targets where target.type == .regular && target.name != "TestSupport" {
        target.swiftSettings = (target.swiftSettings ?? []) + [instrumented]
    }
    package.targets += [
        .target(name: "CFuzzSupport"),
        .executableTarget(
            name: "extrapolate-fuzz",
            dependencies: ["FuzzTargets", "CFuzzSupport"],
            swiftSettings: [instrumented],
            linkerSettings: [
                .unsafeFlags([
                    "-sanitize=address", "-Xlinker", "\(runtime)/libclang_rt.fuzzer_no_main-x86_64.a",
                ]),
                .linkedLibrary("stdc++"),
            ]
        ),
    ]
    package.products += [.executable(name: "extrapolate-fuzz", targets: ["extrapolate-fuzz"])]
}
