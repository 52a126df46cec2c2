import Foundation
import Logging
import NIOCore
import PinholeTestSupport
import Testing
@testable import ThumbnailService

@Suite("Disk cache: atomic, verified, evicted, persistent")
struct DiskCacheTests {
    let root = NSTemporaryDirectory() + "pinhole-cache-\(UUID().uuidString)"
    let logger = Logger(label: "test")

    func cache(capacity: Int64 = 1 << 20, expiry: Double = 0, clock: TestClock? = nil) -> DiskCache {
        guard let clock else { return DiskCache(root: root, capacityBytes: capacity, expirySeconds: expiry, logger: logger) }
        return DiskCache(root: root, capacityBytes: capacity, expirySeconds: expiry, logger: logger, clock: { clock.now })
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
        let clock = TestClock()
        let c = cache(capacity: 20_000, clock: clock)
        for n in 0..<10 {
            c.put(group: "g\(n)", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: Array(repeating: UInt8(n), count: 3000)))
            clock.advance(1)
            _ = c.get(group: "g0", key: "k")     // keep the first one recently used
            clock.advance(1)
        }
        // Eviction runs in the background once a write passes the cap: wait for its effect, not a delay.
        #expect(await eventually { c.statistics.bytes <= 20_000 })
        #expect(c.get(group: "g0", key: "k") != nil)
        #expect(c.get(group: "g1", key: "k") == nil)
    }

    @Test func expiry() {
        let clock = TestClock()
        let c = cache(expiry: 60, clock: clock)
        c.put(group: "g", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: [1]))
        clock.advance(59)
        #expect(c.get(group: "g", key: "k") != nil)
        clock.advance(2)
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

    /// Hits from memory and from disk, misses and evictions are counted, written beside the entries once
    /// a second and at shutdown, and added up across restarts (what `pinhole cache stats` reads).
    @Test func countsAreWrittenAndAddUpAcrossRestarts() async throws {
        let clock = TestClock()
        let first = DiskCache(root: root, capacityBytes: 10_000, expirySeconds: 0, memoryBytes: 1 << 20, logger: logger,
                              clock: { clock.now })
        let address = first.address(group: "comp", key: "k")
        #expect(first.get(address) == nil)                                        // miss
        first.put(address, contentType: "x", origin: "o", body: ByteBuffer(bytes: [1, 2, 3]))
        #expect(first.get(address) != nil)                                        // disk hit, now in memory
        #expect(first.memoryHit(address) != nil)                                  // memory hit (the fast path's call)
        #expect(first.get(address) != nil)                                        // memory hit through get
        // Written within about a second without a shutdown: a running server's counts are readable.
        #expect(await eventually { DiskCache.savedCounts(root: root)?.hits == 3 })
        var saved = try #require(DiskCache.savedCounts(root: root))
        #expect(saved.memoryHits == 2 && saved.misses == 1 && saved.evictions == 0)
        #expect(saved.since != nil && saved.updated != nil)
        // Past the cap: older entries are evicted and counted.
        for n in 0..<5 {
            clock.advance(1)
            first.put(group: "g\(n)", key: "k", contentType: "x", origin: "o", body: ByteBuffer(bytes: Array(repeating: 0, count: 3000)))
        }
        #expect(await eventually { first.statistics.evictions > 0 && first.statistics.bytes <= 10_000 })
        first.quiesce()
        saved = try #require(DiskCache.savedCounts(root: root))
        #expect(saved.evictions == first.statistics.evictions && saved.hits == 3)

        // A second server on the same directory adds to the counts instead of starting them again.
        let second = DiskCache(root: root, capacityBytes: 10_000, expirySeconds: 0, logger: logger)
        #expect(second.get(group: "nothing", key: "here") == nil)
        second.quiesce()
        saved = try #require(DiskCache.savedCounts(root: root))
        #expect(saved.misses == 2 && saved.hits == 3 && saved.memoryHits == 2)
        #expect(abs(saved.memoryShare - 2.0 / 3.0) < 1e-9 && abs(saved.hitRatio - 0.6) < 1e-9)
    }

    /// Inspecting or purging beside a running server leaves its temporary files alone; a server starting
    /// removes only those a dead writer left (untouched for a minute).
    @Test func temporaryFilesOfOtherWritersAreLeftAlone() throws {
        _ = cache()
        let fresh = root + "/.tmp/other-process-fresh"
        let stale = root + "/.tmp/other-process-stale"
        FileManager.default.createFile(atPath: fresh, contents: Data([1]))
        FileManager.default.createFile(atPath: stale, contents: Data([1]))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -120)], ofItemAtPath: stale)
        _ = DiskCache(root: root, capacityBytes: 1000, expirySeconds: 0, logger: logger, sweepTemporaries: false)
        #expect(FileManager.default.fileExists(atPath: fresh) && FileManager.default.fileExists(atPath: stale))
        let server = cache()
        #expect(FileManager.default.fileExists(atPath: fresh) && !FileManager.default.fileExists(atPath: stale))
        server.quiesce()
        #expect(FileManager.default.fileExists(atPath: fresh))
        #expect(DiskCache.survey(root: root).entries == 0)
    }
}

@Suite("Coalescing, admission, deadlines", .timeLimit(.minutes(1)))
struct ConcurrencyControlTests {
    /// The work is held at a gate until all 20 callers are waiting on it: one run, one result for all.
    @Test func identicalWorkRunsOnceAndSharesTheResult() async throws {
        let coalescer = Coalescer<Int>()
        let runs = RunCounter()
        let gate = Gate()
        async let results = withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await coalescer.run("same") {
                        await runs.increment()
                        await gate.wait()
                        return 42
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(await eventually { coalescer.callers("same") == 20 })
        gate.open()
        #expect(try await results == Array(repeating: 42, count: 20))
        #expect(await runs.value == 1)
        #expect(coalescer.callers("same") == 0)
    }

    @Test func followersGetTheSameError() async throws {
        let coalescer = Coalescer<Int>()
        let runs = RunCounter()
        let gate = Gate()
        struct Failed: Error {}
        async let outcomes = withTaskGroup(of: Bool.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await coalescer.run("x") { await runs.increment(); await gate.wait(); throw Failed() }
                        return false
                    } catch { return error is Failed }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(await eventually { coalescer.callers("x") == 5 })
        gate.open()
        #expect(await outcomes == Array(repeating: true, count: 5))
        #expect(await runs.value == 1)
    }

    /// Two admitted renders are held at a gate while four more arrive: those four are refused with 429.
    @Test func admissionRefusesBeyondTheLimitWith429() async throws {
        let admission = AdmissionControl(limit: 2)
        let refused = RunCounter()
        let gate = Gate()
        async let outcomes = withTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    do {
                        try await admission.admit { await gate.wait() }
                        return 200
                    } catch let error as ServiceError {
                        await refused.increment()
                        return Int(error.status.code)
                    } catch { return 0 }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        // Every one of the six has either been admitted (and waits) or been refused.
        #expect(await eventually { await refused.value + admission.inUse == 6 })
        #expect(admission.inUse == 2)
        gate.open()
        let statuses = await outcomes
        #expect(statuses.filter { $0 == 200 }.count == 2)
        #expect(statuses.filter { $0 == 429 }.count == 4)
        #expect(admission.inUse == 0)
    }

    /// Work that would never finish on its own: the deadline alone ends the wait (the suite's time limit
    /// fails the test if it does not).
    @Test func deadlineAnswers504() async throws {
        do {
            _ = try await withDeadline(.milliseconds(200)) { try await Task.sleep(for: .seconds(3600)); return 1 }
            Issue.record("deadline not enforced")
        } catch let error as ServiceError {
            #expect(error.status == .gatewayTimeout)
        }
        #expect(try await withDeadline(.seconds(3600)) { 7 } == 7)
    }
}

/// A clock tests move by hand.
final class TestClock: @unchecked Sendable {   // guarded by `lock`
    private let lock = NSLock()
    private var seconds = 1_800_000_000.0
    var now: Double { lock.withLock { seconds } }
    func advance(_ delta: Double) { lock.withLock { seconds += delta } }
}

actor RunCounter {
    var value = 0
    func increment() { value += 1 }
}
