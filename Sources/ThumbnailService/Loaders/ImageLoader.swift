import NIOCore

/// A source of original images (Thumbor's loader slot). The key is Thumbor's `image_url`: the image
/// part of the URL, re-quoted.
public protocol ImageLoader: Sendable {
    /// Rejects keys this loader would never fetch (Thumbor's `validate`), before any signature work.
    func validate(_ imageURL: String) -> ServiceError?
    /// The source's bytes, or a `ServiceError` with the status the client should see.
    func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer
}
