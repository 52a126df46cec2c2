import Foundation
import NIOPosix
import ObjectStorage

/// Removals, written where every node of a cluster can read them: each node's thumbnail caches hold
/// renders of any component (a URL's home node is chosen by its hash), so a removal on one node must
/// purge all of them, including nodes that were down when it happened. Entries are named
/// `<milliseconds>.<id>`, so they list in time order; a reader keeps a cursor.
public protocol RemovalJournal: Sendable {
    func record(_ id: String) async throws(FileServerError)
    /// Entries at or after `since` (milliseconds since 1970), oldest first.
    func entries(since: Int64) async throws(FileServerError) -> [RemovalEntry]
    /// Deletes entries older than `before`.
    func prune(before: Int64) async
}

public struct RemovalEntry: Sendable, Hashable {
    public let name: String
    public let time: Int64
    public let id: String

    public init?(name: String) {
        guard let dot = name.firstIndex(of: "."), let time = Int64(name[..<dot]) else { return nil }
        self.name = name
        self.time = time
        id = String(name[name.index(after: dot)...])
        guard ComponentID(id) != nil else { return nil }
    }

    static func name(_ id: String, at time: Int64) -> String { String(format: "%015lld", time) + "." + id }
    public static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The journal as files in `<root>/.removals/<day>/` (beside a disk store, on the shared filesystem).
/// One directory per UTC day, so a poll lists only the day or two its window covers, however many
/// days the journal keeps.
public struct DiskRemovalJournal: RemovalJournal {
    let directory: String
    static let day: Int64 = 86_400_000

    public init(root: String) throws {
        directory = (root as NSString).standardizingPath + "/.removals"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public func record(_ id: String) async throws(FileServerError) {
        let now = RemovalEntry.nowMilliseconds()
        let day = directory + "/" + String(now / Self.day)
        // Blocking filesystem calls (an NFS round trip or two) go to the I/O pool, as the store's do.
        let created = try? await NIOThreadPool.singleton.runIfActive {
            try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
            return FileManager.default.createFile(atPath: day + "/" + RemovalEntry.name(id, at: now), contents: nil)
        }
        guard created == true else { throw FileServerError(.internalServerError, "storage unavailable") }
    }

    public func entries(since: Int64) async throws(FileServerError) -> [RemovalEntry] {
        let directory = directory
        let found = try? await NIOThreadPool.singleton.runIfActive { () -> [RemovalEntry]? in
            let fm = FileManager.default
            guard let days = try? fm.contentsOfDirectory(atPath: directory) else { return nil }
            var found: [RemovalEntry] = []
            for day in days.compactMap(Int64.init) where day >= since / Self.day {
                let names = (try? fm.contentsOfDirectory(atPath: directory + "/" + String(day))) ?? []
                found += names.compactMap(RemovalEntry.init(name:)).filter { $0.time >= since }
            }
            return found
        }
        guard let found = found ?? nil else { throw FileServerError(.internalServerError, "storage unavailable") }
        return found.sorted { $0.name < $1.name }
    }

    public func prune(before: Int64) async {
        let days = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for day in days.compactMap(Int64.init) where (day + 1) * Self.day <= before {
            try? FileManager.default.removeItem(atPath: directory + "/" + String(day))
        }
    }
}

/// The journal as empty objects under `<prefix>.removals/` in the components' bucket (component ids
/// never start with a dot, so the names cannot meet).
public struct S3RemovalJournal: RemovalJournal {
    let client: S3Client
    let prefix: String

    public init(client: S3Client, prefix: String) {
        self.client = client
        self.prefix = prefix + ".removals/"
    }

    public func record(_ id: String) async throws(FileServerError) {
        do {
            // Create-only: two nodes logging the same removal in the same millisecond leave one entry.
            try await client.put(key: prefix + RemovalEntry.name(id, at: RemovalEntry.nowMilliseconds()), body: .init(),
                                 contentType: "application/octet-stream", createOnly: true)
        } catch .preconditionFailed {
            return
        } catch {
            throw S3ComponentStore.error(error)
        }
    }

    public func entries(since: Int64) async throws(FileServerError) -> [RemovalEntry] {
        var found: [RemovalEntry] = []
        var after = prefix + String(format: "%015lld", max(since - 1, 0))
        do {
            while true {
                let keys = try await client.list(prefix: prefix, startAfter: after)
                found += keys.compactMap { RemovalEntry(name: String($0.dropFirst(prefix.count))) }.filter { $0.time >= since }
                guard keys.count == 1000, let last = keys.last else { break }
                after = last
            }
        } catch {
            throw S3ComponentStore.error(error)
        }
        return found
    }

    public func prune(before: Int64) async {
        for key in (try? await client.list(prefix: prefix)) ?? [] {
            guard let entry = RemovalEntry(name: String(key.dropFirst(prefix.count))), entry.time < before else { break }
            try? await client.delete(key: key)
        }
    }
}
