import Crypto
import Foundation
import NIOCore
import Testing
@testable import FileServer

/// A request body that delivers some chunks and then fails, as a client that disconnects does.
struct FailingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    struct Disconnected: Error {}
    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: [ByteBuffer]
        mutating func next() async throws -> ByteBuffer? {
            if remaining.isEmpty { throw Disconnected() }
            return remaining.removeFirst()
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: chunks) }
}

struct ChunkedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: [ByteBuffer]
        mutating func next() async throws -> ByteBuffer? { remaining.isEmpty ? nil : remaining.removeFirst() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: chunks) }
}

@Suite("Disk store: atomic, verified, nothing half-written")
struct DiskComponentStoreTests {
    let root = NSTemporaryDirectory() + "pinhole-store-\(UUID().uuidString)"
    let id = ComponentID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")!

    func body(_ bytes: [UInt8], chunk: Int = 1000) -> ChunkedBody {
        ChunkedBody(chunks: stride(from: 0, to: bytes.count, by: chunk).map { ByteBuffer(bytes: bytes[$0..<min($0 + chunk, bytes.count)]) })
    }

    func read(_ store: DiskComponentStore, _ range: Range<Int64>? = nil) async throws -> [UInt8]? {
        guard let stored = try await store.open(id) else { return nil }
        var bytes: [UInt8] = []
        try await stored.read(range ?? 0..<stored.record.size) { bytes += Array(buffer: $0) }
        await stored.close()
        return bytes
    }

    /// Every file below the root except the empty .incoming directory.
    func files() -> [String] {
        (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }.sorted()
    }

    @Test func storeReadReplaceRemove() async throws {
        let store = try DiskComponentStore(root: root)
        let first = (0..<5000).map { UInt8($0 % 251) }
        let record = try await store.put(id, metadata: UploadMetadata(contentType: nil, fileName: "a.bin"), body: body(first), maxBytes: 10_000)
        #expect(record.size == 5000 && record.md5 == Insecure.MD5.hash(data: first).map { String(format: "%02x", $0) }.joined())
        #expect(record.contentType == "application/octet-stream")
        #expect(try await read(store) == first)
        #expect(try await read(store, 10..<20) == Array(first[10..<20]))
        let second = Array(repeating: UInt8(7), count: 300)
        _ = try await store.put(id, metadata: UploadMetadata(), body: body(second), maxBytes: 10_000)
        #expect(try await read(store) == second)
        #expect(files().count == 2, "one record and one data file after a replacement: \(files())")
        #expect(try await store.remove(id))
        #expect(try await read(store) == nil)
        #expect(try await store.remove(id) == false)
        #expect(files().isEmpty)
    }

    @Test func sniffsTheContentTypeWhenNoneWasSent() async throws {
        let store = try DiskComponentStore(root: root)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 100)
        let record = try await store.put(id, metadata: UploadMetadata(), body: body(png), maxBytes: 10_000)
        #expect(record.contentType == "image/png")
    }

    @Test func wrongMD5KeepsNothingAndLeavesThePreviousVersion() async throws {
        let store = try DiskComponentStore(root: root)
        let original = Array(repeating: UInt8(1), count: 100)
        _ = try await store.put(id, metadata: UploadMetadata(), body: body(original), maxBytes: 10_000)
        let before = files()
        await #expect(throws: FileServerError.self) {
            try await store.put(id, metadata: UploadMetadata(expectedMD5: Array(repeating: 0, count: 16)),
                                body: body(Array(repeating: 2, count: 100)), maxBytes: 10_000)
        }
        #expect(files() == before)
        #expect(try await read(store) == original)
    }

    @Test func oversizedAndDisconnectedUploadsLeaveNoTrace() async throws {
        let store = try DiskComponentStore(root: root)
        do {
            _ = try await store.put(id, metadata: UploadMetadata(), body: body(Array(repeating: 1, count: 5000)), maxBytes: 4000)
            Issue.record("oversized upload accepted")
        } catch {
            #expect(error.status == .contentTooLarge)
        }
        do {
            _ = try await store.put(id, metadata: UploadMetadata(), body: FailingBody(chunks: [ByteBuffer(bytes: [1, 2, 3])]), maxBytes: 4000)
            Issue.record("disconnected upload accepted")
        } catch {
            #expect(error.status == .badRequest)
        }
        #expect(files().isEmpty)
        #expect(try await read(store) == nil)
    }

    @Test func concurrentUploadsOfOneIDNeverInterleave() async throws {
        let store = try DiskComponentStore(root: root)
        let id = self.id
        let versions = (0..<8).map { n in Array(repeating: UInt8(n), count: 20_000 + n) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for version in versions {
                group.addTask { _ = try await store.put(id, metadata: UploadMetadata(), body: self.body(version, chunk: 777), maxBytes: 100_000) }
            }
            try await group.waitForAll()
        }
        let final = try #require(try await read(store))
        #expect(versions.contains(final))
        #expect(files().count == 2)
    }

    @Test func sweepRemovesWhatDeadWritersLeftAndKeepsWorkInProgress() async throws {
        let store = try DiskComponentStore(root: root)
        _ = try await store.put(id, metadata: UploadMetadata(), body: body([1, 2, 3]), maxBytes: 100)
        let shard = store.shardDirectory(id.value)
        let me = WriterIdentity.current
        let dead = WriterIdentity(host: me.host, pid: me.pid, started: me.started + 1).token  // same pid, another start: gone
        let elsewhere = WriterIdentity(host: "render-07", pid: 4242, started: 99).token
        let (v1, v2, v3) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
        let fm = FileManager.default
        // Debris of a dead writer: an upload, and a commit cut between its data rename and its record rename.
        fm.createFile(atPath: root + "/.incoming/\(dead).\(v1)", contents: Data([9]))
        fm.createFile(atPath: shard + "/\(id.value).\(v1).\(dead).pending", contents: Data("{}".utf8))
        fm.createFile(atPath: shard + "/\(id.value).\(v1).data", contents: Data([9]))
        // And a commit cut before its data was renamed in: a pending record alone.
        let lonely = ComponentID("lonely-\(v3)")!
        try fm.createDirectory(atPath: store.shardDirectory(lonely.value), withIntermediateDirectories: true)
        fm.createFile(atPath: store.shardDirectory(lonely.value) + "/\(lonely.value).\(v1).\(dead).pending", contents: Data("{}".utf8))
        // Work in progress of this (live) process and of a node on another host: kept.
        fm.createFile(atPath: root + "/.incoming/\(me.token).\(v2)", contents: Data([8]))
        fm.createFile(atPath: shard + "/\(id.value).\(v2).\(me.token).pending", contents: Data("{}".utf8))
        fm.createFile(atPath: shard + "/\(id.value).\(v2).data", contents: Data([8]))
        fm.createFile(atPath: root + "/.incoming/\(elsewhere).\(v3)", contents: Data([7]))
        // Another host's upload untouched for longer than stale_upload_age: debris.
        fm.createFile(atPath: root + "/.incoming/\(elsewhere).old", contents: Data([6]))
        try fm.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3 * 86_400)], ofItemAtPath: root + "/.incoming/\(elsewhere).old")
        _ = try DiskComponentStore(root: root)
        let left = Set(files())
        #expect(left.contains(".incoming/\(me.token).\(v2)"))
        #expect(left.contains(".incoming/\(elsewhere).\(v3)"))
        #expect(left.contains { $0.hasSuffix("\(v2).\(me.token).pending") } && left.contains { $0.hasSuffix("\(v2).data") })
        #expect(!left.contains { $0.contains(v1) || $0.hasSuffix(".old") || $0.contains("lonely") })
        #expect(left.count == 6)  // + the record and data of the committed version
        #expect(try await read(store) == [1, 2, 3])
    }

    @Test func aDataFileNoRecordNamesIsTidiedByTheNextCommit() async throws {
        // Two nodes' commits racing can leave the loser's data file unnamed; whoever commits the id next
        // deletes it (at once on a local filesystem; after debris_grace on NFS).
        let store = try DiskComponentStore(root: root, debrisGrace: 0)
        _ = try await store.put(id, metadata: UploadMetadata(), body: body([1]), maxBytes: 100)
        let orphan = store.shardDirectory(id.value) + "/\(id.value).\(UUID().uuidString.lowercased()).data"
        FileManager.default.createFile(atPath: orphan, contents: Data([5]))
        let patient = try DiskComponentStore(root: root, sweeping: false, debrisGrace: 60)
        _ = try await patient.put(id, metadata: UploadMetadata(), body: body([2]), maxBytes: 100)
        #expect(FileManager.default.fileExists(atPath: orphan))  // younger than the grace
        _ = try await store.put(id, metadata: UploadMetadata(), body: body([3]), maxBytes: 100)
        #expect(!FileManager.default.fileExists(atPath: orphan))
        #expect(files().count == 2)
        #expect(try await read(store) == [3])
    }

    @Test func shardNamesParse() {
        let v = "0f8fad5b-d9cb-469f-a165-70867728950e"
        #expect(ShardEntry(name: "a.b.json") == .record(id: "a.b"))
        #expect(ShardEntry(name: "a.b.\(v).data") == .data(id: "a.b", version: v))
        #expect(ShardEntry(name: "a.\(v).host+1+2.pending") == .pending(id: "a", version: v, writer: "host+1+2"))
        #expect(ShardEntry(name: "a.short.data") == nil)
        #expect(WriterIdentity(token: "render-07+4242+99") == WriterIdentity(host: "render-07", pid: 4242, started: 99))
        #expect(!WriterIdentity.current.isDeadOnThisHost)
    }
}
