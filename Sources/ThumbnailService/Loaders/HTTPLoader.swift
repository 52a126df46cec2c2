import AsyncHTTPClient
import Foundation
import Imaging
import NIOCore
import NIOHTTP1
import ServiceSupport
import ThumborURL

/// Thumbor's http_loader on AsyncHTTPClient. Every hop of a redirect chain is checked against the host
/// allow-list (so a redirect cannot reach a host the URL itself could not), and the body size limit is
/// enforced while streaming.
///
/// SSRF: a host not named in `allowed_hosts` (fetched because `allow_any_host` is on) must resolve to a
/// public address, or to one inside `allowed_networks`. Pinhole resolves each hop's host itself, checks
/// the addresses, and connects to the address it checked (the client is pinned to it), so a name that
/// resolves differently a moment later (DNS rebinding) has no window. Hosts spelled as obfuscated IPv4
/// numbers (`2130706433`, `0x7f.1`, `0177.0.0.1`) are refused.
public struct HTTPLoader: ImageLoader {
    public struct Settings: Sendable {
        public var allowedHosts: [String]
        public var allowAnyHost: Bool
        /// Ranges a host not named in `allowedHosts` may still resolve to (the studio's own networks).
        public var allowedNetworks: [AddressRange] = []
        public var resolver = try! SourceResolver()
        public var connectTimeout: Double
        public var requestTimeout: Double
        public var maxRedirects: Int
        public var maxBytes: Int
        public var userAgent = "Pinhole"

        public init(allowedHosts: [String], allowAnyHost: Bool, connectTimeout: Double, requestTimeout: Double, maxRedirects: Int, maxBytes: Int) {
            self.allowedHosts = allowedHosts.map { $0.lowercased() }
            self.allowAnyHost = allowAnyHost
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxRedirects = maxRedirects
            self.maxBytes = maxBytes
        }
    }

    /// The configuration each hop's client is made from (timeouts; redirects off: they are followed here).
    let clientConfiguration: HTTPClient.Configuration
    let settings: Settings

    public init(clientConfiguration: HTTPClient.Configuration, settings: Settings) {
        self.clientConfiguration = clientConfiguration
        self.settings = settings
    }

    /// Thumbor's `quote_url`: `http://` is prefixed when the key does not start with `http`, and the URL is
    /// re-encoded only if it has nothing left to decode.
    public static func fetchURL(for imageURL: String) -> String {
        let unquoted = PercentEncoding.decode(imageURL) ?? imageURL
        let encoded = unquoted == (PercentEncoding.decode(unquoted) ?? unquoted)
            ? PercentEncoding.quote(unquoted, safe: "~@#$&()*!+=:;,.?/'") : unquoted
        return encoded.hasPrefix("http") ? encoded : "http://" + encoded
    }

    public func validate(_ imageURL: String) -> ServiceError? {
        hostProblem(URL(string: Self.fetchURL(for: imageURL)))
    }

    func hostProblem(_ url: URL?) -> ServiceError? {
        guard let url, let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host?.lowercased(), !host.isEmpty else {
            return ServiceError(.badRequest, "source URL has no host")
        }
        if isNamedInAllowList(host) { return nil }
        if SourceAddress.isObfuscatedIPv4(host) {
            return ServiceError(.badRequest, "source host '\(host)' is an IP address in disguise: not allowed")
        }
        if settings.allowAnyHost { return nil }
        if settings.allowedHosts.isEmpty { return ServiceError(.badRequest, "no source hosts are allowed (thumbnails.allowed_hosts)") }
        return ServiceError(.badRequest, "source host '\(host)' is not allowed")
    }

    func isNamedInAllowList(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return settings.allowedHosts.contains(bare) || settings.allowedHosts.contains(host)
    }

    /// The address to connect to for `host`: a host named in `allowed_hosts` may be anywhere; any other
    /// must resolve to a public address or one in `allowed_networks`. Refusals are the client's error (400).
    func permittedAddress(for host: String) async throws(ServiceError) -> SourceAddress? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let literal = SourceAddress(bare)
        var addresses = literal.map { [$0] } ?? []
        if literal == nil { addresses = await settings.resolver.addresses(of: bare) }
        guard let first = addresses.first else { throw ServiceError(.badGateway, "source host '\(host)' does not resolve") }
        if isNamedInAllowList(host) { return first }
        let networks = settings.allowedNetworks
        if let permitted = addresses.first(where: { address in address.kind == .public || networks.contains { $0.contains(address) } }) {
            return permitted
        }
        throw ServiceError(.badRequest, "source host '\(host)' resolves to \(first), a \(first.kind.rawValue) address: not allowed "
                           + "(thumbnails.allowed_networks)")
    }

    /// Runs `body` with a client that can connect only to the address `url`'s host was checked at.
    func withPinnedClient<T: Sendable>(_ url: String, _ body: (HTTPClient) async throws -> T) async throws -> T {
        guard let host = URL(string: url)?.host, !host.isEmpty else { throw ServiceError(.badRequest, "source URL has no host") }
        var configuration = clientConfiguration
        if let address = try await permittedAddress(for: host), SourceAddress(host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host) == nil {
            configuration.dnsOverride[host] = address.description
            configuration.dnsOverride[host.lowercased()] = address.description
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    public func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        try await fetch(imageURL, overlay: false).wholeBytes
    }

    public func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        try await fetch(imageURL, overlay: true).wholeBytes
    }

    /// A large MP4 or MOV (announced longer than `rangedAbove`) is recognised from its first 64 KB; the
    /// download stops there and the rest is read in ranges from the URL the redirects led to.
    public func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        try await fetch(imageURL, overlay: false, rangedAbove: rangedAbove)
    }

    func fetch(_ imageURL: String, overlay: Bool, rangedAbove: Int64 = .max) async throws(ServiceError) -> LoadedSource {
        var url = Self.fetchURL(for: imageURL)
        let deadline = NIODeadline.now() + .milliseconds(Int64(settings.requestTimeout * 1000))
        for _ in 0...settings.maxRedirects {
            if let problem = hostProblem(URL(string: url)) { throw problem }
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "User-Agent", value: settings.userAgent)
            request.headers.add(name: "Accept", value: "image/*;q=0.9,*/*;q=0.1")
            if overlay { request.headers.add(name: overlayFetchHeader, value: "1") }
            let hop: Hop
            do {
                hop = try await withPinnedClient(url) { client in try await self.hop(request, url: url, client: client, deadline: deadline, rangedAbove: rangedAbove) }
            } catch let error as ServiceError {
                throw error
            } catch {
                throw Self.classify(error)
            }
            switch hop {
            case .source(let source): return source
            case .redirect(let next): url = next
            }
        }
        throw ServiceError(.badGateway, "source redirected more than \(settings.maxRedirects) times")
    }

    enum Hop: Sendable {
        case source(LoadedSource)
        case redirect(String)
    }

    /// One request of a redirect chain, its body read before the hop's client closes.
    func hop(_ request: HTTPClientRequest, url: String, client: HTTPClient, deadline: NIODeadline, rangedAbove: Int64) async throws(ServiceError) -> Hop {
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: deadline)
            } catch {
                throw Self.classify(error)
            }
            switch response.status.code {
            case 200..<300:
                do {
                    var body = ByteBuffer()
                    var chunks = response.body.makeAsyncIterator()
                    if let length = response.headers.first(name: "Content-Length").flatMap(Int64.init), length > rangedAbove {
                        while body.readableBytes < RangedSource.headBytes, var chunk = try await chunks.next() { body.writeBuffer(&chunk) }
                        if body.withUnsafeReadableBytes(VideoExcerpt.isExcerptable) {
                            let from = url
                            return .source(.ranged(RangedSource(head: body, length: length) { range throws(ServiceError) in
                                try await fetchRange(from, range)
                            }))
                        }
                    }
                    while var chunk = try await chunks.next() {
                        guard body.readableBytes + chunk.readableBytes <= settings.maxBytes else { throw ServiceError(.badRequest, "source is larger than \(settings.maxBytes) bytes") }
                        body.writeBuffer(&chunk)
                    }
                    // An empty source is a bad image, like an empty file (Thumbor: 502).
                    if body.readableBytes == 0 { throw ServiceError(.badRequest, "source is empty") }
                    return .source(.whole(body))
                } catch let error as ServiceError {
                    throw error
                } catch {
                    throw Self.classify(error)
                }
            case 301, 302, 303, 307, 308:
                guard let location = response.headers.first(name: "Location"),
                      let next = URL(string: location, relativeTo: URL(string: url))?.absoluteString else {
                    throw ServiceError(.badGateway, "source redirected without a usable Location")
                }
                return .redirect(next)
            case 404, 410:
                throw ServiceError(.notFound, "source image not found (upstream \(response.status.code))")
            case 400..<500:
                throw ServiceError(.notFound, "source refused (upstream \(response.status.code))")
            default:
                throw ServiceError(.badGateway, "source failed (upstream \(response.status.code))")
            }
    }

    /// Bytes `range` of `url` (a `Range` request; the answer must be that range: 206 with a matching
    /// `Content-Range`; an origin that ignores ranges, or redirects, is a 502).
    func fetchRange(_ url: String, _ range: Range<Int64>) async throws(ServiceError) -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: settings.userAgent)
        request.headers.add(name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound - 1)")
        let deadline = NIODeadline.now() + .milliseconds(Int64(settings.requestTimeout * 1000))
        do {
            return try await withPinnedClient(url) { client in
                let response = try await client.execute(request, deadline: deadline)
                let contentRange = response.headers.first(name: "Content-Range") ?? ""
                guard response.status.code == 206, contentRange.hasPrefix("bytes \(range.lowerBound)-") else {
                    throw ServiceError(.badGateway, "source does not serve byte ranges (upstream \(response.status.code))")
                }
                return try await response.body.collect(upTo: range.count)
            }
        } catch let error as ServiceError {
            throw error
        } catch {
            throw Self.classify(error)
        }
    }

    static func classify(_ error: any Error) -> ServiceError {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return ServiceError(.gatewayTimeout, "source timed out", detail: OperatorText.describe(error))
            default:
                return ServiceError(.badGateway, "source unreachable", detail: OperatorText.describe(error))
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return ServiceError(.gatewayTimeout, "source timed out", detail: OperatorText.describe(error))
        }
        return ServiceError(.badGateway, "source unreachable", detail: OperatorText.describe(error))
    }
}

/// Thumbor's file_loader_http_fallback: the file if it exists, else the URL.
public struct FileThenHTTPLoader: ImageLoader {
    let file: FileLoader
    let http: any ImageLoader

    public init(file: FileLoader, http: any ImageLoader) {
        self.file = file
        self.http = http
    }

    public func validate(_ imageURL: String) -> ServiceError? {
        file.resolve(imageURL) == nil ? http.validate(imageURL) : nil
    }

    public func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        if file.resolve(imageURL) != nil { return try await file.load(imageURL) }
        return try await http.load(imageURL)
    }

    public func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        if file.resolve(imageURL) != nil { return try await file.load(imageURL) }
        return try await http.loadOverlay(imageURL)
    }

    public func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        if file.resolve(imageURL) != nil { return try await file.loadSource(imageURL, rangedAbove: rangedAbove) }
        return try await http.loadSource(imageURL, rangedAbove: rangedAbove)
    }
}

extension LoadedSource {
    /// The bytes of a source loaded whole (every load that does not ask for ranges).
    var wholeBytes: ByteBuffer {
        get throws(ServiceError) {
            guard case let .whole(bytes) = self else { throw ServiceError(.internalServerError, "a source came in ranges unasked") }
            return bytes
        }
    }
}
