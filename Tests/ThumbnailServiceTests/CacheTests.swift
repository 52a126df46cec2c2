import Foundation
import Logging
import NIOCore
import Testing
@testable import ThumbnailService

@Suite("Disk cache: atomic, verified, evicted, persistent")
struct DiskCacheTests {
    let root = NSTemporaryDirectory() + "pinhole-cache-\(UUID().uuidString)"
    let logger = Logger(label: "test")

    func cache(capacity: Int64 = 1 << 20, expiry: Double = 0) -> DiskCache {
        DiskCache(root: root, capacityBytes: capacity, expirySeconds: expiry, logger: logger)
    }

    @Test func storeAndReadBack() {
        let c = cache()
        #expect(c.get(group: "comp", key: "k") == nil)
        c.put(group: "comp", key: "k", contentType: "image/jpeg", origin: "/sig/300x200/a.jpg", body: ByteBuffer(bytes: [1, 2, 3]))
        let entry = c.get(group: "comp", key: "k")
        #expect(entry?.body == ByteBuffer(bytes: [1, 2, 3]) && entry?.metadata.contentType == "image/jpeg")
        #expect(c.statistics.hits == 1 && c.statistics.misses == 1 && c.statistics.entries == 1)
    }

    @Test func corruptedOrTruncatedEntriesAreDroppedAndMiss() throws {
        let c = cache()
        c.put(group: "comp", key: "k", contentType: "image/png", origin: "o", body: ByteBuffer(bytes: Array(repeating: 7, count: 1000)))
        let path = c.path(group: "comp", key: "k")
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count - 10).write(to: URL(fileURLWithPath: path))       // torn
        #expect(c.get(group: "comp", key: "k") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        c.put(group: "comp", key: "k", contentType: "image/png", origin: "o", body: ByteBuffer(bytes: Array(repeating: 7, count: 1000)))
        var flipped = try Data(contentsOf: URL(fileURLWithPath: path))
        flipped[flipped.count - 1] ^= 0xFF                                                 // bit rot
        try flipped.write(to: URL(fileURLWithPath: path))
        #expect(c.get(group: "comp", key: "k") == nil)
    }

    @Test func entriesSurviveARestart() {
        cache().put(group: "comp", key: "k", contentType: "image/png", origin: "o", body: ByteBuffer(bytes: [9]))
        let again = cache()
        #expect(again.statistics.entries == 1)
        #expect(again.get(group: "comp", key: "k")?.body == ByteBuffer(bytes: [9]))
    }

    @Test func leastRecentlyUsedAreEvictedPastTheCap() async throws {
        let c = cache(capacity: 20_000)
        for n in 0..<10 {
            c.put(group: "g\(n)", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: Array(repeating: UInt8(n), count: 3000)))
            if n == 0 { try await Task.sleep(for: .milliseconds(10)) }
            _ = c.get(group: "g0", key: "k")     // keep the first one recently used
        }
        for _ in 0..<50 where c.statistics.bytes > 20_000 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(c.statistics.bytes <= 20_000)
        #expect(c.get(group: "g0", key: "k") != nil)
        #expect(c.get(group: "g1", key: "k") == nil)
    }

    @Test func expiry() async throws {
        let c = cache(expiry: 1)
        c.put(group: "g", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: [1]))
        #expect(c.get(group: "g", key: "k") != nil)
        try await Task.sleep(for: .milliseconds(2100))
        #expect(c.get(group: "g", key: "k") == nil)
    }

    @Test func purgeByGroupAndOrigin() {
        let c = cache()
        c.put(group: "comp-1", key: "a", contentType: "x", origin: "/s/300x300/http%3A%2F%2Ff%2Fget%3Fid%3Dcomp-1", body: ByteBuffer(bytes: [1]))
        c.put(group: "comp-1", key: "b", contentType: "x", origin: "/s/150x150/…", body: ByteBuffer(bytes: [2]))
        c.put(group: "comp-2", key: "a", contentType: "x", origin: "/s/300x300/other", body: ByteBuffer(bytes: [3]))
        #expect(c.purge(group: "comp-1") == 2)
        #expect(c.get(group: "comp-1", key: "a") == nil && c.get(group: "comp-2", key: "a") != nil)
        #expect(c.purge(originContaining: "other") == 1)
        #expect(c.statistics.entries == 0)
    }

    @Test func unwritableDirectoryDegradesInsteadOfFailing() throws {
        let file = root + "-file"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        let c = DiskCache(root: file + "/cache", capacityBytes: 1000, expirySeconds: 0, logger: logger)
        c.put(group: "g", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: [1]))
        #expect(c.isDegraded)
        #expect(c.get(group: "g", key: "k") == nil)
    }

    @Test func componentKeys() {
        #expect(ComponentKey.of(imageURL: "http%3A//f%3A9000/get%3Fid%3Dabc-123%26signature%3Dxyz") == "abc-123")
        #expect(ComponentKey.of(imageURL: "http%3A//ftrack/component/get%3Fid%3Dabc%26username%3Dj") == "abc")
        #expect(ComponentKey.of(imageURL: "photos/a.jpg") == "photos/a.jpg")
    }
}

@Suite("Coalescing, admission, deadlines")
struct ConcurrencyControlTests {
    @Test func identicalWorkRunsOnceAndSharesTheResult() async throws {
        let coalescer = Coalescer<Int>()
        let runs = RunCounter()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await coalescer.run("same") {
                        await runs.increment()
                        try await Task.sleep(for: .milliseconds(200))
                        return 42
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == Array(repeating: 42, count: 20))
        #expect(await runs.value == 1)
    }

    @Test func followersGetTheSameError() async {
        let coalescer = Coalescer<Int>()
        struct Failed: Error {}
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await coalescer.run("x") { try await Task.sleep(for: .milliseconds(100)); throw Failed() }
                        return false
                    } catch { return error is Failed }
                }
            }
            for await threw in group { #expect(threw) }
        }
    }

    @Test func admissionRefusesBeyondTheLimitWith429() async throws {
        let admission = AdmissionControl(limit: 2)
        let outcomes = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do {
                        try await admission.admit { try await Task.sleep(for: .milliseconds(300)) }
                        return 200
                    } catch let error as ServiceError {
                        return Int(error.status.code)
                    } catch { return 0 }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == 200 }.count == 2)
        #expect(outcomes.filter { $0 == 429 }.count == 4)
        #expect(admission.inUse == 0)
    }

    @Test func deadlineAnswers504Promptly() async throws {
        let started = ContinuousClock.now
        do {
            _ = try await withDeadline(.milliseconds(200)) { try await Task.sleep(for: .seconds(5)); return 1 }
            Issue.record("deadline not enforced")
        } catch let error as ServiceError {
            #expect(error.status == .gatewayTimeout)
        }
        // Well before the work would have finished (other tests may hold the cooperative threads a while).
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(try await withDeadline(.seconds(5)) { 7 } == 7)
    }
}

actor RunCounter {
    var value = 0
    func increment() { value += 1 }
}
