import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceSupport
import Synchronization

/// One cached item: bytes and the metadata needed to answer with them.
public struct CacheEntry: Sendable, Equatable {
    public struct Metadata: Codable, Sendable, Equatable {
        public var contentType: String
        /// Seconds since 1970 when stored.
        public var created: Double
        /// The body's length and SHA-1 hex: a torn or corrupted entry fails this check and is dropped.
        public var length: Int
        public var sha1: String
        /// What the entry was made from (the request path or source URL), for purges by URL.
        public var origin: String
        /// The `max_age()` filter's value, so that a hit answers with the same Cache-Control.
        public var maxAge: Int?
        /// True when Accept could not change the entry (an animated GIF kept as GIF): hits send no Vary.
        public var fixedFormat: Bool?
    }
    public var metadata: Metadata
    /// A `ByteBuffer` so that a hit from the memory layer is answered without copying the bytes.
    public var body: ByteBuffer
}

/// Where an entry lives: computing it hashes the group and the key, so callers that look the same
/// entry up again and again (hot thumbnails) compute it once and keep it.
public struct CacheAddress: Sendable, Hashable {
    public let group: String
    public let key: String
    public let path: String
}

/// A size-capped, crash-safe disk cache of small files, grouped by component so that one component's
/// entries are purged by removing one directory.
///
/// Layout: `<root>/<gg>/<gggg…>/<kkkk…>.entry`, `g` = SHA-256 of the group (the component), `k` = SHA-256
/// of the key. Each entry is written to a temporary file and renamed into place, so readers see a whole
/// entry or none; an entry that still fails its length and SHA-1 check is deleted and treated as a miss.
/// Least-recently-used entries are evicted in the background once the total passes the cap; the index
/// is rebuilt from the directory at start, so entries survive restarts.
public final class DiskCache: Sendable {
    public let root: String
    public let capacityBytes: Int64
    /// 0 = entries never expire.
    public let expirySeconds: Double
    let logger: Logger

    struct IndexEntry { var size: Int64; var lastAccess: Double }
    /// Entries read back from disk (so asked for at least twice) are kept in memory too, so hot
    /// thumbnails are served without a syscall; a stream of one-off renders does not displace them.
    struct Hot {
        var entries: [String: (entry: CacheEntry, lastUse: UInt64, checked: Double)] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }
    private let hot = NIOLockedValueBox(Hot())
    /// Bytes of entries kept in memory.
    public let memoryBytes: Int
    struct State {
        var index: [String: IndexEntry] = [:]
        var totalBytes: Int64 = 0
        var degradedSince: Double?
        var evicting = false
    }
    private let state = NIOLockedValueBox(State())
    /// Writes under way (each has a file in `.tmp` until its rename), and whether the cache is closing.
    private let writing = Atomic<Int>(0)
    private let closing = Atomic<Bool>(false)
    private static let magic = Array("PINHOLE-CACHE 1\n".utf8)
    /// Hits, misses and evictions, written beside the entries for `pinhole cache stats`.
    let counters: CacheCounters
    /// Names this process's temporary files: at shutdown it removes its own, never another's (a
    /// `pinhole cache` command or a second server on the same directory may be writing beside it).
    private static let temporaryPrefix = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))-"

    /// Seconds since 1970: the wall clock, or a test's own clock (expiry and LRU order without sleeping).
    let now: @Sendable () -> Double

    /// `sweepTemporaries`: remove temporary files left by a writer that died (a server starting); commands
    /// that only inspect or purge pass false.
    public init(root: String, capacityBytes: Int64, expirySeconds: Double, memoryBytes: Int = 0, logger: Logger,
                sweepTemporaries: Bool = true, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.now = clock
        self.memoryBytes = memoryBytes
        self.root = (root as NSString).standardizingPath
        self.counters = CacheCounters(root: self.root)
        self.capacityBytes = capacityBytes
        self.expirySeconds = expirySeconds
        self.logger = logger
        do {
            try FileManager.default.createDirectory(atPath: self.root + "/.tmp", withIntermediateDirectories: true)
        } catch {
            markDegraded("cannot create cache directory: \(OperatorText.describe(error))")
        }
        if sweepTemporaries { sweepStaleTemporaries() }
        rebuildIndex()
    }

    // MARK: Keys

    static func hex(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }

    func groupDirectory(_ group: String) -> String {
        let g = Self.hex(group)
        return "\(root)/\(g.prefix(2))/\(g)"
    }

    func path(group: String, key: String) -> String { groupDirectory(group) + "/" + Self.hex(key) + ".entry" }

    public func address(group: String, key: String) -> CacheAddress {
        CacheAddress(group: group, key: key, path: path(group: group, key: key))
    }

    // MARK: Reading

    /// The entry, or nil (miss, expired, or corrupted — the last two are deleted).
    public func get(group: String, key: String) -> CacheEntry? { get(address(group: group, key: key)) }

    public func get(_ address: CacheAddress) -> CacheEntry? {
        memoryHit(address) ?? diskEntry(address)
    }

    /// The entry read from its file (without asking the memory layer first), or nil (counted as a miss).
    public func diskEntry(_ address: CacheAddress) -> CacheEntry? {
        let path = address.path
        guard let data = FileManager.default.contents(atPath: path) else {
            counters.miss()
            return nil
        }
        guard let entry = Self.decode(Array(data)) else {
            logger.warning("dropping corrupted cache entry", metadata: ["path": .string(path)])
            remove(path)
            counters.miss()
            return nil
        }
        let now = self.now()
        if expirySeconds > 0, entry.metadata.created + expirySeconds < now {
            remove(path)
            counters.miss()
            return nil
        }
        utime(path, nil)   // the file's time carries the LRU order across restarts
        remember(path, entry)
        counters.hit(fromMemory: false)
        state.withLockedValue {
            let relative = String(path.dropFirst(root.count + 1))
            if $0.index[relative] == nil { $0.totalBytes += Int64(data.count) }
            $0.index[relative] = IndexEntry(size: Int64(data.count), lastAccess: now)
        }
        return entry
    }

    /// The size of the entry's file (nil when there is none), without reading it or counting anything.
    public func storedBytes(_ address: CacheAddress) -> Int? {
        var info = stat()
        return stat(address.path, &info) == 0 ? Int(info.st_size) : nil
    }

    /// The entry when the memory layer holds it (counted as a hit), without reading the disk; nil
    /// otherwise, and nothing is counted.
    public func memoryHit(_ address: CacheAddress) -> CacheEntry? {
        let path = address.path
        guard memoryBytes > 0, let (entry, checked) = hotEntry(path) else { return nil }
        let now = self.now()
        // A stat, at most once a second per entry, keeps the memory layer honest when another process
        // (`pinhole cache purge`) removed the file; purges in this process drop the entry at once.
        if expirySeconds == 0 || entry.metadata.created + expirySeconds >= now,
           now - checked < 1 || (access(path, F_OK) == 0 && markChecked(path, at: now)) {
            counters.hit(fromMemory: true)
            return entry
        }
        dropHot(path)
        return nil
    }

    static func decode(_ bytes: [UInt8]) -> CacheEntry? {
        guard bytes.count > magic.count, Array(bytes[0..<magic.count]) == magic,
              let newline = bytes[magic.count...].firstIndex(of: UInt8(ascii: "\n")),
              let metadata = try? JSONDecoder().decode(CacheEntry.Metadata.self, from: Data(bytes[magic.count..<newline])) else {
            return nil
        }
        let body = bytes[(newline + 1)...]
        guard body.count == metadata.length, sha1Hex(body) == metadata.sha1 else { return nil }
        return CacheEntry(metadata: metadata, body: ByteBuffer(bytes: body))
    }

    static func sha1Hex(_ bytes: some DataProtocol) -> String {
        Hex.encode(Insecure.SHA1.hash(data: bytes))
    }

    static func sha1Hex(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { Hex.encode(Insecure.SHA1.hash(data: $0)) }
    }

    // MARK: Writing

    /// Stores an entry atomically. Failures (unwritable or full disk) are logged and reported as
    /// degraded; the caller keeps serving.
    public func put(group: String, key: String, contentType: String, origin: String, body: ByteBuffer) {
        put(address(group: group, key: key), contentType: contentType, origin: origin, body: body)
    }

    public func put(_ address: CacheAddress, contentType: String, origin: String, body: ByteBuffer, sha1: String? = nil,
                    maxAge: Int? = nil, fixedFormat: Bool? = nil) {
        guard !closing.load(ordering: .acquiring) else { return }
        writing.add(1, ordering: .acquiringAndReleasing)
        defer { writing.subtract(1, ordering: .acquiringAndReleasing) }
        let metadata = CacheEntry.Metadata(contentType: contentType, created: now().rounded(.down),
                                           length: body.readableBytes, sha1: sha1 ?? Self.sha1Hex(body), origin: origin, maxAge: maxAge,
                                           fixedFormat: fixedFormat)
        guard let json = try? JSONEncoder().encode(metadata) else { return }
        let bytes = Self.magic + Array(json) + [UInt8(ascii: "\n")] + Array(buffer: body)
        let directory = (address.path as NSString).deletingLastPathComponent
        let final = address.path
        let temporary = root + "/.tmp/" + Self.temporaryPrefix + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
                throw CocoaError(.fileWriteUnknown)
            }
            guard rename(temporary, final) == 0 else { throw CocoaError(.fileWriteUnknown) }
            // An entry of the memory layer that this write replaced is stale; the new one earns its place
            // there by being read back (so one-off renders never push hot thumbnails out).
            dropHot(final)
        } catch {
            unlink(temporary)
            markDegraded("cannot write cache entry in \(root): \(String(cString: strerror(errno)))")
            return
        }
        let overCapacity = state.withLockedValue { state -> Bool in
            state.degradedSince = nil
            let relative = String(final.dropFirst(root.count + 1))
            if let old = state.index[relative] { state.totalBytes -= old.size }
            state.index[relative] = IndexEntry(size: Int64(bytes.count), lastAccess: now())
            state.totalBytes += Int64(bytes.count)
            guard state.totalBytes > capacityBytes, !state.evicting else { return false }
            state.evicting = true
            return true
        }
        if overCapacity {
            Task.detached(priority: .background) { self.evict() }
        }
    }

    // MARK: Memory layer

    /// The in-memory entry and when its file was last seen on disk.
    private func hotEntry(_ path: String) -> (CacheEntry, checked: Double)? {
        hot.withLockedValue { hot in
            guard var slot = hot.entries[path] else { return nil }
            hot.clock += 1
            slot.lastUse = hot.clock
            hot.entries[path] = slot
            return (slot.entry, slot.checked)
        }
    }

    private func markChecked(_ path: String, at time: Double) -> Bool {
        hot.withLockedValue { $0.entries[path]?.checked = time }
        return true
    }

    private func remember(_ path: String, _ entry: CacheEntry) {
        guard memoryBytes > 0, entry.body.readableBytes <= memoryBytes / 16 else { return }
        hot.withLockedValue { hot in
            hot.clock += 1
            if let old = hot.entries[path] { hot.bytes -= old.entry.body.readableBytes }
            hot.entries[path] = (entry, hot.clock, now())
            hot.bytes += entry.body.readableBytes
            if hot.bytes > memoryBytes {
                // Drop the least recently used half: cheap, and rare.
                let ordered = hot.entries.sorted { $0.value.lastUse < $1.value.lastUse }
                for (key, slot) in ordered.prefix(ordered.count / 2) {
                    hot.entries.removeValue(forKey: key)
                    hot.bytes -= slot.entry.body.readableBytes
                }
            }
        }
    }

    private func dropHot(_ path: String) {
        hot.withLockedValue { hot in
            if let old = hot.entries.removeValue(forKey: path) { hot.bytes -= old.entry.body.readableBytes }
        }
    }

    private func markDegraded(_ reason: String) {
        let first = state.withLockedValue { state -> Bool in
            defer { if state.degradedSince == nil { state.degradedSince = now() } }
            return state.degradedSince == nil
        }
        if first { logger.error("cache degraded: serving without caching", metadata: ["reason": .string(reason)]) }
    }

    /// True while the last write failed: the service renders without caching.
    public var isDegraded: Bool { state.withLockedValue { $0.degradedSince != nil } }

    // MARK: Eviction and purges

    /// Removes least-recently-used entries until the total is 90 % of the cap (again if writes pushed
    /// it back over meanwhile).
    func evict() {
        while evictOnce() {}
    }

    private func evictOnce() -> Bool {
        let victims = state.withLockedValue { state -> [(String, IndexEntry)] in
            let target = capacityBytes * 9 / 10
            var total = state.totalBytes
            var chosen: [(String, IndexEntry)] = []
            for (path, entry) in state.index.sorted(by: { $0.value.lastAccess < $1.value.lastAccess }) {
                if total <= target { break }
                chosen.append((path, entry))
                total -= entry.size
            }
            return chosen
        }
        for (relative, _) in victims { remove(root + "/" + relative) }
        counters.evicted(victims.count)
        if !victims.isEmpty { logger.debug("evicted cache entries", metadata: ["count": .stringConvertible(victims.count)]) }
        return state.withLockedValue { state -> Bool in
            if state.totalBytes > capacityBytes, !victims.isEmpty { return true }
            state.evicting = false
            return false
        }
    }

    private func remove(_ path: String) {
        unlink(path)
        dropHot(path)
        let relative = String(path.dropFirst(root.count + 1))
        state.withLockedValue { state in
            if let old = state.index.removeValue(forKey: relative) { state.totalBytes -= old.size }
        }
    }

    /// Drops every entry of a group (a component); returns how many.
    @discardableResult public func purge(group: String) -> Int {
        let directory = groupDirectory(group)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names { remove(directory + "/" + name) }
        rmdir(directory)
        return names.count
    }

    /// Drops every entry whose origin (request path or source URL) contains `text`; returns how many.
    @discardableResult public func purge(originContaining text: String) -> Int {
        var removed = 0
        for (relative, _) in Self.scan(root: root) {
            let path = root + "/" + relative
            guard let data = FileManager.default.contents(atPath: path), let entry = Self.decode(Array(data)) else { continue }
            if entry.metadata.origin.contains(text) {
                remove(path)
                removed += 1
            }
        }
        return removed
    }

    /// Temporary files untouched for a minute belong to a writer that died (a write takes milliseconds).
    private func sweepStaleTemporaries() {
        let directory = root + "/.tmp/"
        let stale = Date().timeIntervalSince1970 - 60
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var info = stat()
            if stat(directory + name, &info) == 0, Double(info.st_mtim.tv_sec) < stale { unlink(directory + name) }
        }
    }

    /// Every entry file under `root` (relative path) with its size and modification time, read without
    /// creating or changing anything.
    static func scan(root: String) -> [(relative: String, entry: IndexEntry)] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [(String, IndexEntry)] = []
        while let path = enumerator.nextObject() as? String {
            var info = stat()
            guard path.hasSuffix(".entry"), stat(root + "/" + path, &info) == 0 else { continue }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            found.append((path, IndexEntry(size: Int64(info.st_size), lastAccess: modified)))
        }
        return found
    }

    /// Entries and bytes under a cache directory (for `pinhole cache stats` beside a running server).
    public static func survey(root: String) -> (entries: Int, bytes: Int64) {
        let found = scan(root: root)
        return (found.count, found.reduce(0) { $0 + $1.entry.size })
    }

    private func rebuildIndex() {
        var index: [String: IndexEntry] = [:]
        var total: Int64 = 0
        for (relative, entry) in Self.scan(root: root) {
            index[relative] = entry
            total += entry.size
        }
        state.withLockedValue {
            $0.index = index
            $0.totalBytes = total
        }
    }

    // MARK: Statistics

    /// This process's view: entries and bytes in the index, and what it counted since it started.
    public struct Statistics: Sendable, Equatable {
        public var entries: Int
        public var bytes: Int64
        public var hits: Int
        public var memoryHits: Int
        public var misses: Int
        public var evictions: Int
        public var degraded: Bool
        public var hitRatio: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    /// At shutdown: no new writes start, those under way get up to `seconds` to finish, whatever this
    /// process still has in `.tmp` (a write cut off) is removed, so a stopped server leaves no temporary
    /// file, and the counts are written.
    public func quiesce(seconds: Double = 2) {
        closing.store(true, ordering: .releasing)
        let deadline = Date().addingTimeInterval(seconds)
        while writing.load(ordering: .acquiring) > 0, Date() < deadline { usleep(10_000) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/.tmp")) ?? [] where name.hasPrefix(Self.temporaryPrefix) {
            unlink(root + "/.tmp/" + name)
        }
        counters.flush()
    }

    /// The counts kept for a cache directory by the servers that used it (nil when none has).
    public static func savedCounts(root: String) -> CacheCounts? {
        CacheCounters.read(root: (root as NSString).standardizingPath)
    }

    public var statistics: Statistics {
        let counted = counters.processTotal
        return state.withLockedValue {
            Statistics(entries: $0.index.count, bytes: $0.totalBytes, hits: counted.hits, memoryHits: counted.memoryHits,
                       misses: counted.misses, evictions: counted.evictions, degraded: $0.degradedSince != nil)
        }
    }
}
