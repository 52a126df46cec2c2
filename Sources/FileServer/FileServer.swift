import HTTPServing
import Hummingbird
import Logging
import ServiceLifecycle
import ServiceSupport

/// Assembles the file server: the configured store, the responder and the Hummingbird application.
public struct FileServer: Sendable {
    public let configuration: FileServerConfiguration
    public let store: any ComponentStore
    public let removals: any RemovalJournal
    public let events: FileServerEvents
    public let logger: Logger

    public init(configuration: FileServerConfiguration, events: FileServerEvents = FileServerEvents(), logger: Logger) throws {
        self.configuration = configuration
        self.events = events
        self.logger = logger
        store = try configuration.makeStore()
        removals = try configuration.makeRemovalJournal(store: store)
    }

    public var responder: FileResponder {
        FileResponder(configuration: configuration, store: store, removals: removals, events: events, logger: logger)
    }

    /// The HTTP port, guarded by the `files.` limits. `metrics` serves `/metrics`; `accessLog` takes a
    /// line per request.
    public func application(metrics: (@Sendable () -> String)? = nil, accessLog: AccessLog? = nil) -> some ApplicationProtocol {
        let port = ServedPort(service: "files", limits: configuration.limits, refusesBodies: false, route: FileResponder.route,
                              accessLog: accessLog, finished: FileMetrics.record)
        return Application(
            responder: FileResponder(configuration: configuration, store: store, removals: removals, events: events, logger: logger,
                                     metrics: metrics),
            server: .guarded(port),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Pinhole"),
            logger: logger)
    }

    /// Background upkeep of the store: other nodes' crash debris in `.incoming` is swept hourly (this
    /// node's own is swept when it starts).
    public var maintenance: some Service {
        StoreSweeper(store: store as? DiskComponentStore)
    }

}

struct StoreSweeper: Service {
    let store: DiskComponentStore?

    func run() async throws {
        guard let store else { return try await gracefulShutdown() }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(3600))
                store.sweepIncoming()
            }
        }
    }
}
