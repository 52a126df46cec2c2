import Foundation
import Testing
@testable import ReviewEncoding

@Suite struct JobQueueTests {
    func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "pinhole-queue-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func jobsAreOnDiskAndSurviveANewQueue() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try JobQueue(directory: directory)
        let first = try queue.enqueue(source: "component-a", sourceMD5: "aa")
        var second = try queue.enqueue(source: "component-b", sourceMD5: nil)
        second.state = .running
        second.step = "making ftrackreview-mp4"
        try queue.save(second)
        let reopened = try JobQueue(directory: directory)
        #expect(reopened.all().map(\.id) == [first.id, second.id])
        #expect(reopened.load(second.id)?.state == .running)
        // A job left running by a stopped process is queued again, with the reason said.
        let recovered = reopened.recoverInterrupted()
        #expect(recovered.map(\.id) == [second.id])
        #expect(reopened.load(second.id)?.state == .queued)
        #expect(reopened.load(second.id)?.reason?.contains("interrupted") == true)
        #expect(reopened.nextDue(now: Date(), excluding: []).map(\.id) == first.id)
        #expect(reopened.nextDue(now: Date(), excluding: [first.id]).map(\.id) == second.id)
    }

    @Test func finishedJobsMoveOutOfTheRunnersWay() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try JobQueue(directory: directory)
        var job = try queue.enqueue(source: "c", sourceMD5: nil)
        let other = try queue.enqueue(source: "d", sourceMD5: nil)
        job.state = .done
        try queue.save(job)
        #expect(FileManager.default.fileExists(atPath: directory + "/finished/\(job.id).json"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/jobs/\(job.id).json"))
        #expect(queue.unfinished().map(\.id) == [other.id])
        #expect(queue.all().map(\.id) == [job.id, other.id])
        #expect(queue.load(job.id)?.state == .done)
        // A stop between writing the finished copy and removing the other leaves both: the finished one wins.
        var stale = job
        stale.state = .running
        let data = try JSONEncoder().encode(stale)
        FileManager.default.createFile(atPath: directory + "/jobs/\(job.id).json", contents: data)
        #expect(queue.load(job.id)?.state == .done)
        #expect(queue.all().count == 2)
        #expect(queue.recoverInterrupted().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory + "/jobs/\(job.id).json"))
    }

    @Test func aJobWaitingForItsRetryIsNotDue() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try JobQueue(directory: directory)
        var job = try queue.enqueue(source: "c", sourceMD5: nil)
        job.notBefore = Date().timeIntervalSince1970 + 60
        try queue.save(job)
        #expect(queue.nextDue(now: Date(), excluding: []) == nil)
        #expect(queue.nextDue(now: Date().addingTimeInterval(61), excluding: [])?.id == job.id)
    }

    @Test func strayTemporaryFilesAreSweptAndNeverReadAsJobs() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = try JobQueue(directory: directory)
        FileManager.default.createFile(atPath: directory + "/jobs/.half.tmp", contents: Data("{\"id\":".utf8))
        FileManager.default.createFile(atPath: directory + "/jobs/broken.json", contents: Data("{\"id\":".utf8))
        #expect(queue.all().isEmpty)
        _ = queue.recoverInterrupted()
        #expect(!FileManager.default.fileExists(atPath: directory + "/jobs/.half.tmp"))
    }

    @Test func onlyOneProcessHoldsTheRunnerLock() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(!RunnerLock.isHeld(directory: directory))
        let lock = try #require(RunnerLock(directory: directory))
        // flock is per open file description: a second open in this process is refused like another process.
        #expect(RunnerLock(directory: directory) == nil)
        #expect(RunnerLock.isHeld(directory: directory))
        lock.release()
        #expect(!RunnerLock.isHeld(directory: directory))
    }

    @Test func reviewKindsFollowTheStoredType() {
        #expect(ReviewEncoder.kind(contentType: "video/quicktime", fileName: nil) == .video)
        #expect(ReviewEncoder.kind(contentType: "application/mxf", fileName: nil) == .video)
        #expect(ReviewEncoder.kind(contentType: "image/x-exr", fileName: nil) == .image)
        #expect(ReviewEncoder.kind(contentType: "application/octet-stream", fileName: "shot.0001.dpx") == .image)
        #expect(ReviewEncoder.kind(contentType: "application/octet-stream", fileName: "plate.mov") == .video)
        #expect(ReviewEncoder.kind(contentType: "image/svg+xml", fileName: nil) == nil)
        #expect(ReviewEncoder.kind(contentType: "application/pdf", fileName: "notes.pdf") == nil)
    }

    @Test func jpegSizeComesFromTheFrameHeader() {
        // SOI, an APP0 of 16 bytes, SOF0 of 640x480.
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array(repeating: 0, count: 14)
        bytes += [0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x03] + Array(repeating: 0, count: 9)
        #expect(JPEGSize.of(bytes)?.width == 640 && JPEGSize.of(bytes)?.height == 480)
        #expect(JPEGSize.of([0x89, 0x50]) == nil)
    }
}
