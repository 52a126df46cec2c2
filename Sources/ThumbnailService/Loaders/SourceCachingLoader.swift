import NIOCore
import NIOPosix
import ServiceSupport

/// Thumbor's storage slot: fetched originals kept on disk (own size cap), and concurrent fetches of
/// one source shared, so that ten sizes of one component cost one fetch.
public struct SourceCachingLoader: ImageLoader {
    let inner: any ImageLoader
    let cache: DiskCache
    let fetches = Coalescer<LoadedSource>()

    public init(inner: any ImageLoader, cache: DiskCache) {
        self.inner = inner
        self.cache = cache
    }

    public func validate(_ imageURL: String) -> ServiceError? { inner.validate(imageURL) }

    public func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        try await load(imageURL, overlay: false, rangedAbove: .max).wholeBytes
    }

    public func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        try await load(imageURL, overlay: true, rangedAbove: .max).wholeBytes
    }

    /// A source read in ranges (a large video) is not kept: only the bytes a thumbnail needs were read.
    public func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        try await load(imageURL, overlay: false, rangedAbove: rangedAbove)
    }

    /// Sources are megabytes: their disk reads and writes run on NIO's blocking-I/O pool, never on the
    /// event loop the request arrived on.
    func load(_ imageURL: String, overlay: Bool, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        let group = ComponentKey.of(imageURL: imageURL)
        let cache = self.cache
        if let entry = try? await NIOThreadPool.singleton.runIfActive({ cache.get(group: group, key: imageURL) }) {
            return .whole(entry.body)
        }
        do {
            return try await fetches.run(rangedAbove == .max ? imageURL : imageURL + "#ranged") {
                let source = overlay ? LoadedSource.whole(try await inner.loadOverlay(imageURL))
                    : try await inner.loadSource(imageURL, rangedAbove: rangedAbove)
                ServiceMetrics.sourceFetches.increment()
                if case let .whole(bytes) = source {
                    try? await NIOThreadPool.singleton.runIfActive {
                        cache.put(group: group, key: imageURL, contentType: "application/octet-stream", origin: imageURL, body: bytes)
                    }
                }
                return source
            }
        } catch let error as ServiceError {
            throw error
        } catch {
            throw ServiceError(.internalServerError, "source fetch failed", detail: OperatorText.describe(error))
        }
    }
}
