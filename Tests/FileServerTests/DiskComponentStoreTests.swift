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

    @Test func recoverySweepsWhatACrashLeft() async throws {
        let store = try DiskComponentStore(root: root)
        _ = try await store.put(id, metadata: UploadMetadata(), body: body([1, 2, 3]), maxBytes: 100)
        let shard = store.shardDirectory(id.value)
        // A crash mid-upload and one between the data rename and the record rename:
        FileManager.default.createFile(atPath: root + "/.incoming/partial", contents: Data([9, 9]))
        FileManager.default.createFile(atPath: shard + "/\(id.value).deadbeef.data", contents: Data([9, 9]))
        _ = try DiskComponentStore(root: root)
        #expect(files().count == 2)
        #expect(try await read(store) == [1, 2, 3])
    }
}

@Suite("Events")
struct EventTests {
    @Test func subscribersReceivePublishedEvents() async {
        let events = FileServerEvents()
        let stream = events.subscribe()
        events.publish(.uploaded(id: "a", contentType: "image/png", size: 3, fileName: nil))
        events.publish(.removed(id: "a"))
        var received: [FileServerEvent] = []
        for await event in stream {
            received.append(event)
            if received.count == 2 { break }
        }
        #expect(received == [.uploaded(id: "a", contentType: "image/png", size: 3, fileName: nil), .removed(id: "a")])
    }
}
