import Foundation
import ServiceSupport
import HTTPTypes
import Hummingbird
import Imaging
import Logging
import NIOCore
import NIOPosix
import ThumborURL
import Vips

/// The imaging route: URL → request → signature → result cache → (coalesced, admitted, with a
/// deadline) load → render on the pool → cache → response.
public struct ImagingHandler: Sendable {
    let configuration: ServiceConfiguration
    let verifier: SignatureVerifier
    let loader: any ImageLoader
    let pool: RenderPool
    let cache: DiskCache?
    let renders: Coalescer<Thumbnail>
    let admission: AdmissionControl
    let decodeBudget: DecodeBudget
    /// Where PSD, DPX, PDF, SVG and EXR sources are decoded (nil: in this process).
    let decoders: DecoderPool?
    let authorisedPaths = BoundedMemo<Authorised>(capacity: 2_000)
    let expires = HTTPDateClock()
    let cacheControl: String
    static let cacheStatusField = HTTPField.Name("X-Pinhole-Cache")!
    /// The `Server` header of every response.
    static let serverName = "Pinhole"
    static let overlayFetchField = HTTPField.Name(overlayFetchHeader)!
    let logger: Logger

    public init(configuration: ServiceConfiguration, loader: any ImageLoader, pool: RenderPool, cache: DiskCache?,
                renders: Coalescer<Thumbnail> = Coalescer(), admission: AdmissionControl? = nil, decoders: DecoderPool? = nil,
                logger: Logger) {
        self.decoders = decoders
        self.configuration = configuration
        self.verifier = SignatureVerifier(keys: configuration.securityKeys)
        self.loader = loader
        self.pool = pool
        self.cache = cache
        self.renders = renders
        self.admission = admission ?? AdmissionControl(limit: configuration.renderQueue)
        self.decodeBudget = DecodeBudget(limitBytes: configuration.decodeMemoryBytes)
        self.logger = logger
        self.cacheControl = "max-age=\(configuration.maxAge),public"
    }

    /// A parsed and authorised request.
    struct Authorised: Sendable {
        var rawPath: String
        var request: ThumborRequest
        /// The component the request's source belongs to (for purges).
        var group: String
        /// Where its result is cached; nil when it is not cached (no cache, or unsafe and not configured).
        var cacheAddress: CacheAddress?
        /// Accept can change the output format (AUTO_WEBP/AUTO_AVIF on, no format() filter, not /meta).
        var negotiable: Bool
        /// Cache addresses of the negotiated variants (WebP, AVIF), keyed by format.
        var variantAddresses: [ImageFormat: CacheAddress] = [:]

        /// Where the result for `variant` (the negotiated format, nil when none) is cached, if it is.
        func cacheAddress(variant: ImageFormat?) -> CacheAddress? {
            guard let variant else { return cacheAddress }
            return variantAddresses[variant]
        }
    }

    /// Spec §3 step 1: route + decode, loader validation, unsafe/hash gate, signature. A path that passed
    /// is remembered (the outcome depends only on the path and the configured keys), so a hot
    /// thumbnail's repeat requests skip the grammar and the HMAC.
    func authorise(rawPath: String) throws(ServiceError) -> Authorised {
        if let known = authorisedPaths.get(rawPath) { return known }
        let authorised = try authoriseUncached(rawPath: rawPath)
        authorisedPaths.put(rawPath, authorised)
        return authorised
    }

    func authoriseUncached(rawPath: String) throws(ServiceError) -> Authorised {
        let request: ThumborRequest
        do {
            request = try ThumborPath.parse(rawPath)
        } catch {
            switch error {
            case .invalidUTF8: throw ServiceError.invalidUTF8
            case .noImage: throw ServiceError.noImage
            }
        }
        if let problem = loader.validate(request.imageURL) { throw problem }
        if request.unsafe {
            guard configuration.allowUnsafe else { throw ServiceError.unsafeDisabled }
        } else {
            guard request.hash != nil else { throw ServiceError.noSignature }
            guard verifier.isValid(rawPath: rawPath, request: request) else { throw ServiceError.badSignature }
        }
        let group = ComponentKey.of(imageURL: request.imageURL)
        let cached = (request.unsafe && !configuration.cacheUnsafe) ? nil : cache
        let negotiable = configuration.negotiation.applies(
            to: ThumborRequestSummary(hasFormatFilter: request.filterCalls.contains { $0.name == "format" }, meta: request.meta))
        var authorised = Authorised(rawPath: rawPath, request: request, group: group,
                                    cacheAddress: cached?.address(group: group, key: Self.cacheKey(rawPath: rawPath)),
                                    negotiable: negotiable)
        if negotiable, let cached {
            for format in [ImageFormat.webp, .avif] {
                authorised.variantAddresses[format] = cached.address(group: group, key: Self.cacheKey(rawPath: rawPath, variant: format))
            }
        }
        return authorised
    }

    public func respond(to request: Request) async -> Response {
        let rawPath = Self.pathWithoutQuery(request.head.path)
        let isHead = request.method == .head
        do {
            let authorised = try authorise(rawPath: rawPath)
            if request.headers[Self.overlayFetchField] != nil,
               authorised.request.filterCalls.contains(where: { $0.name == "watermark" || $0.name == "frame" }) {
                // A watermark or frame image that itself asks for overlays: refusing ends self-references.
                throw ServiceError(.badRequest, "an overlay image cannot itself carry watermark() or frame()")
            }
            let onlyIfCached = request.headers[.cacheControl]?.lowercased().contains("only-if-cached") ?? false
            let variant = authorised.negotiable ? configuration.negotiation.format(accept: request.headers[.accept]) : nil
            var (thumbnail, hit) = try await thumbnail(for: authorised, variant: variant, onlyIfCached: onlyIfCached)
            if authorised.request.meta {
                thumbnail = try jsonp(thumbnail, callback: request.uri.queryParameters.get("callback"))
            }
            let (head, body) = response(to: thumbnail, requestHeaders: request.headers, isHead: isHead,
                                        cacheStatus: hit ? "hit" : "miss", negotiable: authorised.negotiable)
            return Response(status: head.status, headers: head.headerFields, body: body.map { ResponseBody(byteBuffer: $0) } ?? ResponseBody())
        } catch let error as ServiceError where error.isNotCached {
            // A cache probe's answer (pre-warm asks before rendering), not a failure: no warning, no deadline counted.
            logger.debug("not cached", metadata: ["path": .string(rawPath)])
            return Self.errorResponse(error, isHead: isHead)
        } catch let error as ServiceError {
            if error.status == .tooManyRequests { ServiceMetrics.rejected.increment() }
            if error.status == .gatewayTimeout { ServiceMetrics.deadlines.increment() }
            logger.warning("thumbnail failed", metadata: ["path": .string(rawPath), "status": .stringConvertible(error.status.code),
                                                          "error": .string(error.description)])
            return Self.errorResponse(error, isHead: isHead)
        } catch {
            logger.error("thumbnail failed", metadata: ["path": .string(rawPath), "error": .string(OperatorText.describe(error))])
            return Self.errorResponse(ServiceError(.internalServerError, "internal error"), isHead: isHead)
        }
    }

    /// The request target's path part (everything before `?`).
    static func pathWithoutQuery(_ target: String?) -> String {
        guard let target else { return "/" }
        guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        return String(target[..<question])
    }

    /// Encoded output (or `/meta` JSON) and its Content-Type.
    public struct Thumbnail: Sendable {
        var body: ByteBuffer
        var contentType: String
        /// The body's SHA-1 hex when already known (cache hits carry it), so the ETag is not recomputed.
        var sha1: String?
        /// The `max_age()` filter's seconds, replacing the configured max-age (0: no Cache-Control).
        var maxAge: Int?
        /// False when Accept cannot change this answer (an animated GIF stays a GIF): no `Vary: Accept`.
        var variesWithAccept = true
    }

    /// The result cache's key for a request: the signed path as sent (query excluded), plus the
    /// negotiated format when Accept chose one.
    static func cacheKey(rawPath: String, variant: ImageFormat? = nil) -> String {
        variant.map { rawPath + "#" + $0.rawValue } ?? rawPath
    }

    /// `/meta` as JSONP when the URL (`?callback=`) or the configuration names a callback.
    func jsonp(_ thumbnail: Thumbnail, callback: String?) throws(ServiceError) -> Thumbnail {
        let name = callback ?? (configuration.metaCallbackName.isEmpty ? nil : configuration.metaCallbackName)
        guard let name else { return thumbnail }
        guard JSONPCallback.isValid(name) else {
            throw ServiceError(.badRequest, "callback must be a JavaScript identifier (letters, digits, _ and $, dotted)")
        }
        var wrapped = thumbnail
        wrapped.body = ByteBuffer(string: JSONPCallback.wrap(String(buffer: thumbnail.body), in: name))
        wrapped.contentType = "text/javascript; charset=utf-8"
        wrapped.sha1 = nil
        return wrapped
    }

    /// Entries this large are read and checked (SHA-1) on a thread pool rather than on the event loop.
    static let inlineReadLimit = 64 << 10

    /// A result-cache hit. Memory hits and small entries (page-cached files; a hop to a thread pool would cost
    /// more than the read) are answered on the event loop; a large entry's read and SHA-1 check take
    /// milliseconds per megabyte, during which the loop would answer nothing else (a health check included).
    private func cachedEntry(_ cache: DiskCache, _ address: CacheAddress) async throws -> CacheEntry? {
        if let entry = cache.memoryHit(address) { return entry }
        guard let size = cache.storedBytes(address), size > Self.inlineReadLimit else { return cache.diskEntry(address) }
        return try await NIOThreadPool.singleton.runIfActive { cache.diskEntry(address) }
    }

    /// From the cache without touching libvips, or rendered once however many ask at the same moment.
    func thumbnail(for authorised: Authorised, variant: ImageFormat? = nil, onlyIfCached: Bool) async throws -> (Thumbnail, hit: Bool) {
        let request = authorised.request
        let address = authorised.cacheAddress(variant: variant)
        let cache = address == nil ? nil : self.cache
        if let cache, let address, let entry = try await cachedEntry(cache, address) {
            ServiceMetrics.cacheHits.increment()
            return (Thumbnail(entry), true)
        }
        if cache != nil { ServiceMetrics.cacheMisses.increment() }
        if onlyIfCached { throw ServiceError.notCached }
        let filters = ThumborFilter.parseList(request.filters ?? "", enabled: configuration.render.enabledFilters)
        let limit = Duration.milliseconds(Int64(configuration.requestDeadline * 1000))
        let deadline = ContinuousClock.now + limit
        let coalescingKey = configuration.coalesce ? Self.cacheKey(rawPath: authorised.rawPath, variant: variant) : UUID().uuidString
        let thumbnail = try await withDeadline(limit) {
            try await renders.run(coalescingKey) {
                try await admission.admit {
                    var request = request
                    var extracted: [FocalPoint] = []
                    if filters.contains(.extractFocal), let found = ExtractFocal.resolve(image: request.image) {
                        request.image = found.image
                        if let problem = loader.validate(request.imageURL) { throw problem }
                        let c = found.crop
                        extracted = [FocalPoint.fromSquare(x: c.left, y: c.top, width: c.right - c.left, height: c.bottom - c.top,
                                                           origin: .extraction)]
                    }
                    // A large MP4 or MOV is read in ranges when a decode worker can take its frame from an excerpt.
                    let source = try await loader.loadSource(request.imageURL, rangedAbove: decoders == nil ? .max : configuration.videoRangedAbove)
                    let overlays = try await loadOverlays(filters)
                    // `still(pos)` picks a video's frame (the last one given wins).
                    let still = filters.compactMap { filter -> String? in
                        if case let .still(position) = filter { return position }
                        return nil
                    }.last
                    let thumbnail: Thumbnail
                    let renderStarted = ContinuousClock.now
                    let format: String
                    switch source {
                    case let .whole(bytes):
                        format = bytes.withUnsafeReadableBytes(SourceFormat.label)
                        thumbnail = try await render(request, source: bytes, outputFormat: variant, deadline: deadline,
                                                     overlays: overlays, extracted: extracted, still: still)
                    case let .ranged(ranged):
                        format = "video"
                        let decoded = try await excerpt(ranged, imageURL: request.imageURL, still: still, facts: request.meta)
                        thumbnail = try await render(request, decoded: decoded, outputFormat: variant, deadline: deadline,
                                                     overlays: overlays, extracted: extracted)
                    }
                    ServiceMetrics.renders.increment()
                    ServiceMetrics.renderDuration(format: format).record(duration: ContinuousClock.now - renderStarted)
                    if let cache, let address {
                        // The write (a file and a rename) runs off the event loop.
                        try? await NIOThreadPool.singleton.runIfActive {
                            cache.put(address, contentType: thumbnail.contentType, origin: authorised.rawPath, body: thumbnail.body,
                                      maxAge: thumbnail.maxAge, fixedFormat: thumbnail.variesWithAccept ? nil : true)
                        }
                        ServiceMetrics.cacheDegraded.record(cache.isDegraded ? 1 : 0)
                    }
                    return thumbnail
                }
            }
        }
        return (thumbnail, false)
    }

    /// Overlays are decoded whole; a small file can still claim gigapixels (a decompression bomb).
    static let maxOverlayPixels = 16 * 1024 * 1024

    /// The images `watermark()` and `frame()` name, loaded through the same loader and allow-list as
    /// sources. A URL that is not allowed, cannot be loaded or is not an image is the client's error.
    func loadOverlays(_ filters: [ThumborFilter]) async throws(ServiceError) -> [String: [UInt8]] {
        var overlays: [String: [UInt8]] = [:]
        for filter in filters {
            let url: String
            switch filter {
            case let .watermark(u, _, _, _, _, _): url = u
            case let .frame(u): url = u
            default: continue
            }
            guard overlays[url] == nil else { continue }
            let name = filter.name
            if let problem = loader.validate(url) {
                throw ServiceError(.badRequest, "\(name) image not allowed: \(problem.message)")
            }
            var bytes: ByteBuffer
            do {
                bytes = try await loader.loadOverlay(url)
            } catch {
                throw ServiceError(error.status == .tooManyRequests ? .tooManyRequests : .badRequest,
                                   "\(name) image could not be loaded: \(error.message)", detail: error.detail)
            }
            let array = bytes.readBytes(length: bytes.readableBytes) ?? []
            if decoders != nil, array.withUnsafeBytes({ IsolatedDecoding.format(of: $0) }) != nil {
                // Overlays are decoded in this process: only the formats decoded here may be overlays.
                throw ServiceError(.badRequest, "\(name) image must be JPEG, PNG, WebP, GIF, TIFF, AVIF or JPEG XL")
            }
            guard let header = try? array.withUnsafeBytes({ try Image.header(of: $0) }) else {
                throw ServiceError(.badRequest, "\(name) image is not an image Pinhole can read")
            }
            guard header.width * header.height <= Self.maxOverlayPixels else {
                throw ServiceError(.badRequest, "\(name) image is \(header.width)x\(header.height), over the \(Self.maxOverlayPixels)-pixel overlay limit")
            }
            overlays[url] = array
        }
        return overlays
    }

    func render(_ request: ThumborRequest, source: ByteBuffer, outputFormat: ImageFormat? = nil,
                deadline: ContinuousClock.Instant? = nil, overlays: [String: [UInt8]] = [:],
                extracted: [FocalPoint] = [], still: String? = nil) async throws -> Thumbnail {
        let settings = configuration.render
        let budget = decodeBudget
        let decoders = self.decoders
        if let decoders, source.withUnsafeReadableBytes({ IsolatedDecoding.format(of: $0) }) != nil {
            // Decoded by a worker process, waited for off the render threads (which meanwhile render
            // other requests, the pixels of other workers among them); the rest of the plan runs here.
            let shrink = ShrinkHint(request: request)
            let decoded = try await decoders.waiting.run { () -> Result<IsolatedDecoding.Decoded, RenderError> in
                source.withUnsafeReadableBytes { bytes in
                    Result { () throws(RenderError) in try decoders.decode(bytes, still: still, shrink: shrink, facts: request.meta) }
                }
            }
            switch decoded {
            case let .success(decoded):
                return try await render(request, decoded: decoded, outputFormat: outputFormat, deadline: deadline,
                                        overlays: overlays, extracted: extracted)
            case let .failure(error):
                throw Self.serviceError(for: error)
            }
        }
        let outcome: Result<(Rendered, VideoFacts?), RenderError> = try await pool.run {
            source.withUnsafeReadableBytes { bytes in
                Result { () throws(RenderError) in
                    (try Renderer.render(bytes, request: request, settings: settings, outputFormat: outputFormat,
                                         deadline: deadline, budget: budget, overlays: overlays, extracted: extracted), nil)
                }
            }
        }
        return try thumbnail(from: outcome, request: request)
    }

    /// The rest of the plan on pixels a worker decoded.
    func render(_ request: ThumborRequest, decoded: IsolatedDecoding.Decoded, outputFormat: ImageFormat?,
                deadline: ContinuousClock.Instant?, overlays: [String: [UInt8]], extracted: [FocalPoint]) async throws -> Thumbnail {
        let settings = configuration.render
        let budget = decodeBudget
        let outcome: Result<(Rendered, VideoFacts?), RenderError> = try await pool.run {
            Result { () throws(RenderError) in
                (try Self.render(decoded, request: request, settings: settings, outputFormat: outputFormat, deadline: deadline,
                                 budget: budget, overlays: overlays, extracted: extracted), decoded.video)
            }
        }
        return try thumbnail(from: outcome, request: request)
    }

    /// The frame of a large video read in ranges (`VideoExcerptReader`), logged with the bytes it took.
    func excerpt(_ source: RangedSource, imageURL: String, still: String?, facts: Bool) async throws -> IsolatedDecoding.Decoded {
        guard let decoders else { throw ServiceError(.badRequest, "source is larger than \(configuration.maxSourceBytes) bytes") }
        let started = ContinuousClock.now
        do {
            let reader = VideoExcerptReader(source: source, decoders: decoders, key: imageURL + "#\(source.length)")
            let (decoded, bytesRead) = try await reader.decode(still: still, facts: facts)
            logger.info("video read in ranges", metadata: [
                "source_bytes": .stringConvertible(source.length), "bytes_read": .stringConvertible(bytesRead),
                "seconds": .string(String(format: "%.3f", (ContinuousClock.now - started) / .seconds(1)))])
            return decoded
        } catch let error as RenderError {
            throw Self.serviceError(for: error)
        }
    }

    func thumbnail(from outcome: Result<(Rendered, VideoFacts?), RenderError>, request: ThumborRequest) throws(ServiceError) -> Thumbnail {
        switch outcome {
        case let .success((rendered, video)):
            if request.meta {
                let json = MetaDocument.json(for: rendered.plan, imageURL: request.imageURL, frameCount: video?.frameCount ?? rendered.plan.header.pages,
                                             served: rendered.outputSize, video: video)
                return Thumbnail(body: ByteBuffer(string: json), contentType: "application/json", maxAge: rendered.plan.maxAge)
            }
            let type = MimeSniffer.mimeType(of: rendered.bytes) ?? rendered.format.mimeType
            return Thumbnail(body: ByteBuffer(bytes: rendered.bytes), contentType: type, maxAge: rendered.plan.maxAge,
                             variesWithAccept: rendered.plan.formatFollowsAccept)
        case let .failure(error):
            throw Self.serviceError(for: error)
        }
    }

    static func render(_ decoded: IsolatedDecoding.Decoded, request: ThumborRequest, settings: RenderSettings,
                       outputFormat: ImageFormat?, deadline: ContinuousClock.Instant?, budget: DecodeBudget,
                       overlays: [String: [UInt8]], extracted: [FocalPoint]) throws(RenderError) -> Rendered {
        let result = decoded.tiff.withUnsafeBytes { bytes in
            Result { () throws(RenderError) in
                try Renderer.render(bytes, request: request, settings: settings, outputFormat: outputFormat, deadline: deadline,
                                    budget: budget, overlays: overlays, extracted: extracted, decodedBy: decoded.loader,
                                    sourceSize: decoded.sourceSize)
            }
        }
        return try result.get()
    }

    static func serviceError(for error: RenderError) -> ServiceError {
        switch error {
        case .notAnImage: return ServiceError(.badRequest, error.description)
        case let .undecodable(vips): return ServiceError(.badRequest, error.description, detail: vips.description)
        case .plan: return ServiceError(.badRequest, error.description)
        case let .processing(vips): return ServiceError(.internalServerError, error.description, detail: vips.description)
        case .deadlineExceeded: return ServiceError(.gatewayTimeout, error.description)
        case .unsupported, .decoderFailed, .workerRefused: return ServiceError(.badRequest, error.description)
        }
    }

    /// The response to a thumbnail: its head, and its body unless there is none (HEAD, 304). Depends on
    /// the request's headers alone, so the cache-hit fast path (`CacheHitFastPath`) answers identically.
    func response(to thumbnail: Thumbnail, requestHeaders: HTTPFields, isHead: Bool, cacheStatus: String,
                  negotiable: Bool) -> (HTTPResponse, ByteBuffer?) {
        var headers = HTTPFields()
        headers[.contentType] = thumbnail.contentType
        headers[Self.cacheStatusField] = cacheStatus
        let maxAge = thumbnail.maxAge ?? configuration.maxAge
        if maxAge > 0 {
            headers[.cacheControl] = maxAge == configuration.maxAge ? cacheControl : "max-age=\(maxAge),public"
            headers[.expires] = expires.string(secondsFromNow: maxAge)
        }
        if !configuration.corsOrigin.isEmpty { headers[.accessControlAllowOrigin] = configuration.corsOrigin }
        if negotiable && thumbnail.variesWithAccept && thumbnail.contentType.hasPrefix("image/") { headers[.vary] = "Accept" }
        if configuration.etags {
            let etag = thumbnail.sha1.map { "\"\($0)\"" } ?? EntityTag.of(thumbnail.body)
            headers[.eTag] = etag
            if let wanted = requestHeaders[.ifNoneMatch], EntityTag.matches(ifNoneMatch: wanted, etag: etag) {
                return (HTTPResponse(status: .notModified, headerFields: headers), nil)
            }
        }
        headers[.contentLength] = String(thumbnail.body.readableBytes)
        return (HTTPResponse(status: .ok, headerFields: headers), isHead ? nil : thumbnail.body)
    }

    /// A plain GET whose thumbnail is in the result cache's memory layer, answered synchronously on the
    /// event loop; nil for everything else (disk-only hits, misses, errors, HEAD, /meta, overlay fetches,
    /// `Connection` values other than `keep-alive`), which goes through Hummingbird and `respond(to:)` as
    /// usual. (`Connection: keep-alive`, which browsers and most clients send, changes nothing in HTTP/1.1
    /// and nothing in what Hummingbird answers: only `close` needs Hummingbird's connection handling.)
    func cachedResponse(to head: HTTPRequest) -> (HTTPResponse, ByteBuffer?)? {
        guard head.method == .get, let target = head.path, !target.utf8.contains(UInt8(ascii: "?")),
              target != "/healthcheck", target != "/healthcheck/", target != "/metrics",
              head.headerFields[.connection].map({ $0.lowercased() == "keep-alive" }) ?? true,
              head.headerFields[Self.overlayFetchField] == nil,
              let cache, let authorised = try? authorise(rawPath: target), !authorised.request.meta else { return nil }
        let variant = authorised.negotiable ? configuration.negotiation.format(accept: head.headerFields[.accept]) : nil
        guard let address = authorised.cacheAddress(variant: variant),
              let entry = cache.memoryHit(address) else { return nil }
        ServiceMetrics.cacheHits.increment()
        ServiceMetrics.fastPathHits.increment()
        let thumbnail = Thumbnail(entry)
        var (head, body) = response(to: thumbnail, requestHeaders: head.headerFields, isHead: false, cacheStatus: "hit",
                                    negotiable: authorised.negotiable)
        // What Hummingbird adds to every response it writes.
        head.headerFields[.date] = expires.string(secondsFromNow: 0)
        head.headerFields[.server] = Self.serverName
        return (head, body)
    }

    /// Every error: its status and a short plain-text line saying what was wrong.
    static func errorResponse(_ error: ServiceError, isHead: Bool) -> Response {
        let text = error.message + "\n"
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.contentLength] = String(text.utf8.count)
        if error.status == .tooManyRequests { headers[.retryAfter] = "1" }
        if isHead { return Response(status: error.status, headers: headers) }
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

extension ImagingHandler.Thumbnail {
    /// A result-cache entry, answered with the headers its first response had.
    init(_ entry: CacheEntry) {
        self.init(body: entry.body, contentType: entry.metadata.contentType, sha1: entry.metadata.sha1,
                  maxAge: entry.metadata.maxAge, variesWithAccept: entry.metadata.fixedFormat != true)
    }
}
