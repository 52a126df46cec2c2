/// A libvips failure. `message` is libvips' text for logs only: the error buffer is process-global, so
/// under concurrency it can hold another thread's text (see shared/notes/libvips-swift.md §4.5).
/// Callers map failures by `operation`, never by matching the message.
public struct VipsError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let message: String

    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }
}
