import ArgumentParser
import CSystemSupport
import Configuration
import Crypto
import FileServer
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ReviewEncoding
import ServiceLifecycle
import ServiceSupport
import ThumbnailService
import ThumborURL
import AsyncHTTPClient

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the thumbnail service and the file server (embedded defaults; --config and PINHOLE_… variables override them).")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        restartWithHugePageTunable()
        limitMallocArenas()
        let reader = try await options.reader()
        let (logger, accessLog) = try await options.logging(reader)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var thumbnails = try await loadOrExit { try ServiceConfiguration(reader: reader) }
        var files = try await loadOrExit { try FileServerConfiguration(reader: reader) }
        let encode = try await loadOrExit { try EncodeConfiguration(reader: reader) }
        let cluster = try await loadOrExit { try ClusterConfiguration(reader: reader) }
        if thumbnails.securityKeys.isEmpty {
            let key = developmentSecret()
            thumbnails.securityKeys = [key]
            announce("pinhole: no thumbnails.security_keys configured; development key for this run: \(key)")
        }
        if files.secrets.isEmpty {
            let secret = developmentSecret()
            files.secrets = [secret]
            announce("pinhole: no files.secrets configured; development file-server secret for this run: \(secret)")
        }
        try FileManager.default.createDirectory(atPath: thumbnails.fileRoot, withIntermediateDirectories: true)
        let thumbnailServer = try await loadOrExit { try ThumbnailServer(configuration: thumbnails, logger: logger) }
        let fileServer = try FileServer(configuration: files, logger: logger)
        announce("pinhole: thumbnails on http://\(thumbnails.host):\(thumbnails.port) (loader: \(thumbnails.loader.rawValue), root: \(thumbnails.fileRoot))")
        announce("pinhole: files on http://\(files.host):\(files.port) (\(files.storeDescription))")
        let sources = ComponentSources(thumbnails: thumbnails, files: files)
        let encoder = try ReviewEncoder(configuration: encode, store: fileServer.store,
                                        renderStill: Self.stillRenderer(thumbnailServer, sources: sources), logger: logger)
        // The review job is recorded before the upload is answered.
        fileServer.events.whenCommitted { record in encoder.uploaded(record) }
        let wiring = Task {
            await wire(fileServer.events, thumbnails: thumbnailServer, encoder: encoder, sources: sources, cluster: cluster, logger: logger)
        }
        let removals = RemovalWatcher(journal: fileServer.removals, thumbnails: thumbnailServer,
                                      cursorFile: thumbnails.cacheRoot + "/removals.cursor", configuration: cluster, logger: logger)
        if !cluster.balancerURL.isEmpty { announce("pinhole: pre-warm goes through \(cluster.balancerURL)") }
        let group = ServiceGroup(configuration: .graceful(
            services: [ConcurrentServices(services: [thumbnailServer.application(metrics: { registry.text() }, accessLog: accessLog),
                                                     fileServer.application(metrics: { registry.text() }, accessLog: accessLog)]),
                       fileServer.maintenance, encoder, removals, FreeMemoryRelease()],
            grace: max(thumbnails.limits.shutdownGrace, files.limits.shutdownGrace), logger: logger))
        do {
            try await group.run()
        } catch {
            // A port already in use, say: say so and still close the HTTP client and the render pool.
            wiring.cancel()
            try? await thumbnailServer.shutdown()
            throw error
        }
        wiring.cancel()
        try await thumbnailServer.shutdown()
        accessLog?.flush()
    }

    /// The executable joins the two services (the file server never imports the thumbnail service):
    /// an upload of an image or video pre-warms its thumbnails, one upload at a time, off the request
    /// path; a removal purges its cached thumbnails and source.
    func wire(_ events: FileServerEvents, thumbnails: ThumbnailServer, encoder: ReviewEncoder, sources: ComponentSources,
              cluster: ClusterConfiguration, logger: Logger) async {
        for await event in events.subscribe() {
            switch event {
            case let .uploaded(id, _, _, _):
                let sizes = thumbnails.configuration.prewarmSizes
                var counts = (rendered: 0, cached: 0, failed: 0)
                if cluster.balancerURL.isEmpty {
                    for outcome in await thumbnails.prewarm(imageURL: sources.imageURL(for: id), sizes: sizes) {
                        switch outcome {
                        case .rendered: counts.rendered += 1
                        case .cached: counts.cached += 1
                        case .failed: counts.failed += 1
                        }
                    }
                } else if let key = thumbnails.configuration.securityKeys.first {
                    // Through the balancer: each size renders on its URL's home node.
                    for job in Prewarm.jobs(inputs: [id], sizes: sizes, sources: sources, signer: URLSigner(key: key)) {
                        switch await Prewarm.warm(job, base: cluster.balancerURL, client: .shared) {
                        case .done: counts.rendered += 1
                        case .skipped: counts.cached += 1
                        case .failed: counts.failed += 1
                        }
                    }
                }
                logger.info("pre-warmed thumbnails", metadata: [
                    "id": .string(id), "rendered": .stringConvertible(counts.rendered), "cached": .stringConvertible(counts.cached),
                    "failed": .stringConvertible(counts.failed),
                ])
            case let .removed(id):
                let purged = thumbnails.purge(component: id)
                logger.info("purged cached thumbnails", metadata: ["id": .string(id), "entries": .stringConvertible(purged)])
                await encoder.removed(id)
            }
        }
    }
}

extension Serve {
    /// Review images and version thumbnails are thumbnails: the same loaders, sandboxed decoders and colour
    /// handling as any thumbnail of the component. A refusal (4xx) means the media is bad; the rest may pass.
    static func stillRenderer(_ thumbnails: ThumbnailServer, sources: ComponentSources) -> StillRenderer {
        { source, box in
            do {
                return try await thumbnails.render(imageURL: sources.imageURL(for: source),
                                                   options: "fit-in/\(box)x\(box)/filters:format(jpeg):quality(90)")
            } catch let error as ServiceError {
                let code = error.status.code
                if (400..<500).contains(code), code != 408, code != 429 { throw StillRenderFailure.badMedia(error.description) }
                throw StillRenderFailure.transient(error.description)
            }
        }
    }
}

struct Files: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the file server alone.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        limitMallocArenas()
        let reader = try await options.reader()
        let (logger, accessLog) = try await options.logging(reader)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var files = try await loadOrExit { try FileServerConfiguration(reader: reader) }
        if files.secrets.isEmpty {
            let secret = developmentSecret()
            files.secrets = [secret]
            announce("pinhole: no files.secrets configured; development file-server secret for this run: \(secret)")
        }
        let fileServer = try FileServer(configuration: files, logger: logger)
        announce("pinhole: files on http://\(files.host):\(files.port) (\(files.storeDescription))")
        let group = ServiceGroup(configuration: .graceful(
            services: [fileServer.application(metrics: { registry.text() }, accessLog: accessLog), fileServer.maintenance],
            grace: files.limits.shutdownGrace, logger: logger))
        try await group.run()
        accessLog?.flush()
    }
}

/// Options every long-running subcommand takes.
struct ServiceOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log line format: text or json (overrides log.format).")
    var logFormat: String?

    /// Installs the log format (`log.format`, or `--log-format`) and returns the service's logger and,
    /// unless `log.access` is off, the access logger.
    func logging(_ reader: ConfigReader) async throws -> (Logger, access: AccessLog?) {
        var configuration = try await loadOrExit { try LogConfiguration(reader: reader) }
        if let logFormat {
            guard let format = LogConfiguration.Format(rawValue: logFormat.lowercased()) else {
                throw ValidationError("--log-format must be text or json")
            }
            configuration.format = format
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        configuration.bootstrap(level: level)
        var logger = Logger(label: "pinhole")
        logger.logLevel = level
        return (logger, configuration.access ? AccessLog(format: configuration.format) : nil)
    }

    func reader() async throws -> ConfigReader {
        try await Self.reader(file: config)
    }

    static func reader(file: String?) async throws -> ConfigReader {
        try await loadOrExit { try await ConfigurationSource.reader(file: file) }
    }
}

extension ServiceGroupConfiguration {
    /// Services stopped by SIGTERM or SIGINT: the listeners close at once, requests in progress have
    /// `grace` seconds to finish, then whatever is left is cancelled (a cut upload leaves nothing).
    static func graceful(services: [any Service], grace: Double, logger: Logger) -> ServiceGroupConfiguration {
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .milliseconds(Int64(grace * 1000))
        configuration.maximumCancellationDuration = .seconds(10)
        return configuration
    }
}

/// Loads configuration or exits with a message naming the bad key (exit status 78, EX_CONFIG).
func loadOrExit<T>(_ load: () async throws -> T) async throws -> T {
    do {
        return try await load()
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("pinhole: \(OperatorText.describe(error))\n".utf8))
        throw ExitCode(78)
    }
}

/// The thumbnail configuration alone (for `sign` and `explain`).
func loadConfiguration(file: String?) async throws -> ServiceConfiguration {
    let reader = try await loadOrExit { try await ConfigurationSource.reader(file: file) }
    return try await loadOrExit { try ServiceConfiguration(reader: reader) }
}

func developmentSecret() -> String {
    SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
}

/// A start-up line on standard output, flushed at once (stdout is block-buffered when it is not a terminal).
func announce(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension PrometheusCollectorRegistry {
    func text() -> String {
        var buffer: [UInt8] = []
        emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
