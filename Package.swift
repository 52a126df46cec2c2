// swift-tools-version:6.2
// Pinhole: a Thumbor-compatible thumbnail service on libvips.
// Layers point down only: pinhole (CLI) → ThumbnailService → Imaging → Vips → CVipsShim/CVips.
// ThumborURL stands alone (grammar, signer, URL builder) and is used by the service and the CLI.
import PackageDescription

let package = Package(
    name: "Pinhole",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pinhole", targets: ["pinhole"]),
        // The rendering core, for benchmarks/micro.
        .library(name: "PinholeCore", targets: ["ThumborURL", "Imaging", "Vips"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
    ],
    targets: [
        // libvips as a system library (Debian: libvips-dev).
        .systemLibrary(name: "CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        // libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev): scaled, fast-IDCT JPEG decoding; and its
        // libjpeg API (libjpeg-dev) for buffered-image decoding of progressive files from their DC scans.
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        // Fixed-arity wrappers around libvips' variadic calls (and the TurboJPEG decode that hands its
        // pixels to libvips): the only C Pinhole writes.
        .target(name: "CVipsShim", dependencies: ["CVips", "CTurboJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),
        // The owning Swift image type; nothing above this target sees a pointer.
        .target(name: "Vips", dependencies: ["CVips", "CVipsShim"]),
        // Thumbor's URL grammar, signer and URL builder; no image or network code.
        .target(name: "ThumborURL", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Thumbor's transform math as a plan of named steps, executed on Vips.
        .target(name: "Imaging", dependencies: ["Vips", "ThumborURL"]),
        // What both services share: configuration reading and validation, HTTP dates.
        .target(name: "ServiceSupport", dependencies: [
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // How both HTTP ports are served: per-connection limits (slow or abusive clients), the access log,
        // request ids and request metrics, around Hummingbird's HTTP/1 channel.
        .target(name: "HTTPServing", dependencies: [
            "ServiceSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The file server ftrack's ftrack.server location points at: signed /put, /get, /remove on a crash-safe store.
        .target(name: "CSystemSupport"),
        // An S3 client: AWS Signature Version 4 and the object calls a component store needs.
        .target(name: "ObjectStorage", dependencies: [
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "FileServer", dependencies: [
            "ServiceSupport", "HTTPServing", "CSystemSupport", "ObjectStorage",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "_NIOFileSystem", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The thumbnail service: routes, loaders, responses, configuration.
        .target(name: "ThumbnailService", dependencies: [
            "Imaging", "ThumborURL", "Vips", "ServiceSupport", "HTTPServing",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "_NIOFileSystem", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // ftrack's web-review renditions of uploads: a durable job queue, FFmpeg confined like the decode
        // workers, registration through ftrack's JSON API.
        .target(name: "ReviewEncoding", dependencies: [
            "FileServer", "ThumbnailService", "ServiceSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Confinement of decode workers (prctl, rlimits, a network namespace): used by `pinhole decode-worker`.
        .target(name: "CSandbox"),
        .executableTarget(name: "pinhole", dependencies: [
            "ThumbnailService", "FileServer", "ReviewEncoding", "ServiceSupport", "HTTPServing", "ThumborURL", "Imaging", "CSystemSupport", "CSandbox", "Vips",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // Helpers shared by every test target (corpus location, fixtures).
        .target(name: "PinholeTestSupport", dependencies: ["Vips"], path: "Tests/PinholeTestSupport"),
        .testTarget(name: "VipsTests", dependencies: ["Vips", "PinholeTestSupport"]),
        .testTarget(name: "ThumborURLTests", dependencies: ["ThumborURL"]),
        .testTarget(name: "ServiceSupportTests", dependencies: ["ServiceSupport"]),
        .testTarget(name: "ObjectStorageTests", dependencies: ["ObjectStorage"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "Vips", "ThumborURL", "PinholeTestSupport"]),
        .testTarget(name: "ThumbnailServiceTests", dependencies: [
            "ThumbnailService", "ThumborURL", "Imaging", "PinholeTestSupport", "ServiceSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Configuration", package: "swift-configuration"),
        ]),
        .testTarget(name: "ReviewEncodingTests", dependencies: [
            "ReviewEncoding", "ServiceSupport",
            .product(name: "Configuration", package: "swift-configuration"),
        ]),
        .testTarget(name: "HTTPServingTests", dependencies: [
            "HTTPServing", "ServiceSupport",
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "FileServerTests", dependencies: [
            "FileServer", "ServiceSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
