// swift-tools-version:6.2
// Micro-benchmarks (ordo-one/benchmark): `cd benchmarks/micro && swift package benchmark`.
// Kept out of the main package so that building Pinhole and its tests never builds the benchmark tool.
import PackageDescription

let package = Package(
    name: "PinholeMicroBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Pinhole", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PinholeBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PinholeCore", package: "Pinhole"),
            ],
            path: "Benchmarks/PinholeBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
