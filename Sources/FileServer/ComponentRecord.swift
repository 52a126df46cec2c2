import Foundation

/// What is kept about a stored component beside its bytes.
public struct ComponentRecord: Codable, Sendable, Equatable {
    public var id: String
    /// The data file's name inside the component's shard directory (versioned, so a replacement
    /// never overwrites bytes a reader may have open).
    public var blob: String
    public var contentType: String
    /// The original file name, from the upload's Content-Disposition.
    public var fileName: String?
    public var size: Int64
    /// Hex MD5 of the bytes (the ETag).
    public var md5: String
    /// Seconds since 1970 (UTC).
    public var uploaded: Double

    public var uploadedDate: Date { Date(timeIntervalSince1970: uploaded) }
}

/// The metadata an upload arrives with.
public struct UploadMetadata: Sendable {
    public var contentType: String?
    public var fileName: String?
    /// Raw MD5 digest from `Content-MD5`, when sent.
    public var expectedMD5: [UInt8]?
    /// Bytes announced by `Content-Length`: a body that ends short was cut, whatever the transport said.
    public var expectedSize: Int64?
    public init(contentType: String? = nil, fileName: String? = nil, expectedMD5: [UInt8]? = nil) {
        self.contentType = contentType
        self.fileName = fileName
        self.expectedMD5 = expectedMD5
    }
}
