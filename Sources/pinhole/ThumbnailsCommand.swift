import ArgumentParser
import FileServer
import Foundation
import Metrics
import Prometheus
import ServiceLifecycle
import ServiceSupport
import ThumbnailService

/// The thumbnail service alone: in production each service runs as its own process (its own systemd
/// unit), so that a crash or an overload of one cannot take the other down. Removals reach this
/// process through the shared removal journal (the `files` section locates it), as they reach every
/// node of a cluster.
struct Thumbnails: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the thumbnail service alone.")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        restartWithHugePageTunable()
        limitMallocArenas()
        let reader = try await options.reader()
        let (logger, accessLog) = try await options.logging(reader)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var thumbnails = try await loadOrExit { try ServiceConfiguration(reader: reader) }
        let files = try await loadOrExit { try FileServerConfiguration(reader: reader) }
        let cluster = try await loadOrExit { try ClusterConfiguration(reader: reader) }
        if thumbnails.securityKeys.isEmpty {
            let key = developmentSecret()
            thumbnails.securityKeys = [key]
            announce("pinhole: no thumbnails.security_keys configured; development key for this run: \(key)")
        }
        try FileManager.default.createDirectory(atPath: thumbnails.fileRoot, withIntermediateDirectories: true)
        let thumbnailServer = try await loadOrExit { try ThumbnailServer(configuration: thumbnails, logger: logger) }
        announce("pinhole: thumbnails on http://\(thumbnails.host):\(thumbnails.port) (loader: \(thumbnails.loader.rawValue), root: \(thumbnails.fileRoot))")
        var services: [any Service] = [thumbnailServer.application(metrics: { registry.text() }, accessLog: accessLog), FreeMemoryRelease()]
        do {
            let journal = try files.makeRemovalJournal(store: try files.makeStore(sweeping: false))
            services.append(RemovalWatcher(journal: journal, thumbnails: thumbnailServer, cursorFile: thumbnails.cacheRoot + "/removals.cursor",
                                           configuration: cluster, logger: logger))
        } catch {
            logger.warning("no removal journal: removed components keep their cached thumbnails until they expire",
                           metadata: ["error": .string(OperatorText.describe(error))])
        }
        let group = ServiceGroup(configuration: .graceful(services: services, grace: thumbnails.limits.shutdownGrace, logger: logger))
        do {
            try await group.run()
        } catch {
            try? await thumbnailServer.shutdown()
            throw error
        }
        try await thumbnailServer.shutdown()
        accessLog?.flush()
    }
}
