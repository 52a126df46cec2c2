import ArgumentParser
import Foundation
import Logging
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
            var report: [(name: String, fields: CacheReport)] = []
            for (name, root, cap) in [("results", c.cacheRoot, c.cacheMaxBytes), ("sources", c.sourceCacheRoot, c.sourceCacheMaxBytes)] {
                let standard = (root as NSString).standardizingPath
                let (entries, bytes) = DiskCache.survey(root: standard)
                report.append((name, CacheReport(root: standard, entries: entries, bytes: bytes, capacityBytes: cap,
                                                 counts: DiskCache.savedCounts(root: standard) ?? CacheCounts())))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let object = Dictionary(uniqueKeysWithValues: report.map { ($0.name, $0.fields) })
                print(String(decoding: try encoder.encode(object), as: UTF8.self))
                return
            }
            for (name, r) in report {
                print("\(name): \(r.entries) entries, \(r.bytes) bytes of \(r.capacityBytes) (\(r.root))")
                print(String(format: "  hits %d (%d from memory, %.1f %%), misses %d, hit ratio %.3f, evictions %d",
                             r.hits, r.memoryHits, 100 * r.memoryHitShare, r.misses, r.hitRatio, r.evictions))
                if let since = r.countingSince, let updated = r.countsUpdated {
                    print("  counted since \(since), last written \(updated)")
                } else {
                    print("  no counts yet (no server has answered from this cache)")
                }
            }
        }
    }

    /// One cache's line in `cache stats`, in the JSON field names of `--json`.
    struct CacheReport: Encodable {
        var root: String
        var entries: Int
        var bytes: Int64
        var capacityBytes: Int64
        var hits: Int
        var memoryHits: Int
        var misses: Int
        var evictions: Int
        var hitRatio: Double
        var memoryHitShare: Double
        /// ISO 8601 UTC, or nil before any count was written.
        var countingSince: String?
        var countsUpdated: String?

        init(root: String, entries: Int, bytes: Int64, capacityBytes: Int64, counts: CacheCounts) {
            self.root = root
            self.entries = entries
            self.bytes = bytes
            self.capacityBytes = capacityBytes
            hits = counts.hits
            memoryHits = counts.memoryHits
            misses = counts.misses
            evictions = counts.evictions
            hitRatio = (counts.hitRatio * 10_000).rounded() / 10_000
            memoryHitShare = (counts.memoryShare * 10_000).rounded() / 10_000
            let format = ISO8601DateFormatter()
            countingSince = counts.since.map { format.string(from: Date(timeIntervalSince1970: $0)) }
            countsUpdated = counts.updated.map { format.string(from: Date(timeIntervalSince1970: $0)) }
        }

        enum CodingKeys: String, CodingKey {
            case root, entries, bytes, capacityBytes = "capacity_bytes", hits, memoryHits = "memory_hits", misses, evictions
            case hitRatio = "hit_ratio", memoryHitShare = "memory_hit_share", countingSince = "counting_since"
            case countsUpdated = "counts_updated"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(root, forKey: .root)
            try c.encode(entries, forKey: .entries)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(capacityBytes, forKey: .capacityBytes)
            try c.encode(hits, forKey: .hits)
            try c.encode(memoryHits, forKey: .memoryHits)
            try c.encode(misses, forKey: .misses)
            try c.encode(evictions, forKey: .evictions)
            try c.encode(hitRatio, forKey: .hitRatio)
            try c.encode(memoryHitShare, forKey: .memoryHitShare)
            // Explicit nulls: the keys are always there.
            try c.encode(countingSince, forKey: .countingSince)
            try c.encode(countsUpdated, forKey: .countsUpdated)
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
