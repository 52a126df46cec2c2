import CSystemSupport
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFileSystem
import NIOPosix
import ServiceSupport

/// Components on local disk, crash-safe.
///
/// Layout: `<root>/<aa>/<bb>/<id>.json` (the record) and `<id>.<version>.data` (the bytes), with
/// `aa/bb` from the SHA-256 of the id; uploads stream into `<root>/.incoming/`.
/// An upload becomes visible in one step: its data file is fsynced and renamed into the shard, then a
/// new record naming it is fsynced and renamed over the old one — the rename is the commit. A crash
/// before it leaves the previous version intact; stray files are swept at start-up. Commits are
/// serialised, so concurrent uploads of one id never interleave.
public final class DiskComponentStore: ComponentStore {
    public let root: String
    private let incoming: String
    private let commitLock = NIOLock()
    private let pool: NIOThreadPool

    /// `recovering`: sweep what a crash left (only the serving process may: another's uploads in flight
    /// look the same).
    public init(root: String, pool: NIOThreadPool = .singleton, recovering: Bool = true) throws {
        self.root = (root as NSString).standardizingPath
        incoming = self.root + "/.incoming"
        self.pool = pool
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        if recovering { recover() }
    }

    // MARK: Paths

    func shardDirectory(_ id: String) -> String {
        let hex = Hex.encode(SHA256.hash(data: Array(id.utf8)).prefix(2))
        return "\(root)/\(hex.prefix(2))/\(hex.suffix(2))"
    }

    func recordPath(_ id: String) -> String { shardDirectory(id) + "/\(id).json" }

    public func relativePath(of record: ComponentRecord) -> String {
        String(shardDirectory(record.id).dropFirst(root.count + 1)) + "/" + record.blob
    }

    // MARK: Recovery

    /// Removes half-written uploads and data files no record points to (left by a crash mid-commit).
    func recover() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: incoming)) ?? [] {
            try? fm.removeItem(atPath: incoming + "/" + name)
        }
        guard let enumerator = fm.enumerator(atPath: root) else { return }
        var dataFiles: [String] = []
        while let path = enumerator.nextObject() as? String {
            if path.hasPrefix(".incoming") { continue }
            if path.hasSuffix(".data") { dataFiles.append(path) }
        }
        for path in dataFiles {
            let name = (path as NSString).lastPathComponent
            guard let dot = name.dropLast(".data".count).lastIndex(of: ".") else { continue }
            let id = String(name[..<dot])
            let record = readRecord(id)
            if record?.blob != name { try? fm.removeItem(atPath: root + "/" + path) }
        }
    }

    // MARK: Reading

    func readRecord(_ id: String) -> ComponentRecord? {
        guard let data = FileManager.default.contents(atPath: recordPath(id)) else { return nil }
        return try? JSONDecoder().decode(ComponentRecord.self, from: data)
    }

    public func open(_ id: ComponentID) async throws(FileServerError) -> StoredComponent? {
        // A replacement may remove the version a record named between the two reads: read again.
        for _ in 0..<3 {
            let record: ComponentRecord?
            do {
                record = try await pool.runIfActive { self.readRecord(id.value) }
            } catch {
                throw FileServerError(.internalServerError, "storage unavailable")
            }
            guard let record else { return nil }
            let path = shardDirectory(id.value) + "/" + record.blob
            do {
                let handle = try await FileSystem.shared.openFile(forReadingAt: FilePath(path), options: .init())
                return DiskStoredComponent(record: record, handle: handle)
            } catch let error as FileSystemError where error.code == .notFound {
                continue
            } catch {
                throw FileServerError(.internalServerError, "storage unavailable")
            }
        }
        return nil
    }

    // MARK: Writing

    static let batchBytes = 4 << 20

    /// Writes one batch while hashing it, then starts its writeback (`sync_file_range`, which does not
    /// wait). Batches are chained (each awaits the previous), so the digest sees them in order, and the
    /// hashing runs beside the receiving of the next batch: on two cores MD5 would otherwise halve
    /// upload throughput.
    static func writeBatch(_ batch: ByteBuffer, at offset: Int64, to handle: WriteFileHandle, hashingInto digest: RunningMD5) -> Task<Void, any Error> {
        Task {
            async let write = handle.write(contentsOf: batch, toAbsoluteOffset: offset)
            digest.update(batch)
            _ = try await write
            try await handle.withUnsafeDescriptor { descriptor in
                _ = pinhole_start_writeback(descriptor.rawValue, offset, Int64(batch.readableBytes))
            }
        }
    }

    public func put(_ id: ComponentID, metadata: UploadMetadata, body: some AsyncSequence<ByteBuffer, any Error> & Sendable,
                    maxBytes: Int64) async throws(FileServerError) -> ComponentRecord {
        let temporary = incoming + "/" + UUID().uuidString
        var size: Int64 = 0
        var head: [UInt8] = []
        let md5: [UInt8]
        do {
            let handle = try await FileSystem.shared.openFile(
                forWritingAt: FilePath(temporary),
                options: OpenOptions.Write(existingFile: .none, newFile: .init(permissions: nil, transactionalCreation: false)))
            do {
                // Double-buffered: while one batch is written (on the file system's threads), the next is
                // received and hashed here. Batches are large so each write is one hop, and each asks the
                // kernel to start writeback at once so the final fsync finds little left to do.
                var batch = ByteBuffer()
                batch.reserveCapacity(Self.batchBytes)
                var written: Int64 = 0
                var pending: Task<Void, any Error>?
                let digest = RunningMD5()
                for try await chunk in body {
                    size += Int64(chunk.readableBytes)
                    if size > maxBytes {
                        throw FileServerError(.contentTooLarge, "upload is larger than \(maxBytes) bytes")
                    }
                    if head.count < 4096 { head += chunk.getBytes(at: chunk.readerIndex, length: min(chunk.readableBytes, 4096 - head.count)) ?? [] }
                    var chunk = chunk
                    batch.writeBuffer(&chunk)
                    if batch.readableBytes >= Self.batchBytes {
                        try await pending?.value
                        pending = Self.writeBatch(batch, at: written, to: handle, hashingInto: digest)
                        written += Int64(batch.readableBytes)
                        batch = ByteBuffer()
                        batch.reserveCapacity(Self.batchBytes)
                    }
                }
                try await pending?.value
                if batch.readableBytes > 0 { try await Self.writeBatch(batch, at: written, to: handle, hashingInto: digest).value }
                md5 = digest.finalize()
                try await handle.synchronize()
                try await handle.close()
            } catch {
                try? await handle.close()
                throw error
            }
        } catch let error as FileServerError {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        } catch {
            // The client went away or the disk failed: nothing of the upload stays.
            try? FileManager.default.removeItem(atPath: temporary)
            throw FileServerError(.badRequest, "upload did not complete")
        }
        return try await commit(id, temporary: temporary, metadata: metadata, size: size, md5: md5, head: head)
    }

    public func adopt(_ id: ComponentID, metadata: UploadMetadata, file: String, maxBytes: Int64) async throws(FileServerError) -> ComponentRecord {
        let temporary = incoming + "/" + UUID().uuidString
        let result: Result<(Int64, [UInt8], [UInt8]), FileServerError>
        do {
            result = try await pool.runIfActive { () -> Result<(Int64, [UInt8], [UInt8]), FileServerError> in
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: file),
                      let size = (attributes[.size] as? NSNumber)?.int64Value else {
                    return .failure(FileServerError(.badRequest, "X-File does not name a readable file"))
                }
                if size > maxBytes { return .failure(FileServerError(.contentTooLarge, "upload is larger than \(maxBytes) bytes")) }
                // Same filesystem: a rename; otherwise a copy (nginx's temp dir may be elsewhere).
                if rename(file, temporary) != 0 {
                    do { try FileManager.default.copyItem(atPath: file, toPath: temporary) } catch {
                        return .failure(FileServerError(.badRequest, "X-File cannot be read"))
                    }
                    try? FileManager.default.removeItem(atPath: file)
                }
                guard let reader = FileHandle(forReadingAtPath: temporary) else {
                    return .failure(FileServerError(.internalServerError, "storage unavailable"))
                }
                defer { try? reader.close() }
                var md5 = Insecure.MD5()
                var head: [UInt8] = []
                while let chunk = try? reader.read(upToCount: 1 << 20), !chunk.isEmpty {
                    md5.update(data: chunk)
                    if head.count < 4096 { head += chunk.prefix(4096 - head.count) }
                }
                let descriptor = Glibc.open(temporary, O_RDONLY)
                if descriptor >= 0 { fsync(descriptor); close(descriptor) }
                return .success((size, Array(md5.finalize()), head))
            }
        } catch {
            throw FileServerError(.internalServerError, "storage unavailable")
        }
        switch result {
        case let .success((size, digest, head)):
            return try await commit(id, temporary: temporary, metadata: metadata, size: size, md5: digest, head: head)
        case let .failure(error):
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Verifies the digest, then publishes the upload under `id` (see the type's comment).
    private func commit(_ id: ComponentID, temporary: String, metadata: UploadMetadata, size: Int64, md5: [UInt8],
                        head: [UInt8]) async throws(FileServerError) -> ComponentRecord {
        if let expected = metadata.expectedMD5, expected != md5 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw FileServerError(.badRequest, "Content-MD5 does not match the body")
        }
        let version = UUID().uuidString.lowercased()
        let record = ComponentRecord(
            id: id.value, blob: "\(id.value).\(version).data",
            contentType: ContentSniffer.contentType(declared: metadata.contentType, head: head, fileName: metadata.fileName),
            fileName: metadata.fileName, size: size, md5: Hex.encode(md5),
            uploaded: Date().timeIntervalSince1970.rounded(.down))
        let outcome: Result<Void, FileServerError>
        do {
            outcome = try await pool.runIfActive { self.commitLock.withLock { self.publish(record, temporary: temporary) } }
        } catch {
            outcome = .failure(FileServerError(.internalServerError, "storage unavailable"))
        }
        if case let .failure(error) = outcome {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return record
    }

    /// Runs under the commit lock on a pool thread.
    private func publish(_ record: ComponentRecord, temporary: String) -> Result<Void, FileServerError> {
        let directory = shardDirectory(record.id)
        let failure = FileServerError(.internalServerError, "storage unavailable")
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch { return .failure(failure) }
        let previous = readRecord(record.id)
        guard rename(temporary, directory + "/" + record.blob) == 0 else { return .failure(failure) }
        guard let json = try? JSONEncoder().encode(record) else { return .failure(failure) }
        let recordTemporary = incoming + "/" + UUID().uuidString + ".json"
        guard writeDurably(json, to: recordTemporary), rename(recordTemporary, recordPath(record.id)) == 0 else {
            unlink(directory + "/" + record.blob)
            unlink(recordTemporary)
            return .failure(failure)
        }
        syncDirectory(directory)
        if let previous, previous.blob != record.blob { unlink(directory + "/" + previous.blob) }
        return .success(())
    }

    public func remove(_ id: ComponentID) async throws(FileServerError) -> Bool {
        do {
            return try await pool.runIfActive {
                self.commitLock.withLock {
                    guard let record = self.readRecord(id.value) else { return false }
                    // Unlinking the record is the atomic step: from then on the id is absent.
                    unlink(self.recordPath(id.value))
                    self.syncDirectory(self.shardDirectory(id.value))
                    unlink(self.shardDirectory(id.value) + "/" + record.blob)
                    return true
                }
            }
        } catch {
            throw FileServerError(.internalServerError, "storage unavailable")
        }
    }

    private func writeDurably(_ data: Data, to path: String) -> Bool {
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        return written == data.count && fsync(descriptor) == 0
    }

    private func syncDirectory(_ path: String) {
        let descriptor = Glibc.open(path, O_RDONLY | O_DIRECTORY)
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
    }
}

/// An MD5 updated by one batch task at a time (they are chained), read once after the last.
final class RunningMD5: @unchecked Sendable {
    private var md5 = Insecure.MD5()
    func update(_ buffer: ByteBuffer) { buffer.withUnsafeReadableBytes { md5.update(bufferPointer: $0) } }
    func finalize() -> [UInt8] { Array(md5.finalize()) }
}

/// An open stored component on disk.
struct DiskStoredComponent: StoredComponent {
    let record: ComponentRecord
    let handle: ReadFileHandle

    func read(_ range: Range<Int64>, into consume: (ByteBuffer) async throws -> Void) async throws {
        for try await chunk in handle.readChunks(in: range, chunkLength: .kibibytes(256)) {
            try await consume(chunk)
        }
    }

    func close() async { try? await handle.close() }
}
