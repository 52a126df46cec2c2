import FileServer
import Foundation
import Logging
import ServiceLifecycle
import ThumbnailService

/// Reads the shared removal journal and purges this node's caches of components removed through any
/// node, including removals made while this node was down: the time it read up to is kept beside its
/// result cache. Entries are re-read over a window, so a node with a clock a little behind cannot
/// slip an entry in behind the cursor.
struct RemovalWatcher: Service {
    let journal: any RemovalJournal
    let thumbnails: ThumbnailServer
    let cursorFile: String
    let configuration: ClusterConfiguration
    let logger: Logger

    static let window: Int64 = 5 * 60 * 1000

    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await watch() }
    }

    private func watch() async throws {
        var cursor = (try? String(contentsOfFile: cursorFile, encoding: .utf8)).flatMap { Int64($0.trimmed) } ?? RemovalEntry.nowMilliseconds()
        let retention = Int64(configuration.removalRetentionDays) * 86_400_000
        if RemovalEntry.nowMilliseconds() - cursor > retention {
            logger.warning("this node was down longer than removal_retention_days: thumbnails of components removed meanwhile may stay cached",
                           metadata: ["down_since": .stringConvertible(cursor / 1000)])
        }
        var seen = Set<String>()
        var lastPrune: Int64 = 0
        while !Task.isCancelled {
            let now = RemovalEntry.nowMilliseconds()
            do {
                for entry in try await journal.entries(since: cursor - Self.window) where !seen.contains(entry.name) {
                    seen.insert(entry.name)
                    let purged = thumbnails.purge(component: entry.id)
                    if purged > 0 {
                        logger.info("purged cached thumbnails of a removed component", metadata: ["id": .string(entry.id), "entries": .stringConvertible(purged)])
                    }
                }
                cursor = now
                seen = seen.filter { (RemovalEntry(name: $0)?.time ?? 0) >= now - 2 * Self.window }
                // Beside the result cache; an unwritable cache root (the cache then runs degraded) only
                // means a restart re-reads the last window instead of resuming exactly.
                try? FileManager.default.createDirectory(atPath: (cursorFile as NSString).deletingLastPathComponent,
                                                         withIntermediateDirectories: true)
                try? String(cursor).write(toFile: cursorFile, atomically: true, encoding: .utf8)
                if now - lastPrune > 3_600_000 {
                    lastPrune = now
                    await journal.prune(before: now - retention)
                }
            } catch {
                logger.warning("cannot read the removal journal", metadata: ["error": .string(error.description)])
            }
            try await Task.sleep(for: .seconds(configuration.removalPollSeconds))
        }
    }
}
