import HTTPTypes
import Hummingbird
import NIOCore

/// Routes by the raw request target, as Thumbor's tornado routes do: `/healthcheck` first, then the
/// imaging grammar, which matches practically every path. (Hummingbird's router normalises paths,
/// which would change what a signature covers, so the imaging route does not go through it.)
public struct ThumbnailResponder: HTTPResponder {
    public typealias Context = BasicRequestContext
    let imaging: ImagingHandler
    /// Prometheus text for `/metrics`, when the executable exports metrics.
    let metrics: (@Sendable () -> String)?

    public init(imaging: ImagingHandler, metrics: (@Sendable () -> String)? = nil) {
        self.imaging = imaging
        self.metrics = metrics
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let path = ImagingHandler.pathWithoutQuery(request.head.path)
        let readOnly = request.method == .get || request.method == .head
        if path == "/healthcheck" || path == "/healthcheck/" {
            guard readOnly else { return Self.methodNotAllowed() }
            var headers = HTTPFields()
            headers[.cacheControl] = "no-cache"
            headers[.contentType] = "text/plain; charset=utf-8"
            headers[.contentLength] = "7"
            if request.method == .head { return Response(status: .ok, headers: headers) }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "WORKING")))
        }
        if path == "/metrics", let metrics, readOnly {
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics())))
        }
        guard readOnly else { return Self.methodNotAllowed() }
        return await imaging.respond(to: request)
    }

    /// The metric route of a request (`route` label): the health and metrics endpoints, `/meta` documents,
    /// and thumbnails (Thumbor's grammar takes every other path).
    public static func route(method: String, path: Substring) -> String {
        let bare = path.prefix { $0 != "?" }
        if bare == "/healthcheck" || bare == "/healthcheck/" { return "healthcheck" }
        if bare == "/metrics" { return "metrics" }
        // `/<signature>/meta/…` or `/unsafe/meta/…`.
        let segments = bare.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        if segments.count > 2, segments[2] == "meta" || segments[2].hasPrefix("meta/") { return "meta" }
        return "thumbnail"
    }

    static func methodNotAllowed() -> Response {
        var headers = HTTPFields()
        headers[.allow] = "GET, HEAD"
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .methodNotAllowed, headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(string: "method not allowed: use GET or HEAD\n")))
    }
}
