import Hummingbird
import Logging

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

    public func application() -> some ApplicationProtocol {
        Application(
            responder: responder,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Pinhole"),
            logger: logger)
    }
}
