import AsyncHTTPClient
import FileServer
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import ServiceSupport
import ThumbnailService

/// Runs the review job queue: for every committed upload of a video or a still, ftrack's web-review
/// renditions are encoded (FFmpeg, confined, at idle priority), stored by the file server under new
/// component ids, and registered with ftrack. One encode at a time by default; transient failures are
/// retried with backoff; a removed source cancels its jobs and removes their renditions.
public final class ReviewEncoder: Service, Sendable {
    public let configuration: EncodeConfiguration
    public let queue: JobQueue
    let store: any ComponentStore
    let renderStill: StillRenderer
    let logger: Logger
    let http: HTTPClient
    let registration: FtrackRegistration?

    private struct Running {
        var source: String
        var cancellation: Cancellation
        var why: Why = .removed
    }
    enum Why { case removed, shutdown }
    private let running = NIOLockedValueBox<[String: Running]>([:])
    private let stopping = NIOLockedValueBox(false)
    private let sandbox: WorkerSandbox

    public init(configuration: EncodeConfiguration, store: any ComponentStore, renderStill: @escaping StillRenderer, logger: Logger) throws {
        self.configuration = configuration
        queue = try JobQueue(directory: configuration.directory)
        self.store = store
        self.renderStill = renderStill
        self.logger = logger
        http = HTTPClient(eventLoopGroupProvider: .singleton)
        registration = configuration.registers
            ? FtrackRegistration(client: FtrackClient(server: configuration.ftrackServer, user: configuration.apiUser,
                                                      apiKey: configuration.apiKey, timeout: configuration.apiTimeout, http: http))
            : nil
        let scratch = queue.directory + "/work"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        sandbox = ConfinedProcess.bestSandbox(scratch: scratch)
    }

    // MARK: What comes in

    /// Whether a stored component gets review renditions, from its type (or, typeless, its file name).
    public static func kind(contentType: String, fileName: String?) -> ReviewJob.Kind? {
        let type = contentType.lowercased().split(separator: ";").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        if type.hasPrefix("video/") || type == "application/mxf" { return .video }
        if type.hasPrefix("image/") { return type.contains("svg") ? nil : .image }
        let ext = ((fileName ?? "") as NSString).pathExtension.lowercased()
        if ["mov", "mp4", "m4v", "mxf", "mkv", "avi", "webm"].contains(ext) { return .video }
        if ["jpg", "jpeg", "png", "tif", "tiff", "exr", "dpx", "psd", "hdr", "webp"].contains(ext) { return .image }
        return nil
    }

    /// Called once an upload has committed, before it is answered: the job is on disk when the client
    /// hears 200. Earlier unfinished jobs of the same component are superseded.
    public func uploaded(_ record: ComponentRecord) {
        guard configuration.enabled, Self.kind(contentType: record.contentType, fileName: record.fileName) != nil else { return }
        do {
            let job = try queue.enqueue(source: record.id, sourceMD5: record.md5)
            logger.info("review encoding queued", metadata: ["job": .string(job.id), "component": .string(record.id)])
            for var earlier in queue.unfinished() where earlier.source == record.id && earlier.id != job.id && earlier.state == .queued {
                earlier.state = .cancelled
                earlier.reason = "superseded by a new upload of the component"
                try? queue.save(earlier)
            }
            updateQueueLength()
        } catch {
            logger.error("review encoding could not be queued", metadata: ["component": .string(record.id), "error": .string(OperatorText.describe(error))])
        }
    }

    /// A removed component: its jobs are cancelled (a running encode killed) and their renditions removed.
    public func removed(_ source: String) async {
        var cancelled = 0
        for (id, entry) in running.withLockedValue({ $0 }) where entry.source == source {
            running.withLockedValue { $0[id]?.why = .removed }
            entry.cancellation.cancel()
            cancelled += 1
        }
        for var job in queue.jobs(of: source) {
            if job.state == .queued {
                job.state = .cancelled
                job.reason = "the source component was removed"
                try? queue.save(job)
                cancelled += 1
            }
            if running.withLockedValue({ $0[job.id] == nil }) { await removeRenditions(of: &job) }
        }
        if cancelled > 0 { logger.info("review encoding cancelled", metadata: ["component": .string(source), "jobs": .stringConvertible(cancelled)]) }
        updateQueueLength()
    }

    // MARK: The loop

    public func run() async throws {
        guard let lock = RunnerLock(directory: queue.directory) else {
            logger.warning("another process runs the review queue in this directory; this one does not encode",
                           metadata: ["directory": .string(queue.directory)])
            try? await gracefulShutdown()
            return
        }
        defer { lock.release() }
        ReviewMetrics.register()
        for job in queue.recoverInterrupted() {
            logger.notice("review job interrupted by a stop; queued again", metadata: ["job": .string(job.id), "component": .string(job.source)])
        }
        logger.info("review encoder running", metadata: [
            "sandbox": .string("\(sandbox)"), "concurrency": .stringConvertible(configuration.concurrency),
            "registers_with": .string(configuration.registers ? configuration.ftrackServer : "nobody (encode.ftrack_server is not set)"),
        ])
        updateQueueLength()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !stopping.withLockedValue({ $0 }) {
                    while running.withLockedValue({ $0.count }) < configuration.concurrency,
                          let job = queue.nextDue(now: Date(), excluding: Set(running.withLockedValue { $0.keys })) {
                        let cancellation = Cancellation()
                        running.withLockedValue { $0[job.id] = Running(source: job.source, cancellation: cancellation) }
                        group.addTask { await self.execute(job, cancellation: cancellation) }
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.stopping.withLockedValue { $0 = true }
            for (id, entry) in self.running.withLockedValue({ $0 }) {
                self.running.withLockedValue { $0[id]?.why = .shutdown }
                entry.cancellation.cancel()
            }
        }
        try? await http.shutdown()
    }

    // MARK: One job

    func execute(_ initial: ReviewJob, cancellation: Cancellation) async {
        var job = initial
        job.state = .running
        job.reason = nil
        try? queue.save(job)
        updateQueueLength()
        let work = queue.workDirectory(of: job)
        try? FileManager.default.removeItem(atPath: work)
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: work)
            running.withLockedValue { _ = $0.removeValue(forKey: initial.id) }
            updateQueueLength()
        }
        do {
            try await perform(&job, work: work, cancellation: cancellation)
            job.state = .done
            job.step = nil
            job.progress = nil
            try? queue.save(job)
            logger.info("review encoding done", metadata: [
                "job": .string(job.id), "component": .string(job.source),
                "renditions": .string(job.renditions.map { "\($0.name)=\($0.componentID)" }.joined(separator: " ")),
                "registration": .string(job.registration.rawValue),
            ])
        } catch let error as ReviewError {
            await finish(&job, error)
        } catch {
            await finish(&job, .transient(OperatorText.describe(error)))
        }
    }

    private func finish(_ job: inout ReviewJob, _ error: ReviewError) async {
        job.step = nil
        job.progress = nil
        switch error {
        case .cancelled:
            let why = running.withLockedValue { $0[job.id]?.why } ?? .removed
            if why == .shutdown {
                job.state = .queued
                job.reason = "interrupted by a stop; runs again at the next start"
            } else {
                job.state = .cancelled
                job.reason = "the source component was removed"
                await removeRenditions(of: &job)
            }
        case let .badMedia(reason):
            job.state = .failed
            job.reason = reason
            ReviewMetrics.failures("media").increment()
            logger.warning("review encoding failed", metadata: ["job": .string(job.id), "component": .string(job.source), "reason": .string(reason)])
        case let .transient(reason):
            job.attempts += 1
            job.reason = reason
            if job.attempts >= configuration.maxAttempts {
                job.state = .failed
                job.reason = "gave up after \(job.attempts) attempts: \(reason)"
                ReviewMetrics.failures("gave_up").increment()
                logger.error("review encoding gave up", metadata: ["job": .string(job.id), "component": .string(job.source), "reason": .string(reason)])
            } else {
                job.state = .queued
                let wait = min(600, configuration.retrySeconds * pow(2, Double(job.attempts - 1)))
                job.notBefore = Date().timeIntervalSince1970 + wait
                ReviewMetrics.failures("retried").increment()
                logger.warning("review encoding will retry", metadata: [
                    "job": .string(job.id), "component": .string(job.source), "reason": .string(reason),
                    "attempt": .stringConvertible(job.attempts), "in_seconds": .stringConvertible(wait),
                ])
            }
        }
        try? queue.save(job)
    }

    /// FFmpeg reads a source on disk in place; one in an object store is first copied into the job's
    /// scratch directory (the only place the confined FFmpeg may read besides the system).
    private func localSource(_ record: ComponentRecord, work: String) async throws -> String {
        if let path = store.localPath(of: record) { return JobQueue.absolute(path) }
        let suffix = ((record.fileName ?? "") as NSString).pathExtension
        let path = work + "/source" + (suffix.isEmpty ? "" : "." + suffix)
        guard let id = ComponentID(record.id), let stored = try await store.open(id) else { throw ReviewError.cancelled }
        guard FileManager.default.createFile(atPath: path, contents: nil), let output = FileHandle(forWritingAtPath: path) else {
            await stored.close()
            throw ReviewError.transient("cannot write the source copy in \(work)")
        }
        do {
            try await stored.read(0..<record.size) { chunk in try output.write(contentsOf: chunk.readableBytesView) }
            try output.close()
            await stored.close()
        } catch {
            try? output.close()
            await stored.close()
            throw ReviewError.transient("cannot copy the source from storage: \(OperatorText.describe(error))")
        }
        return path
    }

    private func perform(_ job: inout ReviewJob, work: String, cancellation: Cancellation) async throws {
        guard let id = ComponentID(job.source), let stored = try? await store.open(id) else { throw ReviewError.cancelled }
        let record = stored.record
        await stored.close()
        let sourcePath = try await localSource(record, work: work)
        let process = ConfinedProcess(sandbox: sandbox, idlePriority: configuration.idlePriority, niceness: configuration.niceness)
        if job.renditions.isEmpty {
            job.step = "probing"
            try? queue.save(job)
            job.kind = Self.kind(contentType: record.contentType, fileName: record.fileName) ?? .image
            switch job.kind! {
            case .video:
                let facts = try await probe(sourcePath, work: work, process: process, cancellation: cancellation)
                job.mediaSeconds = facts.duration
                job.renditions = RenditionPlan.video(display: facts.displaySize, sizes: configuration.sizes).map {
                    Rendition(name: $0.name, componentID: Self.newID(), fileType: ".mp4", contentType: "video/mp4", width: $0.width, height: $0.height)
                }
            case .image:
                job.renditions = [Rendition(name: "ftrackreview-image", componentID: Self.newID(), fileType: ".jpg", contentType: "image/jpeg",
                                            width: configuration.imageSize, height: configuration.imageSize)]
            }
            job.renditions.append(Rendition(name: Rendition.thumbnailName, componentID: Self.newID(), fileType: ".jpg", contentType: "image/jpeg",
                                            width: configuration.thumbnailSize, height: configuration.thumbnailSize))
            await reuseIdentities(&job)
            try? queue.save(job)
        }
        let videos = job.renditions.indices.filter { !job.renditions[$0].stored && job.renditions[$0].contentType == "video/mp4" }
        if !videos.isEmpty {
            if cancellation.isCancelled { throw ReviewError.cancelled }
            let facts = try await probe(sourcePath, work: work, process: process, cancellation: cancellation)
            let outputs = videos.map { FFmpegArguments.Output(path: work + "/" + job.renditions[$0].name + ".mp4",
                                                              width: job.renditions[$0].width, height: job.renditions[$0].height) }
            job.step = "making " + videos.map { job.renditions[$0].name }.joined(separator: ", ")
            job.progress = 0
            try? queue.save(job)
            try await encode(&job, outputs: outputs, facts: facts, source: sourcePath, work: work, process: process, cancellation: cancellation)
            for (index, output) in zip(videos, outputs) {
                var rendition = job.renditions[index]
                guard let made = try? await probe(output.path, work: work, process: process, cancellation: cancellation) else {
                    // Removed (or stopping) while its output was probed: cancelled, not a failure of the media.
                    if cancellation.isCancelled { throw ReviewError.cancelled }
                    throw ReviewError.badMedia("FFmpeg made an MP4 ffprobe cannot read")
                }
                let rate = MediaFacts.rate(made.rFrameRate) ?? 0
                let frames = made.frameCount ?? Int(((made.duration ?? 0) * rate).rounded())
                rendition.meta = RenditionPlan.videoMeta(frames: frames, frameRate: rate, width: made.width, height: made.height)
                rendition.width = made.width
                rendition.height = made.height
                ReviewMetrics.mediaSeconds.increment(by: made.duration ?? 0)
                try await keep(&job, rendition, at: index, file: output.path, cancellation: cancellation)
            }
        }
        for index in job.renditions.indices where !job.renditions[index].stored {
            if cancellation.isCancelled { throw ReviewError.cancelled }
            var rendition = job.renditions[index]
            let output = work + "/" + rendition.name + rendition.fileType
            job.step = "making \(rendition.name)"
            job.progress = nil
            try? queue.save(job)
            let bytes: [UInt8]
            do {
                bytes = try await renderStill(job.source, rendition.width)
            } catch let failure as StillRenderFailure {
                switch failure {
                case let .badMedia(reason): throw ReviewError.badMedia("the thumbnail service cannot read it: \(reason)")
                case let .transient(reason): throw ReviewError.transient("the thumbnail service: \(reason)")
                }
            }
            guard let size = JPEGSize.of(bytes), FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
                throw ReviewError.transient("cannot write \(rendition.name) to \(work)")
            }
            rendition.width = size.width
            rendition.height = size.height
            if !rendition.isThumbnail { rendition.meta = RenditionPlan.imageMeta(width: size.width, height: size.height) }
            try await keep(&job, rendition, at: index, file: output, cancellation: cancellation)
        }
        guard let registration else {
            if job.registration != .notConfigured {
                logger.warning("review renditions not registered: encode.ftrack_server is not set", metadata: ["job": .string(job.id), "component": .string(job.source)])
            }
            job.registration = .notConfigured
            return
        }
        job.step = "registering with ftrack"
        job.progress = nil
        try? queue.save(job)
        let queue = self.queue
        do {
            try await registration.register(&job) { try queue.save($0) }
        } catch {
            throw ReviewError.transient(error.description)
        }
    }

    /// Encoding the same upload again (`pinhole encode ID`) works on the components an earlier job made,
    /// under their ids, instead of adding a second set to the version (registration then finds them). What
    /// a failed job stored and the store still has (its registration was refused, say) is not made again.
    private func reuseIdentities(_ job: inout ReviewJob) async {
        let earlier = queue.jobs(of: job.source).last {
            $0.id != job.id && ($0.state == .done || $0.state == .failed) && $0.sourceMD5 == job.sourceMD5 && !$0.renditions.isEmpty
        }
        guard let earlier else { return }
        for index in job.renditions.indices {
            guard let same = earlier.renditions.first(where: { $0.name == job.renditions[index].name }) else { continue }
            job.renditions[index].componentID = same.componentID
            if earlier.state == .failed, same.stored, let id = ComponentID(same.componentID), let stored = try? await store.open(id) {
                await stored.close()
                job.renditions[index] = same
                job.renditions[index].registered = false
            }
        }
        job.versionID = earlier.versionID
    }

    /// Stores a made rendition under its component id (the file renamed into the store) and records it.
    private func keep(_ job: inout ReviewJob, _ made: Rendition, at index: Int, file: String, cancellation: Cancellation) async throws {
        if cancellation.isCancelled { throw ReviewError.cancelled }
        var rendition = made
        guard let componentID = ComponentID(rendition.componentID) else { throw ReviewError.badMedia("bad rendition id") }
        do {
            let stored = try await store.adopt(componentID, metadata: UploadMetadata(contentType: rendition.contentType,
                                                                                     fileName: rendition.name + rendition.fileType),
                                               file: file, maxBytes: .max)
            rendition.size = stored.size
        } catch {
            throw ReviewError.transient("cannot store \(rendition.name): \(OperatorText.describe(error))")
        }
        rendition.stored = true
        job.renditions[index] = rendition
        ReviewMetrics.encodes.increment()
        try? queue.save(job)
        // Removed while this rendition was stored: it goes too.
        if cancellation.isCancelled { throw ReviewError.cancelled }
    }

    /// ffprobe on `path`, confined like FFmpeg.
    private func probe(_ path: String, work: String, process: ConfinedProcess, cancellation: Cancellation) async throws -> MediaFacts {
        let output = work + "/probe-\(UUID().uuidString.prefix(8)).json"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let outcome = try await process.run(FFmpegArguments.probe(path), readOnly: [path], workDirectory: work, outputPath: output,
                                            timeout: 60, cancellation: cancellation)
        if outcome.cancelled { throw ReviewError.cancelled }
        guard outcome.succeeded, let data = FileManager.default.contents(atPath: output), let facts = MediaFacts.parse(data) else {
            let why = outcome.timedOut ? "ffprobe took longer than 60 s" : (outcome.errors.isEmpty ? "no video stream" : outcome.errors)
            throw ReviewError.badMedia("not a video FFmpeg can read: \(why)")
        }
        return facts
    }

    private func encode(_ job: inout ReviewJob, outputs: [FFmpegArguments.Output], facts: MediaFacts, source: String, work: String,
                        process: ConfinedProcess, cancellation: Cancellation) async throws {
        let progressPath = work + "/progress.txt"
        let arguments = FFmpegArguments.mp4(source: source, outputs: outputs, progress: progressPath, facts: facts, configuration: configuration)
        let names = outputs.map { (($0.path as NSString).lastPathComponent as NSString).deletingPathExtension }.joined(separator: ", ")
        let duration = facts.duration ?? 0
        // The allowance grows with the renditions made in the run.
        let timeout = max(configuration.minimumTimeout, duration * configuration.timeoutFactor * Double(outputs.count))
        let snapshot = NIOLockedValueBox(job)
        let lastSaved = NIOLockedValueBox(Date.distantPast)
        let queue = self.queue
        let outcome = try await process.run(arguments, readOnly: [source], workDirectory: work, timeout: timeout, cancellation: cancellation) {
            // FFmpeg's -progress file: key=value blocks; out_time_us is how far the output has got.
            guard duration > 0, let text = try? String(contentsOfFile: progressPath, encoding: .utf8),
                  let line = text.split(separator: "\n").last(where: { $0.hasPrefix("out_time_us=") }),
                  let micros = Double(line.dropFirst("out_time_us=".count)) else { return }
            let fraction = min(1, max(0, micros / 1_000_000 / duration))
            let due = lastSaved.withLockedValue { last -> Bool in
                guard Date().timeIntervalSince(last) >= 1 else { return false }
                last = Date()
                return true
            }
            guard due else { return }
            let current = snapshot.withLockedValue { value -> ReviewJob in value.progress = fraction; return value }
            try? queue.save(current)
        }
        job.progress = snapshot.withLockedValue { $0.progress }
        if outcome.cancelled { throw ReviewError.cancelled }
        if outcome.timedOut { throw ReviewError.badMedia("encoding \(names) took longer than \(Int(timeout.rounded(.up))) s") }
        guard outcome.succeeded else {
            throw ReviewError.badMedia("FFmpeg could not encode \(names): \(outcome.errors.isEmpty ? "exit status \(outcome.status)" : outcome.errors)")
        }
    }

    private func removeRenditions(of job: inout ReviewJob) async {
        var changed = false
        for index in job.renditions.indices where job.renditions[index].stored {
            if let id = ComponentID(job.renditions[index].componentID) { _ = try? await store.remove(id) }
            job.renditions[index].stored = false
            changed = true
        }
        if changed { try? queue.save(job) }
    }

    private func updateQueueLength() {
        ReviewMetrics.queueLength.record(queue.unfinished().count)
    }

    static func newID() -> String { UUID().uuidString.lowercased() }
}
