import ArgumentParser
import Foundation
import Logging
import ThumbnailService

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Inspect or purge the thumbnail and source caches.",
        subcommands: [Stats.self, Purge.self])

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries, bytes and hit ratio of the caches.")
        @Option(help: "YAML configuration file.") var config: String?

        func run() async throws {
            let c = try await loadConfiguration(file: config)
            for (name, root, cap) in [("results", c.cacheRoot, c.cacheMaxBytes), ("sources", c.sourceCacheRoot, c.sourceCacheMaxBytes)] {
                let cache = DiskCache(root: root, capacityBytes: cap, expirySeconds: 0, logger: Logger(label: "pinhole.cache"))
                let now = cache.statistics
                var line = "\(name): \(now.entries) entries, \(now.bytes) bytes of \(cap) (\(root))"
                if let saved = DiskCache.savedStatistics(root: root) {
                    line += String(format: ", hit ratio %.3f (%d hits, %d misses)", saved.hitRatio, saved.hits, saved.misses)
                }
                print(line)
            }
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
            let caches = [DiskCache(root: c.cacheRoot, capacityBytes: c.cacheMaxBytes, expirySeconds: 0, logger: logger),
                          DiskCache(root: c.sourceCacheRoot, capacityBytes: c.sourceCacheMaxBytes, expirySeconds: 0, logger: logger)]
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
