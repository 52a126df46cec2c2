import NIOCore

/// A source of original images (Thumbor's loader slot). The key is Thumbor's `image_url`: the image
/// part of the URL, re-quoted.
public protocol ImageLoader: Sendable {
    /// Rejects keys this loader would never fetch (Thumbor's `validate`), before any signature work.
    func validate(_ imageURL: String) -> ServiceError?
    /// The source's bytes, or a `ServiceError` with the status the client should see.
    func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer
    /// An overlay (`watermark()`, `frame()`) image: loaded like a source, but an HTTP fetch says it is one
    /// (`X-Pinhole-Overlay`), so that a Pinhole asked for an overlay that itself carries overlays refuses
    /// instead of recursing (a watermark URL pointing at its own thumbnail).
    func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer
}

extension ImageLoader {
    public func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer { try await load(imageURL) }
}

/// The header that marks an overlay fetch.
public let overlayFetchHeader = "X-Pinhole-Overlay"
