import Foundation
import Synchronization

/// What a cache directory has answered: hits (and how many of them came from memory), misses and evictions,
/// counted since the directory's counts began.
public struct CacheCounts: Sendable, Equatable, Codable {
    public var hits = 0
    /// Hits answered from the memory layer (the cache fast path included), a part of `hits`.
    public var memoryHits = 0
    public var misses = 0
    /// Entries removed to keep the cache under its cap.
    public var evictions = 0
    /// Seconds since 1970 when counting began and when the counts were last written.
    public var since: Double?
    public var updated: Double?

    public init() {}

    public var hitRatio: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    /// The share of hits answered from memory (0 when there were none).
    public var memoryShare: Double { hits == 0 ? 0 : Double(memoryHits) / Double(hits) }
    var isZero: Bool { hits == 0 && memoryHits == 0 && misses == 0 && evictions == 0 }

    mutating func add(_ other: CacheCounts) {
        hits += other.hits
        memoryHits += other.memoryHits
        misses += other.misses
        evictions += other.evictions
    }

    enum CodingKeys: String, CodingKey {
        case hits, memoryHits = "memory_hits", misses, evictions, since, updated
    }

    /// Tolerant of files written by earlier versions (which kept only hits and misses).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hits = try c.decodeIfPresent(Int.self, forKey: .hits) ?? 0
        memoryHits = try c.decodeIfPresent(Int.self, forKey: .memoryHits) ?? 0
        misses = try c.decodeIfPresent(Int.self, forKey: .misses) ?? 0
        evictions = try c.decodeIfPresent(Int.self, forKey: .evictions) ?? 0
        since = try c.decodeIfPresent(Double.self, forKey: .since)
        updated = try c.decodeIfPresent(Double.self, forKey: .updated)
    }
}

/// Counts a cache's hits, misses and evictions, and adds them to `<root>/stats.json` about once a second
/// while they change and at shutdown, so `pinhole cache stats` reads them while the server runs and after
/// it stops. Each flush adds only what was counted since the last one, under an exclusive lock on
/// `<root>/.stats.lock`: counts accumulate across restarts and across processes sharing the directory.
final class CacheCounters: Sendable {
    let root: String
    private let flushDelay: Duration
    private struct State {
        /// Counted since the last flush.
        var pending = CacheCounts()
        /// Counted by this process since it started.
        var total = CacheCounts()
        var flushScheduled = false
    }
    private let state = Mutex(State())

    init(root: String, flushDelay: Duration = .seconds(1)) {
        self.root = root
        self.flushDelay = flushDelay
    }

    static func file(root: String) -> String { root + "/stats.json" }

    func hit(fromMemory: Bool) { count { $0.hits += 1; if fromMemory { $0.memoryHits += 1 } } }
    func miss() { count { $0.misses += 1 } }
    func evicted(_ entries: Int) { if entries > 0 { count { $0.evictions += entries } } }

    /// What this process counted since it started.
    var processTotal: CacheCounts { state.withLock { $0.total } }

    private func count(_ change: (inout CacheCounts) -> Void) {
        let schedule = state.withLock { state -> Bool in
            change(&state.pending)
            change(&state.total)
            defer { state.flushScheduled = true }
            return !state.flushScheduled
        }
        // One flush a second at most, and none while nothing happens.
        if schedule {
            let delay = flushDelay
            Task.detached(priority: .background) { [self] in
                try? await Task.sleep(for: delay)
                flush()
            }
        }
    }

    /// Adds what was counted since the last flush to the file. On failure (a read-only or full disk) the
    /// counts are kept for the next flush.
    func flush() {
        let pending = state.withLock { state -> CacheCounts in
            defer { state.pending = CacheCounts(); state.flushScheduled = false }
            return state.pending
        }
        guard !pending.isZero else { return }
        if !Self.add(pending, root: root) {
            state.withLock { $0.pending.add(pending) }
        }
    }

    /// Reads the file, adds `counts` and replaces it (write to a temporary, rename), all under the lock.
    private static func add(_ counts: CacheCounts, root: String) -> Bool {
        let lock = open(root + "/.stats.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { return false }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { return false }
        defer { flock(lock, LOCK_UN) }
        let now = Date().timeIntervalSince1970
        var saved = read(root: root) ?? CacheCounts()
        saved.add(counts)
        saved.since = saved.since ?? now
        saved.updated = now
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(saved) else { return false }
        let temporary = root + "/.tmp/stats-\(getpid())-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return false }
        guard rename(temporary, file(root: root)) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }

    /// The counts written for a cache directory (nil when no server has counted there).
    static func read(root: String) -> CacheCounts? {
        guard let data = FileManager.default.contents(atPath: file(root: root)) else { return nil }
        return try? JSONDecoder().decode(CacheCounts.self, from: data)
    }
}
