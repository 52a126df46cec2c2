import ServiceSupport
import HTTPServing
import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import ThumborURL
import Vips

/// Assembles the thumbnail service from its configuration: libvips settings, the render pool, the
/// loader chosen by config, and the Hummingbird application.
public struct ThumbnailServer: Sendable {
    public let configuration: ServiceConfiguration
    public let pool: RenderPool
    public let httpClient: HTTPClient
    public let loader: any ImageLoader
    public let resultCache: DiskCache?
    public let sourceCache: DiskCache?
    /// Decode workers for the formats decoded out of process (nil with `decoder_isolation: false`).
    public let decoders: DecoderPool?
    let renders = Coalescer<ImagingHandler.Thumbnail>()
    let admission: AdmissionControl
    public let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger) throws {
        try VipsRuntime.start(configuration.serverVips)
        self.configuration = configuration
        self.logger = logger
        pool = RenderPool(threads: configuration.workers > 0 ? configuration.workers : RenderPool.defaultThreads, name: "render_pool")
        // Read before anything that must be shut down is made: a bad file stops start-up cleanly.
        let resolver: SourceResolver
        do {
            resolver = try SourceResolver(hostsFile: configuration.hostsFile)
        } catch {
            throw ConfigurationError(key: "thumbnails.hosts_file", problem: "cannot read '\(configuration.hostsFile)': \(OperatorText.describe(error))")
        }
        var clientConfiguration = HTTPClient.Configuration()
        // Pinhole follows redirects itself so that every hop is checked against the allow-list.
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(connect: .milliseconds(Int64(configuration.connectTimeout * 1000)),
                                            read: .milliseconds(Int64(configuration.requestTimeout * 1000)))
        httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        resultCache = configuration.resultCache
            ? DiskCache(root: configuration.cacheRoot, capacityBytes: configuration.cacheMaxBytes,
                        expirySeconds: configuration.cacheExpiry, memoryBytes: configuration.cacheMemoryBytes, logger: logger) : nil
        sourceCache = configuration.sourceCache
            ? DiskCache(root: configuration.sourceCacheRoot, capacityBytes: configuration.sourceCacheMaxBytes,
                        expirySeconds: 0, logger: logger) : nil
        admission = AdmissionControl(limit: configuration.renderQueue)
        loader = Self.makeLoader(configuration, clientConfiguration: clientConfiguration, resolver: resolver, sourceCache: sourceCache)
        if configuration.decoders.isolate {
            let decoders = try DecoderPool(settings: configuration.decoders, maxPixels: configuration.render.maxPixels,
                                           maxSourceBytes: configuration.maxSourceBytes, loaderClasses: configuration.workerLoaderClasses,
                                           logger: logger)
            decoders.prestart()
            self.decoders = decoders
        } else {
            decoders = nil
        }
    }

    static func makeLoader(_ c: ServiceConfiguration, clientConfiguration: HTTPClient.Configuration, resolver: SourceResolver,
                           sourceCache: DiskCache?) -> any ImageLoader {
        let file = FileLoader(root: c.fileRoot, maxBytes: c.maxSourceBytes)
        var settings = HTTPLoader.Settings(
            allowedHosts: c.allowedHosts, allowAnyHost: c.allowAnyHost, connectTimeout: c.connectTimeout,
            requestTimeout: c.requestTimeout, maxRedirects: c.maxRedirects, maxBytes: c.maxSourceBytes)
        settings.allowedNetworks = c.allowedNetworks
        settings.resolver = resolver
        let fetcher = HTTPLoader(clientConfiguration: clientConfiguration, settings: settings)
        // Only fetched sources are worth keeping: files are already on local disk.
        let http: any ImageLoader = sourceCache.map { SourceCachingLoader(inner: fetcher, cache: $0) } ?? fetcher
        switch c.loader {
        case .file: return file
        case .http: return http
        case .fileThenHTTP: return FileThenHTTPLoader(file: file, http: http)
        }
    }

    public var handler: ImagingHandler {
        ImagingHandler(configuration: configuration, loader: loader, pool: pool, cache: resultCache, renders: renders,
                       admission: admission, decoders: decoders, logger: logger)
    }

    /// What a pre-warm of one size did.
    public enum PrewarmOutcome: Sendable, Equatable {
        case rendered, cached
        case failed(String)
    }

    /// Renders `sizes` (Thumbor option parts, e.g. `fit-in/300x300`) of a source into the result cache,
    /// through the same admission, coalescing and cache as requests, signing as ftrack would.
    public func prewarm(imageURL: String, sizes: [String]) async -> [PrewarmOutcome] {
        guard let key = configuration.securityKeys.first else { return sizes.map { _ in .failed("no signing key") } }
        var outcomes: [PrewarmOutcome] = []
        for size in sizes {
            let signed = size + "/" + imageURL
            let rawPath = "/" + URLSigner(key: key).signature(for: signed) + "/" + signed
            do {
                let authorised = try handler.authorise(rawPath: rawPath)
                let (_, hit) = try await handler.thumbnail(for: authorised, onlyIfCached: false)
                outcomes.append(hit ? .cached : .rendered)
            } catch let error as ServiceError {
                outcomes.append(.failed(error.message))
            } catch {
                outcomes.append(.failed(OperatorText.describe(error)))
            }
        }
        return outcomes
    }

    /// Renders `options` (a Thumbor path before the image, such as `fit-in/1024x1024/filters:format(jpeg)`)
    /// of `imageURL` (percent-encoded) as a thumbnail request would, through the cache; throws `ServiceError`.
    public func render(imageURL: String, options: String) async throws -> [UInt8] {
        guard let key = configuration.securityKeys.first else { throw ServiceError(.internalServerError, "no signing key") }
        let signed = options + "/" + imageURL
        let authorised = try handler.authorise(rawPath: "/" + URLSigner(key: key).signature(for: signed) + "/" + signed)
        let (thumbnail, _) = try await handler.thumbnail(for: authorised, onlyIfCached: false)
        return Array(thumbnail.body.readableBytesView)
    }

    /// Drops a removed component's cached thumbnails and source (the file server's remove hook).
    @discardableResult public func purge(component: String) -> Int {
        (resultCache?.purge(group: component) ?? 0) + (sourceCache?.purge(group: component) ?? 0)
    }

    /// The HTTP port, guarded by the `thumbnails.` limits. `metrics` serves `/metrics`; `accessLog` takes a
    /// line per request (cache fast-path hits included).
    public func application(metrics: (@Sendable () -> String)? = nil, accessLog: AccessLog? = nil) -> some Service {
        let port = ServedPort(service: "thumbnails", limits: configuration.limits, refusesBodies: true, route: ThumbnailResponder.route,
                              cacheStatusField: ImagingHandler.cacheStatusField, accessLog: accessLog)
        let handler = self.handler
        let application = Application(
            responder: ThumbnailResponder(imaging: handler, metrics: metrics),
            server: .guarded(port, additionalChannelHandlers: { [CacheHitFastPath(imaging: handler)] }),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: ImagingHandler.serverName),
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            logger: logger)
        return PreferringExecutor(inner: application, executor: EventLoopExecutor(group: MultiThreadedEventLoopGroup.singleton))
    }

    public func shutdown() async throws {
        resultCache?.quiesce()
        sourceCache?.quiesce()
        decoders?.shutdown()
        try await httpClient.shutdown()
        try await pool.shutdown()
    }
}
