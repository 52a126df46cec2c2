import Foundation
import ServiceSupport
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// ftrack's file-server protocol: `PUT /put`, `GET|HEAD /get`, `GET|DELETE|POST /remove`, each taking
/// the component `id` and a `signature`; `OPTIONS` on each answers CORS preflights.
public struct FileResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    let configuration: FileServerConfiguration
    let store: any ComponentStore
    let removals: (any RemovalJournal)?
    let signature: RequestSignature
    let cors: CORSPolicy
    let events: FileServerEvents
    let logger: Logger
    /// Prometheus text for `/metrics`, when the executable exports metrics.
    let metrics: (@Sendable () -> String)?

    public init(configuration: FileServerConfiguration, store: any ComponentStore, removals: (any RemovalJournal)? = nil,
                events: FileServerEvents, logger: Logger, metrics: (@Sendable () -> String)? = nil) {
        self.metrics = metrics
        self.configuration = configuration
        self.store = store
        self.removals = removals
        self.events = events
        self.logger = logger
        signature = RequestSignature(secrets: configuration.secrets, message: configuration.signatureMessage,
                                     requiredParameters: configuration.requiredParameters)
        cors = CORSPolicy(origins: configuration.corsOrigins, maxAge: configuration.corsMaxAge)
    }

    static let methodsByPath: [String: (allowed: [HTTPRequest.Method], preflight: String)] = [
        "/put": ([.put], "PUT, OPTIONS"),
        "/get": ([.get, .head], "GET, HEAD, OPTIONS"),
        "/remove": ([.get, .delete, .post], "GET, POST, DELETE, OPTIONS"),
    ]

    public func respond(to request: Request, context: Context) async throws -> Response {
        let target = request.head.path ?? "/"
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var path = String(pieces[0])
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let query = QueryParameters(raw: pieces.count > 1 ? String(pieces[1]) : "")
        let origin = request.headers[.origin]

        if request.method == .get || request.method == .head {
            if path == "/healthcheck" { return Self.plain("WORKING", isHead: request.method == .head) }
            if path == "/metrics", let metrics { return Self.plain(metrics(), contentType: "text/plain; version=0.0.4", isHead: request.method == .head) }
        }
        var response: Response
        do {
            guard let route = Self.methodsByPath[path] else { throw FileServerError(.notFound, "no such endpoint") }
            if request.method == .options {
                return Response(status: .noContent, headers: cors.preflight(methods: route.preflight, origin: origin))
            }
            guard route.allowed.contains(request.method) else {
                throw FileServerError(.methodNotAllowed, "use \(route.allowed.map(\.rawValue).joined(separator: " or ")) on \(path)")
            }
            guard let rawID = query["id"], !rawID.isEmpty else { throw FileServerError(.badRequest, "missing id") }
            guard let id = ComponentID(rawID) else { throw FileServerError(.badRequest, "invalid component id") }
            try signature.verify(query)
            switch path {
            case "/put": response = try await put(id, request: request)
            case "/get": response = try await get(id, request: request)
            default: response = try await remove(id)
            }
        } catch let error as FileServerError {
            if error.status.code >= 500 {
                logger.error("file request failed", metadata: ["path": .string(path), "error": .string(error.description)])
            } else {
                logger.info("file request refused", metadata: ["path": .string(path), "error": .string(error.description)])
            }
            response = Self.errorResponse(error, isHead: request.method == .head)
        }
        cors.apply(to: &response.headers, origin: origin)
        return response
    }

    // MARK: Upload

    func put(_ id: ComponentID, request: Request) async throws(FileServerError) -> Response {
        var metadata = UploadMetadata(contentType: request.headers[.contentType],
                                      fileName: request.headers[.contentDisposition].flatMap(ContentDisposition.fileName(from:)))
        if let md5 = request.headers[HTTPField.Name("Content-MD5")!] {
            guard let digest = RequestSignature.decodeStandardBase64(md5), digest.count == 16 else {
                throw FileServerError(.badRequest, "malformed Content-MD5")
            }
            metadata.expectedMD5 = digest
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > configuration.maxUploadBytes {
            throw FileServerError(.contentTooLarge, "upload is larger than \(configuration.maxUploadBytes) bytes")
        }
        let record: ComponentRecord
        // nginx sends an empty X-File for a request without a body.
        if let xFile = request.headers[HTTPField.Name("X-File")!], !xFile.isEmpty {
            record = try await store.adopt(id, metadata: metadata, file: try nginxUpload(xFile), maxBytes: configuration.maxUploadBytes)
        } else {
            metadata.expectedSize = request.headers[.contentLength].flatMap(Int64.init)
            record = try await store.put(id, metadata: metadata, body: request.body, maxBytes: configuration.maxUploadBytes)
        }
        logger.info("stored component", metadata: ["id": .string(id.value), "bytes": .stringConvertible(record.size)])
        await events.uploadCommitted(record)
        let type = record.contentType.lowercased()
        if type.hasPrefix("image/") || type.hasPrefix("video/") || type == "application/pdf" || type == "application/mxf" {
            events.publish(.uploaded(id: record.id, contentType: record.contentType, size: record.size, fileName: record.fileName))
        }
        return Self.json(#"{"id": "\#(record.id)", "size": \#(record.size), "md5": "\#(record.md5)"}"#)
    }

    /// The file nginx wrote for this upload, accepted only when enabled and only from below the configured directory.
    func nginxUpload(_ path: String) throws(FileServerError) -> String {
        guard !configuration.nginxUploadDirectory.isEmpty else {
            throw FileServerError(.badRequest, "X-File uploads are not enabled")
        }
        guard let real = Self.realPath(path), let directory = Self.realPath(configuration.nginxUploadDirectory),
              real.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/") else {
            throw FileServerError(.forbidden, "X-File is outside the nginx upload directory")
        }
        return real
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    // MARK: Download

    func get(_ id: ComponentID, request: Request) async throws(FileServerError) -> Response {
        guard let stored = try await store.open(id) else { throw FileServerError.notFound }
        let record = stored.record
        var headers = HTTPFields()
        let etag = "\"\(record.md5)\""
        headers[.contentType] = record.contentType
        headers[.contentDisposition] = ContentDisposition.header(fileName: record.fileName, contentType: record.contentType)
        headers[.eTag] = etag
        headers[.lastModified] = HTTPDate.string(record.uploadedDate)
        headers[.acceptRanges] = "bytes"
        headers[.cacheControl] = "private, max-age=0, must-revalidate"

        if let wanted = request.headers[.ifNoneMatch] {
            if wanted.split(separator: ",").contains(where: { tag in
                let t = tag.trimmingSpaces()
                return t == "*" || t == etag || t == "W/" + etag
            }) {
                await stored.close()
                return Response(status: .notModified, headers: headers)
            }
        } else if let since = request.headers[.ifModifiedSince].flatMap(HTTPDate.parse), record.uploaded <= since.timeIntervalSince1970 {
            await stored.close()
            return Response(status: .notModified, headers: headers)
        }

        if !configuration.accelRedirectPrefix.isEmpty, let relative = store.relativePath(of: record) {
            // nginx serves the bytes (and the ranges) from its internal location over the store root.
            await stored.close()
            var prefix = configuration.accelRedirectPrefix
            if !prefix.hasSuffix("/") { prefix += "/" }
            headers[HTTPField.Name("X-Accel-Redirect")!] = prefix + relative
            return Response(status: .ok, headers: headers)
        }

        var status = HTTPResponse.Status.ok
        var range: Range<Int64> = 0..<record.size
        switch ByteRange.parse(request.headers[.range], size: record.size) {
        case .whole:
            break
        case let .partial(part):
            status = .partialContent
            range = part
            headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound - 1)/\(record.size)"
        case .unsatisfiable:
            await stored.close()
            headers[.contentRange] = "bytes */\(record.size)"
            headers[.contentType] = "text/plain; charset=utf-8"
            let text = "requested range is outside the \(record.size)-byte component\n"
            return Response(status: .rangeNotSatisfiable, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        let length = range.upperBound - range.lowerBound
        headers[.contentLength] = String(length)
        if request.method == .head || length == 0 {
            await stored.close()
            return Response(status: status, headers: headers)
        }
        let streamedRange = range
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: Int(length)) { writer in
            do {
                try await stored.read(streamedRange) { chunk in try await writer.write(chunk) }
            } catch {
                await stored.close()
                throw error
            }
            await stored.close()
            try await writer.finish(nil)
        })
    }

    // MARK: Remove

    func remove(_ id: ComponentID) async throws(FileServerError) -> Response {
        // Journaled first: other nodes purge their caches from the journal (a purge of a component whose
        // removal then fails costs one render), and this node is told at once by the event below.
        try await removals?.record(id.value)
        let existed = try await store.remove(id)
        events.publish(.removed(id: id.value))
        return Self.json(#"{"id": "\#(id.value)", "removed": \#(existed)}"#)
    }

    // MARK: Responses

    static func json(_ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func plain(_ text: String, contentType: String = "text/plain; charset=utf-8", isHead: Bool) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        headers[.contentLength] = String(text.utf8.count)
        return Response(status: .ok, headers: headers, body: isHead ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The metric route of a request (`route` label), from the fixed set of this port's endpoints.
    public static func route(method: String, path: Substring) -> String {
        let bare = path.prefix { $0 != "?" }
        let trimmed = bare.count > 1 && bare.hasSuffix("/") ? bare.dropLast() : bare
        if method == "OPTIONS" { return "preflight" }
        switch trimmed {
        case "/put": return "put"
        case "/get": return "get"
        case "/remove": return "remove"
        case "/healthcheck": return "healthcheck"
        case "/metrics": return "metrics"
        default: return "other"
        }
    }

    static func errorResponse(_ error: FileServerError, isHead: Bool) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        // The object store is down or slow: worth retrying shortly (ftrack's client and browsers do).
        if error.status == .serviceUnavailable { headers[.retryAfter] = "5" }
        let text = error.message + "\n"
        if isHead {
            headers[.contentLength] = String(text.utf8.count)
            return Response(status: error.status, headers: headers)
        }
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

extension RequestSignature {
    static func decodeStandardBase64(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text.trimmingCharacters()).map(Array.init)
    }
}
