import Foundation
import Testing
@testable import FileServer

@Suite("Removal journal: what every node reads to purge its caches")
struct RemovalJournalTests {
    let root = NSTemporaryDirectory() + "pinhole-journal-\(UUID().uuidString)"

    @Test func entriesAreReadInTimeOrderFromTheWindowAndPrunedByDay() async throws {
        let journal = try DiskRemovalJournal(root: root)
        let before = RemovalEntry.nowMilliseconds()
        try await journal.record("a")
        try await Task.sleep(for: .milliseconds(5))
        try await journal.record("b.c")
        let entries = try await journal.entries(since: before)
        #expect(entries.map(\.id) == ["a", "b.c"])
        #expect(try await journal.entries(since: entries[1].time).map(\.id) == ["b.c"])
        // A day directory from long ago is pruned whole; today's stays.
        let old = root + "/.removals/100"
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: old + "/" + RemovalEntry.name("z", at: 100 * DiskRemovalJournal.day), contents: nil)
        #expect(try await journal.entries(since: 0).count == 3)
        await journal.prune(before: before - 86_400_000)
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(try await journal.entries(since: 0).map(\.id) == ["a", "b.c"])
    }

    @Test func namesParse() {
        #expect(RemovalEntry(name: RemovalEntry.name("3f2504e0", at: 1_234))?.time == 1_234)
        #expect(RemovalEntry(name: "000000000001234.3f2504e0")?.id == "3f2504e0")
        #expect(RemovalEntry(name: "x.3f2504e0") == nil)
        #expect(RemovalEntry(name: "000000000001234.../etc") == nil)
    }
}
