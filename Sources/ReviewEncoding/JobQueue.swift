import Foundation
import NIOConcurrencyHelpers

/// The durable job queue: one JSON file per job in `<directory>/jobs`, each write a new file fsynced and
/// renamed over the old (so a crash leaves the previous state or the next, never half of one).
///
/// Processes share it: `pinhole encode ID` adds job files while `pinhole serve` runs them. Only the
/// process holding the runner lock (`runner.lock`, flock) changes existing jobs.
public final class JobQueue: Sendable {
    public let directory: String
    let jobs: String
    private let lock = NIOLock()

    public init(directory: String) throws {
        self.directory = Self.absolute(directory)
        jobs = self.directory + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
    }

    /// The scratch directory of a job's encodes (made fresh by each attempt).
    public func workDirectory(of job: ReviewJob) -> String { directory + "/work/" + job.id }

    // MARK: Reading

    public func load(_ id: String) -> ReviewJob? {
        guard let data = FileManager.default.contents(atPath: path(id)) else { return nil }
        return try? JSONDecoder().decode(ReviewJob.self, from: data)
    }

    /// Every job, oldest first.
    public func all() -> [ReviewJob] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: jobs)) ?? []
        return names.filter { $0.hasSuffix(".json") }
            .compactMap { load(String($0.dropLast(5))) }
            .sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    public func jobs(of source: String) -> [ReviewJob] { all().filter { $0.source == source } }

    /// The oldest queued job due at `now` and not in `excluding`.
    func nextDue(now: Date, excluding running: Set<String>) -> ReviewJob? {
        all().first { $0.state == .queued && $0.notBefore <= now.timeIntervalSince1970 && !running.contains($0.id) }
    }

    // MARK: Writing

    /// Records a new job for an upload that has committed.
    @discardableResult
    public func enqueue(source: String, sourceMD5: String?) throws -> ReviewJob {
        let job = ReviewJob(source: source, sourceMD5: sourceMD5)
        try save(job)
        return job
    }

    /// Writes `job` durably (its `updated` set to now).
    public func save(_ job: ReviewJob) throws {
        var job = job
        job.updated = Date().timeIntervalSince1970
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(job)
        try lock.withLock {
            let temporary = jobs + "/.\(job.id).\(UUID().uuidString.prefix(8)).tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let descriptor = open(temporary, O_RDONLY)
            if descriptor >= 0 { fsync(descriptor); close(descriptor) }
            guard rename(temporary, path(job.id)) == 0 else {
                unlink(temporary)
                throw CocoaError(.fileWriteUnknown)
            }
            let directoryDescriptor = open(jobs, O_RDONLY)
            if directoryDescriptor >= 0 { fsync(directoryDescriptor); close(directoryDescriptor) }
        }
    }

    /// Jobs left `running` by a process that stopped (a restart, SIGKILL) are queued again; stray
    /// temporary files are removed. Called by the runner lock's holder only.
    func recoverInterrupted() -> [ReviewJob] {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: jobs)) ?? [] where name.hasSuffix(".tmp") {
            try? FileManager.default.removeItem(atPath: jobs + "/" + name)
        }
        var recovered: [ReviewJob] = []
        for var job in all() where job.state == .running {
            job.state = .queued
            job.step = nil
            job.progress = nil
            job.reason = "interrupted (the encoder stopped); started again"
            if (try? save(job)) != nil { recovered.append(job) }
        }
        return recovered
    }

    private func path(_ id: String) -> String { jobs + "/" + id + ".json" }

    /// Sandboxed programs are given absolute paths (bubblewrap binds by path).
    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (full as NSString).standardizingPath
    }
}

/// The lock only the process running jobs holds (an flock on `<directory>/runner.lock`, released when
/// that process exits, however it exits).
public final class RunnerLock: Sendable {
    private let descriptor: Int32

    /// Nil when another process holds it.
    public init?(directory: String) {
        let fd = open(directory + "/runner.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        descriptor = fd
    }

    /// Whether some process holds the lock now (a running `pinhole serve`).
    public static func isHeld(directory: String) -> Bool {
        guard let lock = RunnerLock(directory: directory) else { return true }
        lock.release()
        return false
    }

    public func release() { close(descriptor) }
}
