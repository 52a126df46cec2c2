import ArgumentParser
import Foundation
import Logging
import ServiceSupport
import ThumbnailService

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Inspect or purge the thumbnail and source caches.",
        subcommands: [Stats.self, Purge.self])

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Entries, bytes, hits, misses, evictions and the share of hits answered from memory, per cache.",
            discussion: """
                Counts cover every server that used the directory since its counts began (they survive restarts); a
                running server writes them about once a second and at shutdown.
                """)
        @Option(help: "YAML configuration file.") var config: String?
        @Flag(help: "Print one JSON object (numbers as numbers).") var json = false

        func run() async throws {
            let c = try await loadConfiguration(file: config)
            let format = ISO8601DateFormatter()
            let time = { (seconds: Double?) -> JSONValue in seconds.map { .string(format.string(from: Date(timeIntervalSince1970: $0))) } ?? .null }
            var report: [String: JSONValue] = [:]
            for (name, root, cap) in [("results", c.cacheRoot, c.cacheMaxBytes), ("sources", c.sourceCacheRoot, c.sourceCacheMaxBytes)] {
                let standard = (root as NSString).standardizingPath
                let (entries, bytes) = DiskCache.survey(root: standard)
                let counts = DiskCache.savedCounts(root: standard) ?? CacheCounts()
                let rounded = { (x: Double) in JSONValue.float((x * 10_000).rounded() / 10_000) }
                report[name] = .object([
                    "root": .string(standard), "entries": .int(entries), "bytes": .int(Int(bytes)), "capacity_bytes": .int(Int(cap)),
                    "hits": .int(counts.hits), "memory_hits": .int(counts.memoryHits), "misses": .int(counts.misses),
                    "evictions": .int(counts.evictions), "hit_ratio": rounded(counts.hitRatio),
                    "memory_hit_share": rounded(counts.memoryShare), "counting_since": time(counts.since),
                    "counts_updated": time(counts.updated),
                ])
                if !json {
                    print("\(name): \(entries) entries, \(bytes) bytes of \(cap) (\(standard))")
                    print(String(format: "  hits %d (%d from memory, %.1f %%), misses %d, hit ratio %.3f, evictions %d",
                                 counts.hits, counts.memoryHits, 100 * counts.memoryShare, counts.misses, counts.hitRatio, counts.evictions))
                    if case let (.string(since), .string(updated)) = (time(counts.since), time(counts.updated)) {
                        print("  counted since \(since), last written \(updated)")
                    } else {
                        print("  no counts yet (no server has answered from this cache)")
                    }
                }
            }
            if json { print(JSONValue.object(report).text()) }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop cached thumbnails and sources of components (by id) or of source URLs.")
        @Option(help: "YAML configuration file.") var config: String?
        @Argument(help: "Component ids or source URLs.") var targets: [String]

        func run() async throws {
            let c = try await loadConfiguration(file: config)
            let logger = Logger(label: "pinhole.cache")
            // Beside a running server: its temporary files are left alone.
            let caches = [DiskCache(root: c.cacheRoot, capacityBytes: c.cacheMaxBytes, expirySeconds: 0, logger: logger, sweepTemporaries: false),
                          DiskCache(root: c.sourceCacheRoot, capacityBytes: c.sourceCacheMaxBytes, expirySeconds: 0, logger: logger,
                                    sweepTemporaries: false)]
            for target in targets {
                var removed = 0
                for cache in caches {
                    removed += cache.purge(group: ComponentKey.of(imageURL: target))
                    if target.contains("://") { removed += cache.purge(originContaining: target) }
                }
                print("\(target): \(removed) entries removed")
            }
        }
    }
}
