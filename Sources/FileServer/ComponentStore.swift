import NIOCore

/// Where components live: one small protocol, so an object-store backend can follow the disk one.
public protocol ComponentStore: Sendable {
    /// Streams `body` in, verifies it, and makes it visible under `id` atomically (replacing any
    /// previous version). On any failure nothing is kept.
    func put(_ id: ComponentID, metadata: UploadMetadata, body: some AsyncSequence<ByteBuffer, any Error> & Sendable,
             maxBytes: Int64) async throws(FileServerError) -> ComponentRecord
    /// Adopts a file already on disk (written by nginx) as the component's bytes.
    func adopt(_ id: ComponentID, metadata: UploadMetadata, file: String, maxBytes: Int64) async throws(FileServerError) -> ComponentRecord
    /// The record and an open reader of the bytes, or nil when absent.
    func open(_ id: ComponentID) async throws(FileServerError) -> StoredComponent?
    /// Removes data and record; true when something was there.
    @discardableResult func remove(_ id: ComponentID) async throws(FileServerError) -> Bool
    /// The path of the bytes relative to the store root (for X-Accel-Redirect); nil when they are not files.
    func relativePath(of record: ComponentRecord) -> String?
    /// The absolute path of the bytes, when they are a file this machine can read (tools such as
    /// FFmpeg read them in place); nil for an object store.
    func localPath(of record: ComponentRecord) -> String?
}

/// An open component: its record and the bytes, readable in ranges even if it is replaced meanwhile.
public protocol StoredComponent: Sendable {
    var record: ComponentRecord { get }
    /// Hands the bytes in `range` to `consume` chunk by chunk, reading the next only when it returns
    /// (so a slow client never makes the server buffer a large file).
    func read(_ range: Range<Int64>, into consume: (ByteBuffer) async throws -> Void) async throws
    func close() async
}
