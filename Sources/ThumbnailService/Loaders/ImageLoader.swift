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
    /// The source whole, or, when it is longer than `rangedAbove` bytes and an MP4 or MOV, in ranges.
    func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource
}

extension ImageLoader {
    public func loadOverlay(_ imageURL: String) async throws(ServiceError) -> ByteBuffer { try await load(imageURL) }
}

/// The header that marks an overlay fetch.
public let overlayFetchHeader = "X-Pinhole-Overlay"

/// A source as loaded: whole, or (a large MP4 or MOV: `VideoExcerpt`) its opening bytes and a way to
/// read any range of the rest, so that a multi-gigabyte master is never downloaded whole.
public enum LoadedSource: Sendable {
    case whole(ByteBuffer)
    case ranged(RangedSource)
}

/// A source read in ranges: its opening bytes, its length, and a reader of byte ranges.
public struct RangedSource: Sendable {
    /// The source's first bytes (at least the first 64 KB, or all of a shorter file).
    public let head: ByteBuffer
    public let length: Int64
    let reader: @Sendable (Range<Int64>) async throws(ServiceError) -> ByteBuffer

    public init(head: ByteBuffer, length: Int64, reader: @escaping @Sendable (Range<Int64>) async throws(ServiceError) -> ByteBuffer) {
        self.head = head
        self.length = length
        self.reader = reader
    }

    /// Bytes `range` of the source (clamped to its length); exactly that many, or an error.
    public func read(_ range: Range<Int64>) async throws(ServiceError) -> ByteBuffer {
        let clamped = max(0, range.lowerBound)..<min(length, range.upperBound)
        guard !clamped.isEmpty else { return ByteBuffer() }
        let bytes = try await reader(clamped)
        guard bytes.readableBytes == clamped.count else {
            throw ServiceError(.badGateway, "source answered \(bytes.readableBytes) bytes for a range of \(clamped.count)")
        }
        ServiceMetrics.rangedSourceBytes.increment(by: Int64(clamped.count))
        return bytes
    }

    /// How much of a source is read before deciding whether it is read in ranges.
    public static let headBytes = 64 << 10
}

extension ImageLoader {
    /// Loaders that cannot read ranges load every source whole.
    public func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        .whole(try await load(imageURL))
    }
}
