import CSystemSupport
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOFileSystem
import NIOPosix
import ServiceSupport

/// Components on a local disk or a filesystem several Pinhole processes share (the studio's NAS),
/// crash-safe, with no lock between writers.
///
/// Layout: `<root>/<aa>/<bb>/<id>.json` (the record) and `<id>.<version>.data` (the bytes), with
/// `aa/bb` from the SHA-256 of the id; uploads stream into `<root>/.incoming/<writer>.<uuid>`.
/// An upload commits in steps that each leave a consistent store:
/// 1. its record is written and fsynced as `<id>.<version>.<writer>.pending` (the mark of a commit
///    in progress);
/// 2. the fsynced data is renamed to `<id>.<version>.data` (a unique name: no writer overwrites
///    another's bytes);
/// 3. the pending record is renamed over `<id>.json`: the commit. The last rename wins, and since
///    a record names its own data file, the id always holds one whole version, never a mix.
/// Then the writer deletes the data its rename replaced and tidies the id: a data file that no
/// record names and no pending commit claims is debris, whoever left it. A crash leaves temporary
/// files named after their writer; a sweep removes those whose writer is dead (on this host) or
/// that are older than `staleAge` (another host), so any node may sweep while others write.
public final class DiskComponentStore: ComponentStore {
    public let root: String
    private let incoming: String
    private let pool: NIOThreadPool
    /// A data file younger than this is never tidied unless its writer is known dead: on NFS another
    /// node's pending record may not be listed yet (attribute caching). 0 on a local filesystem.
    let debrisGrace: TimeInterval
    /// Temporary files of writers on other hosts older than this are debris.
    let staleAge: TimeInterval
    let writer = WriterIdentity.current

    /// `sweeping`: remove what crashed writers left, at start.
    /// `debrisGrace`: nil chooses by filesystem (60 s on NFS or SMB, 0 otherwise).
    public init(root: String, pool: NIOThreadPool = .singleton, sweeping: Bool = true,
                debrisGrace: TimeInterval? = nil, staleAge: TimeInterval = 86_400) throws {
        self.root = (root as NSString).standardizingPath
        incoming = self.root + "/.incoming"
        self.pool = pool
        self.staleAge = staleAge
        try FileManager.default.createDirectory(atPath: incoming, withIntermediateDirectories: true)
        self.debrisGrace = debrisGrace ?? (SharedFilesystem.isNetworked(self.root) ? 60 : 0)
        if sweeping { sweep() }
    }

    // MARK: Paths

    func shardDirectory(_ id: String) -> String {
        let hex = Hex.encode(SHA256.hash(data: Array(id.utf8)).prefix(2))
        return "\(root)/\(hex.prefix(2))/\(hex.suffix(2))"
    }

    func recordPath(_ id: String) -> String { shardDirectory(id) + "/\(id).json" }

    public func relativePath(of record: ComponentRecord) -> String? {
        String(shardDirectory(record.id).dropFirst(root.count + 1)) + "/" + record.blob
    }

    public func localPath(of record: ComponentRecord) -> String? {
        shardDirectory(record.id) + "/" + record.blob
    }

    func temporaryName() -> String { incoming + "/" + writer.token + "." + UUID().uuidString.lowercased() }

    // MARK: Debris

    /// Removes what crashed writers left: uploads in `.incoming`, pending commits and data files no
    /// record names. Safe while other processes write (see the type's comment).
    public func sweep() {
        sweepIncoming()
        let fm = FileManager.default
        guard let enumerator = fm.enumerator(atPath: root) else { return }
        var ids = Set<String>()
        while let path = enumerator.nextObject() as? String {
            if path.hasPrefix(".incoming") || path.hasPrefix(".removals") { enumerator.skipDescendants(); continue }
            switch ShardEntry(name: (path as NSString).lastPathComponent) {
            case let .data(id, _)?, let .pending(id, _, _)?: ids.insert(id)
            default: break
            }
        }
        for id in ids { tidy(id) }
    }

    /// Removes uploads in `.incoming` whose writer is dead (this host) or silent for `staleAge` (another
    /// host): cheap, so it also runs periodically, for nodes that crashed and never came back.
    public func sweepIncoming() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: incoming)) ?? [] {
            let path = incoming + "/" + name
            let owner = name.split(separator: ".", maxSplits: 1).first.flatMap(WriterIdentity.init(token:))
            if owner?.isDeadOnThisHost == true || (owner?.host != writer.host && isOlder(path, than: staleAge)) {
                try? fm.removeItem(atPath: path)
            }
        }
    }

    /// Deletes the id's data files that no record names and no live commit claims. Its listing is
    /// taken twice: a data file seen in the first was renamed in after its pending record was
    /// written, so the second listing either shows that pending record or the commit is over, and
    /// the record read after it is final for that version (records are never reinstated).
    func tidy(_ id: String) {
        let directory = shardDirectory(id)
        let dataFiles = listing(directory).compactMap { entry -> (name: String, version: String)? in
            if case let .data(owner, version) = entry, owner == id { return ("\(id).\(version).data", version) }
            return nil
        }
        var claimed = Set<String>()
        var abandoned = Set<String>()
        for entry in listing(directory) {
            guard case let .pending(owner, version, token) = entry, owner == id else { continue }
            let path = "\(directory)/\(id).\(version).\(token).pending"
            let writer = WriterIdentity(token: token)
            if writer?.isDeadOnThisHost == true || (writer?.host != self.writer.host && isOlder(path, than: staleAge)) {
                unlink(path)
                abandoned.insert(version)
            } else {
                claimed.insert(version)
            }
        }
        guard !dataFiles.isEmpty else { return }
        let current = readRecord(id)?.blob
        for file in dataFiles where file.name != current && !claimed.contains(file.version) {
            let path = directory + "/" + file.name
            if !abandoned.contains(file.version), debrisGrace > 0, !isOlder(path, than: debrisGrace) { continue }
            unlink(path)
        }
    }

    private func listing(_ directory: String) -> [ShardEntry] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(ShardEntry.init(name:))
    }

    private func isOlder(_ path: String, than age: TimeInterval) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return Date().timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > age
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
        let temporary = temporaryName()
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
                if let expected = metadata.expectedSize, expected != size {
                    throw FileServerError(.badRequest, "upload did not complete: \(size) of \(expected) bytes arrived")
                }
                if batch.readableBytes > 0 { try await Self.writeBatch(batch, at: written, to: handle, hashingInto: digest).value }
                md5 = digest.finalize()
                try await handle.synchronize()
                try await handle.close()
            } catch {
                await handle.closeEvenIfCancelled()
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
        let temporary = temporaryName()
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
            outcome = try await pool.runIfActive { self.publish(record, version: version, temporary: temporary) }
        } catch {
            outcome = .failure(FileServerError(.internalServerError, "storage unavailable"))
        }
        if case let .failure(error) = outcome {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return record
    }

    /// Runs on a pool thread; other processes may be committing the same id at the same moment.
    private func publish(_ record: ComponentRecord, version: String, temporary: String) -> Result<Void, FileServerError> {
        let directory = shardDirectory(record.id)
        let failure = FileServerError(.internalServerError, "storage unavailable")
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch { return .failure(failure) }
        guard let json = try? JSONEncoder().encode(record) else { return .failure(failure) }
        let pending = "\(directory)/\(record.id).\(version).\(writer.token).pending"
        let data = directory + "/" + record.blob
        guard writeDurably(json, to: pending) else { unlink(pending); return .failure(failure) }
        // Read before the commit: whatever this rename replaces is this version or a later one, so the
        // data this record names is superseded for good once the rename is done.
        let previous = readRecord(record.id)
        guard Self.move(temporary, to: data) else { unlink(pending); return .failure(failure) }
        guard Self.move(pending, to: recordPath(record.id)) else {
            unlink(data)
            unlink(pending)
            return .failure(failure)
        }
        syncDirectory(directory)
        if let previous, previous.blob != record.blob { unlink(directory + "/" + previous.blob) }
        // Another writer's rename may have replaced a record this writer never read (a race of two
        // commits): its data is found and deleted here, by one of the two.
        tidy(record.id)
        return .success(())
    }

    /// rename(2), with NFS's caveat handled as Postfix does: a retransmitted rename can fail after the
    /// first attempt succeeded, so "source gone, target present" is success.
    static func move(_ from: String, to: String) -> Bool {
        if rename(from, to) == 0 { return true }
        return access(from, F_OK) != 0 && errno == ENOENT && access(to, F_OK) == 0
    }

    public func remove(_ id: ComponentID) async throws(FileServerError) -> Bool {
        do {
            return try await pool.runIfActive {
                guard let record = self.readRecord(id.value) else { return false }
                // Unlinking the record is the atomic step: from then on the id is absent. (A commit racing
                // with it may land first and be removed instead; tidying deletes whichever data is left.)
                unlink(self.recordPath(id.value))
                self.syncDirectory(self.shardDirectory(id.value))
                unlink(self.shardDirectory(id.value) + "/" + record.blob)
                self.tidy(id.value)
                return true
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

    func close() async { await handle.closeEvenIfCancelled() }
}

/// A file name in a shard directory (see `DiskComponentStore`).
enum ShardEntry: Equatable {
    case record(id: String)
    case data(id: String, version: String)
    case pending(id: String, version: String, writer: String)

    static let versionLength = 36  // a lowercase UUID

    init?(name: String) {
        if name.hasSuffix(".json") {
            self = .record(id: String(name.dropLast(5)))
        } else if name.hasSuffix(".data") {
            guard let (id, version) = Self.split(name.dropLast(5)) else { return nil }
            self = .data(id: id, version: version)
        } else if name.hasSuffix(".pending") {
            let stem = name.dropLast(8)
            guard let dot = stem.lastIndex(of: "."), let (id, version) = Self.split(stem[..<dot]) else { return nil }
            self = .pending(id: id, version: version, writer: String(stem[stem.index(after: dot)...]))
        } else {
            return nil
        }
    }

    /// `<id>.<version>` → its parts (ids may contain dots; the version is the fixed-length tail).
    private static func split(_ stem: Substring) -> (String, String)? {
        guard stem.count > versionLength + 1 else { return nil }
        let dot = stem.index(stem.endIndex, offsetBy: -(versionLength + 1))
        guard stem[dot] == "." else { return nil }
        return (String(stem[..<dot]), String(stem[stem.index(after: dot)...]))
    }
}
