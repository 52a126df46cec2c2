import HTTPTypes

/// A failure that knows its HTTP status and the short message the client sees. Logs get `detail` too.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public let detail: String?

    public init(_ status: HTTPResponse.Status, _ message: String, detail: String? = nil) {
        self.status = status
        self.message = message
        self.detail = detail
    }

    public var description: String { detail.map { "\(status.code) \(message) [\($0)]" } ?? "\(status.code) \(message)" }

    // The failures of the imaging route, named once.
    static let noSignature = ServiceError(.badRequest, "URL has neither a signature nor 'unsafe'")
    static let unsafeDisabled = ServiceError(.badRequest, "unsafe URLs are disabled")
    static let badSignature = ServiceError(.badRequest, "signature does not match")
    static let invalidUTF8 = ServiceError(.badRequest, "URL is not valid UTF-8 once percent-decoded")
    static let noImage = ServiceError(.badRequest, "no image in URL")
    static let sourceNotFound = ServiceError(.notFound, "source image not found")
    /// The answer to a cache probe (`Cache-Control: only-if-cached`, as pre-warm sends) on a miss.
    static let notCached = ServiceError(.gatewayTimeout, "not cached (only-if-cached)")

    var isNotCached: Bool { status == Self.notCached.status && message == Self.notCached.message }
}
