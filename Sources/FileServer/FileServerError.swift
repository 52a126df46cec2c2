import HTTPTypes

/// A file-server failure: its HTTP status and the short message the client sees.
public struct FileServerError: Error, Sendable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let message: String
    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { "\(status.code) \(message)" }

    static let notFound = FileServerError(.notFound, "no such component")
}
