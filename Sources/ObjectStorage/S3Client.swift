import AsyncHTTPClient
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Where an S3-compatible bucket is and how to reach it.
public struct S3Location: Sendable {
    public enum Addressing: String, Sendable, CaseIterable {
        /// `https://endpoint/bucket/key`: MinIO, Ceph RGW, SeaweedFS and most NAS endpoints.
        case path
        /// `https://bucket.endpoint/key`: AWS's default.
        case virtualHost = "virtual"
    }

    public var endpoint: String
    public var bucket: String
    public var region: String
    public var accessKey: String
    public var secretKey: String
    public var addressing: Addressing

    public init(endpoint: String, bucket: String, region: String, accessKey: String, secretKey: String, addressing: Addressing = .path) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.addressing = addressing
    }

    /// Scheme and host of requests, and the canonical path of `key`.
    func target(key: String) -> (base: String, host: String, path: String) {
        let parts = endpoint.split(separator: "://", maxSplits: 1)
        let scheme = parts.count == 2 ? String(parts[0]) : "http"
        var authority = String(parts.count == 2 ? parts[1] : parts[0])
        var prefix = ""
        if let slash = authority.firstIndex(of: "/") {
            prefix = String(authority[slash...])
            authority = String(authority[..<slash])
        }
        let encodedKey = key.isEmpty ? "" : SigV4.encode(key, keepingSlash: true)
        switch addressing {
        case .path:
            return ("\(scheme)://\(authority)", authority, prefix + "/" + SigV4.encode(bucket) + (key.isEmpty ? "" : "/" + encodedKey))
        case .virtualHost:
            let host = bucket + "." + authority
            return ("\(scheme)://\(host)", host, prefix + "/" + encodedKey)
        }
    }
}

/// A failure talking to the object store, by what the caller should do about it.
public enum S3Error: Error, Sendable, CustomStringConvertible {
    /// The store could not be reached, timed out or failed (5xx): retry later.
    case unavailable(String)
    /// The body does not match its Content-MD5 (400 BadDigest).
    case badDigest
    /// A conditional request's condition failed (412).
    case preconditionFailed
    /// The store refused the credentials or the request (4xx other than the above).
    case refused(status: Int, code: String)

    public var description: String {
        switch self {
        case let .unavailable(why): "object store unavailable: \(why)"
        case .badDigest: "object store: body does not match Content-MD5"
        case .preconditionFailed: "object store: precondition failed"
        case let .refused(status, code): "object store refused the request: \(status) \(code)"
        }
    }
}

/// An object's headers.
public struct S3ObjectHead: Sendable {
    public var size: Int64
    public var etag: String
    public var contentType: String?
    public var lastModified: Date?
    /// `x-amz-meta-*` values, by name without the prefix.
    public var metadata: [String: String]
}

/// The few S3 calls a component store needs, signed with SigV4 over AsyncHTTPClient.
public final class S3Client: Sendable {
    public let location: S3Location
    let signer: SigV4
    let http: HTTPClient
    /// Deadline of calls without a streamed response body.
    let timeout: TimeAmount

    /// `timeout` bounds each call; a streamed download instead fails when the store sends nothing for
    /// `timeout` (the client's read timeout), so a large download to a slow client is not cut short.
    public init(location: S3Location, timeout: TimeAmount = .seconds(30)) {
        self.location = location
        self.timeout = timeout
        signer = SigV4(accessKey: location.accessKey, secretKey: location.secretKey, region: location.region)
        http = Self.httpClient(readTimeout: timeout)
    }

    /// One HTTP client per read timeout, for the life of the process (like `HTTPClient.shared`): an
    /// AsyncHTTPClient client must be shut down before it is released, and a store lives as long as
    /// the process anyway.
    static func httpClient(readTimeout: TimeAmount) -> HTTPClient {
        clients.withLockedValue { clients in
            if let client = clients[readTimeout.nanoseconds] { return client }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(5), read: readTimeout)
            configuration.connectionPool = .init(idleTimeout: .seconds(30))
            configuration.decompression = .disabled
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[readTimeout.nanoseconds] = client
            return client
        }
    }

    private static let clients = NIOLockedValueBox<[Int64: HTTPClient]>([:])

    // MARK: Requests

    func request(_ method: HTTPMethod, key: String, query: [(String, String)] = [], headers extra: [(String, String)] = [],
                 payloadHash: String = SigV4.emptyPayloadHash) -> HTTPClientRequest {
        let (base, host, path) = location.target(key: key)
        let now = Date()
        let stamp = SigV4.timestamps(now).stamp
        var signed = extra.map { ($0.0.lowercased(), $0.1) }
        signed += [("host", host), ("x-amz-date", stamp), ("x-amz-content-sha256", payloadHash)]
        let authorization = signer.authorization(method: method.rawValue, path: path, query: query, headers: signed,
                                                 payloadHash: payloadHash, date: now)
        let queryText = query.map { SigV4.encode($0.0) + ($0.1.isEmpty && $0.0 == "uploads" ? "" : "=" + SigV4.encode($0.1)) }
            .joined(separator: "&")
        var request = HTTPClientRequest(url: base + path + (queryText.isEmpty ? "" : "?" + queryText))
        request.method = method
        for (name, value) in signed where name != "host" { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Authorization", value: authorization)
        return request
    }

    func execute(_ request: HTTPClientRequest, deadline: NIODeadline? = nil) async throws(S3Error) -> HTTPClientResponse {
        do {
            return try await http.execute(request, deadline: deadline ?? .now() + timeout)
        } catch {
            throw .unavailable(Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "connection closed"
            default: return String(describing: error)
            }
        }
        let text = String(describing: error)
        return text.contains("connectionRefused") || text.contains("Connection refused") ? "connection refused" : text
    }

    /// Reads a failed response's S3 error code and classifies it.
    func failure(_ response: HTTPClientResponse) async -> S3Error {
        let status = Int(response.status.code)
        let body = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        let code = Self.element("Code", in: body) ?? response.status.reasonPhrase
        if status >= 500 { return .unavailable("\(status) \(code)") }
        if status == 412 { return .preconditionFailed }
        if code == "BadDigest" || code == "InvalidDigest" { return .badDigest }
        return .refused(status: status, code: code)
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    static func head(from headers: HTTPHeaders, size: Int64? = nil) -> S3ObjectHead {
        var metadata: [String: String] = [:]
        for header in headers where header.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(header.name.lowercased().dropFirst("x-amz-meta-".count))] = header.value
        }
        let length = size ?? headers.first(name: "content-length").flatMap(Int64.init) ?? 0
        let modified = headers.first(name: "last-modified").flatMap { Self.httpDate.date(from: $0) }
        return S3ObjectHead(size: length, etag: headers.first(name: "etag") ?? "", contentType: headers.first(name: "content-type"),
                            lastModified: modified, metadata: metadata)
    }

    nonisolated(unsafe) static let httpDate: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }()

    static func md5Base64(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { Data(Insecure.MD5.hash(data: $0)).base64EncodedString() }
    }

    static func sha256Hex(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { SigV4.hex(SHA256.hash(data: $0)) }
    }

    static func metadataHeaders(_ metadata: [String: String]) -> [(String, String)] {
        metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-" + $0.key, $0.value) }
    }

    // MARK: Objects

    /// PUT of a whole object from memory, verified by the store against `Content-MD5`.
    /// `createOnly` sends `If-None-Match: *`: the PUT fails with `.preconditionFailed` if the key exists.
    @discardableResult
    public func put(key: String, body: ByteBuffer, contentType: String, metadata: [String: String] = [:],
                    createOnly: Bool = false) async throws(S3Error) -> String {
        let md5 = Self.md5Base64(body)
        var headers: [(String, String)] = [("content-md5", md5), ("content-type", contentType)] + Self.metadataHeaders(metadata)
        if createOnly { headers.append(("if-none-match", "*")) }
        // Content-MD5 already lets the store verify the body: hashing it again for SigV4 would be a second pass.
        var request = request(.PUT, key: key, headers: headers, payloadHash: SigV4.unsignedPayload)
        request.headers.add(name: "content-length", value: String(body.readableBytes))
        request.body = .bytes(body)
        let response = try await execute(request)
        guard response.status == .ok else { throw await failure(response) }
        return response.headers.first(name: "etag") ?? ""
    }

    /// HEAD: nil when the object does not exist.
    public func head(key: String) async throws(S3Error) -> S3ObjectHead? {
        let response = try await execute(request(.HEAD, key: key))
        if response.status == .notFound { return nil }
        guard response.status == .ok else { throw await failure(response) }
        return Self.head(from: response.headers)
    }

    /// A ranged GET whose body the caller streams (at the caller's pace: AsyncHTTPClient reads the next
    /// chunk only when asked). `ifMatch` makes a replaced object fail (412) rather than mix versions.
    /// nil when the object does not exist.
    public func get(key: String, range: Range<Int64>? = nil, ifMatch: String? = nil) async throws(S3Error) -> HTTPClientResponse.Body? {
        var headers: [(String, String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        if let ifMatch { headers.append(("if-match", ifMatch)) }
        // No overall deadline: the read timeout catches a stalled store; a slow client may take its time.
        let response = try await execute(request(.GET, key: key, headers: headers), deadline: .distantFuture)
        if response.status == .notFound { return nil }
        guard response.status == .ok || response.status == .partialContent else { throw await failure(response) }
        return response.body
    }

    /// The whole object in memory (small objects only).
    public func getData(key: String, limit: Int = 16 << 20) async throws(S3Error) -> ByteBuffer? {
        guard let body = try await get(key: key) else { return nil }
        do { return try await body.collect(upTo: limit) } catch { throw .unavailable(Self.describe(error)) }
    }

    /// DELETE (S3 answers 204 whether or not the key existed).
    public func delete(key: String) async throws(S3Error) {
        let response = try await execute(request(.DELETE, key: key))
        guard response.status == .noContent || response.status == .ok || response.status == .notFound else { throw await failure(response) }
    }

    /// ListObjectsV2: keys under `prefix` after `startAfter`, in order, at most `limit`.
    public func list(prefix: String, startAfter: String? = nil, limit: Int = 1000) async throws(S3Error) -> [String] {
        var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(limit))]
        if let startAfter { query.append(("start-after", startAfter)) }
        let response = try await execute(request(.GET, key: "", query: query))
        guard response.status == .ok else { throw await failure(response) }
        let xml: String
        do { xml = String(buffer: try await response.body.collect(upTo: 16 << 20)) } catch { throw .unavailable(Self.describe(error)) }
        var keys: [String] = []
        var rest = xml[...]
        while let start = rest.range(of: "<Key>"), let end = rest.range(of: "</Key>", range: start.upperBound..<rest.endIndex) {
            keys.append(Self.unescapeXML(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return keys
    }

    static func unescapeXML(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(key: String, contentType: String, metadata: [String: String]) async throws(S3Error) -> String {
        let headers = [("content-type", contentType)] + Self.metadataHeaders(metadata)
        let response = try await execute(request(.POST, key: key, query: [("uploads", "")], headers: headers))
        guard response.status == .ok else { throw await failure(response) }
        let xml: String
        do { xml = String(buffer: try await response.body.collect(upTo: 1 << 20)) } catch { throw .unavailable(Self.describe(error)) }
        guard let id = Self.element("UploadId", in: xml) else { throw .unavailable("no UploadId in the answer") }
        return id
    }

    /// One part (at least 5 MiB except the last), verified against its Content-MD5; its ETag.
    public func uploadPart(key: String, uploadID: String, number: Int, body: ByteBuffer) async throws(S3Error) -> String {
        let md5 = Self.md5Base64(body)
        var request = request(.PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                              headers: [("content-md5", md5)], payloadHash: SigV4.unsignedPayload)
        request.headers.add(name: "content-length", value: String(body.readableBytes))
        request.body = .bytes(body)
        let response = try await execute(request)
        guard response.status == .ok, let etag = response.headers.first(name: "etag") else { throw await failure(response) }
        return etag
    }

    /// Makes the parts one object, atomically. S3 may answer 200 and report an error in the body.
    @discardableResult
    public func completeMultipartUpload(key: String, uploadID: String, parts: [String]) async throws(S3Error) -> String {
        let xml = "<CompleteMultipartUpload>" + parts.enumerated().map { index, etag in
            "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(etag.replacingOccurrences(of: "\"", with: "&quot;"))</ETag></Part>"
        }.joined() + "</CompleteMultipartUpload>"
        let body = ByteBuffer(string: xml)
        var request = request(.POST, key: key, query: [("uploadId", uploadID)],
                              payloadHash: Self.sha256Hex(body))
        request.headers.add(name: "content-length", value: String(body.readableBytes))
        request.body = .bytes(body)
        // Assembling a large object takes the store a while.
        let response = try await execute(request, deadline: .now() + timeout * 10)
        guard response.status == .ok else { throw await failure(response) }
        let answer: String
        do { answer = String(buffer: try await response.body.collect(upTo: 1 << 20)) } catch { throw .unavailable(Self.describe(error)) }
        if answer.contains("<Error>") { throw .unavailable(Self.element("Code", in: answer) ?? "multipart completion failed") }
        return Self.element("ETag", in: answer).map(Self.unescapeXML) ?? ""
    }

    public func abortMultipartUpload(key: String, uploadID: String) async {
        _ = try? await execute(request(.DELETE, key: key, query: [("uploadId", uploadID)]))
    }
}
