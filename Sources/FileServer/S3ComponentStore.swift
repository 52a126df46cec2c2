import Foundation
import NIOCore
import NIOFileSystem
import ObjectStorage
import ServiceSupport
import Crypto

/// Components as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, a NAS's S3
/// endpoint), one object per component under `<prefix><id>`: the bytes, with the record in the
/// object's headers (`Content-Type`, `x-amz-meta-pinhole-*`), so bytes and record change together.
///
/// A PUT or a multipart completion replaces an object atomically: readers see the old version or the
/// new one, never a mix, and a failed upload (client gone, wrong MD5, store down) leaves the old one.
/// Small uploads are one PUT; larger ones stream as parts of `partSize` (one part in flight while the
/// next is received), each verified by the store against its Content-MD5.
public final class S3ComponentStore: ComponentStore {
    public let client: S3Client
    let prefix: String
    let partSize: Int

    public init(client: S3Client, prefix: String = "", partSize: Int = 16 << 20) {
        self.client = client
        self.prefix = prefix
        self.partSize = max(partSize, 5 << 20)
    }

    func key(_ id: String) -> String { prefix + id }

    public func relativePath(of record: ComponentRecord) -> String? { nil }
    public func localPath(of record: ComponentRecord) -> String? { nil }

    static func error(_ error: S3Error) -> FileServerError {
        switch error {
        case .unavailable: FileServerError(.serviceUnavailable, "object store unavailable")
        case .badDigest: FileServerError(.badRequest, "Content-MD5 does not match the body")
        case .preconditionFailed: FileServerError(.conflict, "component changed while it was stored")
        case let .refused(status, code): FileServerError(.badGateway, "object store refused the request (\(status) \(code))")
        }
    }

    // MARK: Reading

    public func open(_ id: ComponentID) async throws(FileServerError) -> StoredComponent? {
        let head: S3ObjectHead?
        do { head = try await client.head(key: key(id.value)) } catch { throw Self.error(error) }
        guard let head else { return nil }
        return S3StoredComponent(record: Self.record(id: id.value, key: key(id.value), head: head), client: client,
                                 key: key(id.value), etag: head.etag)
    }

    static func record(id: String, key: String, head: S3ObjectHead) -> ComponentRecord {
        let etag = head.etag.replacingOccurrences(of: "\"", with: "")
        return ComponentRecord(
            id: id, blob: key, contentType: head.contentType ?? "application/octet-stream",
            fileName: head.metadata["pinhole-filename"].flatMap { $0.removingPercentEncoding },
            size: head.size,
            // A multipart upload sent without Content-MD5 has no whole-object MD5: its ETag stands in.
            md5: head.metadata["pinhole-md5"] ?? etag,
            uploaded: head.metadata["pinhole-uploaded"].flatMap(Double.init) ?? head.lastModified?.timeIntervalSince1970 ?? 0)
    }

    // MARK: Writing

    public func put(_ id: ComponentID, metadata: UploadMetadata, body: some AsyncSequence<ByteBuffer, any Error> & Sendable,
                    maxBytes: Int64) async throws(FileServerError) -> ComponentRecord {
        let key = key(id.value)
        var upload: MultipartUpload?
        do {
            var part = ByteBuffer()
            var size: Int64 = 0
            var md5 = Insecure.MD5()
            var contentType = ""
            var uploaded = 0.0
            do {
                for try await chunk in body {
                    size += Int64(chunk.readableBytes)
                    if size > maxBytes { throw FileServerError(.contentTooLarge, "upload is larger than \(maxBytes) bytes") }
                    chunk.withUnsafeReadableBytes { md5.update(bufferPointer: $0) }
                    var chunk = chunk
                    part.writeBuffer(&chunk)
                    if part.readableBytes >= partSize {
                        if upload == nil {
                            (contentType, uploaded) = (Self.contentType(metadata, head: part), Date().timeIntervalSince1970.rounded(.down))
                            let headers = Self.objectMetadata(metadata, md5: metadata.expectedMD5, uploaded: uploaded)
                            upload = MultipartUpload(client: client, key: key,
                                                     id: try await client.createMultipartUpload(key: key, contentType: contentType, metadata: headers))
                        }
                        try await upload!.send(part)
                        part = ByteBuffer()
                    }
                }
            } catch let error as FileServerError {
                throw error
            } catch let error as S3Error {
                throw error
            } catch {
                throw FileServerError(.badRequest, "upload did not complete")
            }
            if let expected = metadata.expectedSize, expected != size {
                throw FileServerError(.badRequest, "upload did not complete: \(size) of \(expected) bytes arrived")
            }
            let digest = Array(md5.finalize())
            if let expected = metadata.expectedMD5, expected != digest {
                throw FileServerError(.badRequest, "Content-MD5 does not match the body")
            }
            if let multipart = upload {
                if part.readableBytes > 0 { try await multipart.send(part) }
                try await multipart.complete()
                upload = nil
            } else {
                (contentType, uploaded) = (Self.contentType(metadata, head: part), Date().timeIntervalSince1970.rounded(.down))
                try await client.put(key: key, body: part, contentType: contentType,
                                     metadata: Self.objectMetadata(metadata, md5: digest, uploaded: uploaded))
            }
            return ComponentRecord(id: id.value, blob: key, contentType: contentType, fileName: metadata.fileName, size: size,
                                   md5: Hex.encode(digest), uploaded: uploaded)
        } catch let error as FileServerError {
            await upload?.abort()
            throw error
        } catch let error as S3Error {
            await upload?.abort()
            throw Self.error(error)
        } catch {
            await upload?.abort()
            throw FileServerError(.internalServerError, "storage failed")
        }
    }

    static func contentType(_ metadata: UploadMetadata, head: ByteBuffer) -> String {
        let bytes = head.getBytes(at: head.readerIndex, length: min(head.readableBytes, 4096)) ?? []
        return ContentSniffer.contentType(declared: metadata.contentType, head: bytes, fileName: metadata.fileName)
    }

    /// The record's fields as `x-amz-meta-` values (ASCII only: the file name is percent-encoded).
    static func objectMetadata(_ metadata: UploadMetadata, md5: [UInt8]?, uploaded: Double) -> [String: String] {
        var values = ["pinhole-uploaded": String(Int64(uploaded))]
        if let md5 { values["pinhole-md5"] = Hex.encode(md5) }
        if let name = metadata.fileName {
            values["pinhole-filename"] = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        }
        return values
    }

    public func adopt(_ id: ComponentID, metadata: UploadMetadata, file: String, maxBytes: Int64) async throws(FileServerError) -> ComponentRecord {
        // Like the disk store, the file is consumed whatever happens.
        defer { try? FileManager.default.removeItem(atPath: file) }
        let handle: ReadFileHandle
        do {
            handle = try await FileSystem.shared.openFile(forReadingAt: FilePath(file), options: .init())
        } catch {
            throw FileServerError(.badRequest, "X-File does not name a readable file")
        }
        do {
            let size = try await handle.info().size
            let record = try await put(id, metadata: metadata, body: handle.readChunks(in: 0..<size, chunkLength: .mebibytes(1)), maxBytes: maxBytes)
            await handle.closeEvenIfCancelled()
            return record
        } catch let error as FileServerError {
            await handle.closeEvenIfCancelled()
            throw error
        } catch {
            await handle.closeEvenIfCancelled()
            throw FileServerError(.badRequest, "X-File cannot be read")
        }
    }

    public func remove(_ id: ComponentID) async throws(FileServerError) -> Bool {
        do {
            guard try await client.head(key: key(id.value)) != nil else { return false }
            try await client.delete(key: key(id.value))
            return true
        } catch {
            throw Self.error(error)
        }
    }
}

/// A multipart upload in progress: one part is sent while the caller receives the next.
final class MultipartUpload: @unchecked Sendable {
    let client: S3Client
    let key: String
    let id: String
    private var etags: [String] = []
    private var inFlight: Task<String, any Error>?

    init(client: S3Client, key: String, id: String) {
        self.client = client
        self.key = key
        self.id = id
    }

    func send(_ part: ByteBuffer) async throws {
        if let previous = inFlight { etags.append(try await previous.value) }
        let number = etags.count + 1
        let (client, key, id) = (client, key, id)
        inFlight = Task { try await client.uploadPart(key: key, uploadID: id, number: number, body: part) }
    }

    func complete() async throws {
        if let previous = inFlight { etags.append(try await previous.value) }
        inFlight = nil
        try await client.completeMultipartUpload(key: key, uploadID: id, parts: etags)
    }

    func abort() async {
        inFlight?.cancel()
        _ = try? await inFlight?.value
        await client.abortMultipartUpload(key: key, uploadID: id)
    }
}

/// An object opened by HEAD; each read is a ranged GET conditional on the ETag seen, so a replacement
/// meanwhile fails the read instead of mixing versions.
struct S3StoredComponent: StoredComponent {
    let record: ComponentRecord
    let client: S3Client
    let key: String
    let etag: String

    func read(_ range: Range<Int64>, into consume: (ByteBuffer) async throws -> Void) async throws {
        guard !range.isEmpty else { return }
        guard let body = try await client.get(key: key, range: range, ifMatch: etag.isEmpty ? nil : etag) else {
            throw S3Error.preconditionFailed
        }
        for try await chunk in body { try await consume(chunk) }
    }

    func close() async {}
}
