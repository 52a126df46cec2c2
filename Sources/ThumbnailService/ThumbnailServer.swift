import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Vips

/// Assembles the thumbnail service from its configuration: libvips settings, the render pool, the
/// loader chosen by config, and the Hummingbird application.
public struct ThumbnailServer: Sendable {
    public let configuration: ServiceConfiguration
    public let pool: RenderPool
    public let httpClient: HTTPClient
    public let loader: any ImageLoader
    public let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger) throws {
        try VipsRuntime.start(configuration.vips)
        self.configuration = configuration
        self.logger = logger
        pool = RenderPool(threads: configuration.workers > 0 ? configuration.workers : RenderPool.defaultThreads)
        var clientConfiguration = HTTPClient.Configuration()
        // Pinhole follows redirects itself so that every hop is checked against the allow-list.
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(connect: .milliseconds(Int64(configuration.connectTimeout * 1000)),
                                            read: .milliseconds(Int64(configuration.requestTimeout * 1000)))
        httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        loader = Self.makeLoader(configuration, client: httpClient)
    }

    static func makeLoader(_ c: ServiceConfiguration, client: HTTPClient) -> any ImageLoader {
        let file = FileLoader(root: c.fileRoot, maxBytes: c.maxSourceBytes)
        let http = HTTPLoader(client: client, settings: .init(
            allowedHosts: c.allowedHosts, allowAnyHost: c.allowAnyHost, connectTimeout: c.connectTimeout,
            requestTimeout: c.requestTimeout, maxRedirects: c.maxRedirects, maxBytes: c.maxSourceBytes))
        switch c.loader {
        case .file: return file
        case .http: return http
        case .fileThenHTTP: return FileThenHTTPLoader(file: file, http: http)
        }
    }

    public var handler: ImagingHandler {
        ImagingHandler(configuration: configuration, loader: loader, pool: pool, logger: logger)
    }

    public func application() -> some ApplicationProtocol {
        Application(
            responder: ThumbnailResponder(imaging: handler),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Pinhole"),
            logger: logger)
    }

    public func shutdown() async throws {
        try await httpClient.shutdown()
        try await pool.shutdown()
    }
}
