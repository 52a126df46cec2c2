import Foundation
import NIOConcurrencyHelpers

/// The durable job queue: one JSON file per job, each write a new file fsynced and renamed over the old
/// (so a crash leaves the previous state or the next, never half of one). Queued and running jobs live in
/// `<directory>/jobs`, finished ones in `<directory>/finished`: the runner, which looks for due jobs
/// several times a second, reads only the few unfinished ones however long the history grows.
///
/// Processes share it: `pinhole encode ID` adds job files while `pinhole serve` runs them. Only the
/// process holding the runner lock (`runner.lock`, flock) changes existing jobs.
public final class JobQueue: Sendable {
    public let directory: String
    let jobs: String
    let finished: String
    private let lock = NIOLock()

    public init(directory: String) throws {
        self.directory = Self.absolute(directory)
        jobs = self.directory + "/jobs"
        finished = self.directory + "/finished"
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: finished, withIntermediateDirectories: true)
    }

    /// The scratch directory of a job's encodes (made fresh by each attempt).
    public func workDirectory(of job: ReviewJob) -> String { directory + "/work/" + job.id }

    // MARK: Reading

    /// The job, finished or not (a finished copy wins: a crash between writing it and removing the
    /// unfinished one leaves both).
    public func load(_ id: String) -> ReviewJob? {
        read(finished + "/" + id + ".json") ?? read(path(id))
    }

    /// Every job, oldest first.
    public func all() -> [ReviewJob] {
        var byID: [String: ReviewJob] = [:]
        for job in read(directory: jobs) { byID[job.id] = job }
        for job in read(directory: finished) { byID[job.id] = job }
        return Self.ordered(Array(byID.values))
    }

    /// Queued and running jobs, oldest first.
    public func unfinished() -> [ReviewJob] {
        Self.ordered(read(directory: jobs).filter { !$0.state.isFinished })
    }

    public func jobs(of source: String) -> [ReviewJob] { all().filter { $0.source == source } }

    /// The oldest queued job due at `now` and not in `excluding`.
    func nextDue(now: Date, excluding running: Set<String>) -> ReviewJob? {
        unfinished().first { $0.state == .queued && $0.notBefore <= now.timeIntervalSince1970 && !running.contains($0.id) }
    }

    private func read(_ path: String) -> ReviewJob? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(ReviewJob.self, from: data)
    }

    private func read(directory: String) -> [ReviewJob] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.compactMap { read(directory + "/" + $0) }
    }

    private static func ordered(_ jobs: [ReviewJob]) -> [ReviewJob] {
        jobs.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    // MARK: Writing

    /// Records a new job for an upload that has committed.
    @discardableResult
    public func enqueue(source: String, sourceMD5: String?) throws -> ReviewJob {
        let job = ReviewJob(source: source, sourceMD5: sourceMD5)
        try save(job)
        return job
    }

    /// Writes `job` durably (its `updated` set to now); a finished job moves to `finished`.
    public func save(_ job: ReviewJob) throws {
        var job = job
        job.updated = Date().timeIntervalSince1970
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(job)
        try lock.withLock {
            let directory = job.state.isFinished ? finished : jobs
            let temporary = directory + "/.\(job.id).\(UUID().uuidString.prefix(8)).tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let descriptor = open(temporary, O_RDONLY)
            if descriptor >= 0 { fsync(descriptor); close(descriptor) }
            guard rename(temporary, directory + "/" + job.id + ".json") == 0 else {
                unlink(temporary)
                throw CocoaError(.fileWriteUnknown)
            }
            Self.syncDirectory(directory)
            if job.state.isFinished, unlink(path(job.id)) == 0 {
                Self.syncDirectory(jobs)
            }
        }
    }

    private static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY)
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
    }

    /// Jobs left `running` by a process that stopped (a restart, SIGKILL) are queued again; stray
    /// temporary files are removed. Called by the runner lock's holder only.
    func recoverInterrupted() -> [ReviewJob] {
        for directory in [jobs, finished] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".tmp") {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
            }
        }
        // Finished, and its unfinished copy not yet removed when the process stopped.
        for job in read(directory: jobs) where FileManager.default.fileExists(atPath: finished + "/" + job.id + ".json") {
            unlink(path(job.id))
        }
        var recovered: [ReviewJob] = []
        for var job in unfinished() where job.state == .running {
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
