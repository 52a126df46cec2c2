import Crypto
import Foundation
import Imaging
import Logging
import Metrics
import ServiceSupport

/// How decode workers are run (`thumbnails.decoder_*`).
public struct DecoderSettings: Sendable, Equatable {
    /// Decode PSD, DPX, PDF, SVG and EXR in worker processes (off: in the server, as before; not for
    /// production: one hostile file can then take the service down).
    public var isolate = true
    /// Workers kept running, each decoding one source at a time.
    public var workers = 2
    /// Wall-clock seconds a job may take before its worker is killed.
    public var timeout: Double = 20
    /// CPU seconds a job may use (RLIMIT_CPU), a second fence behind the wall clock.
    public var cpuSeconds = 20
    /// A worker's address-space limit (RLIMIT_AS).
    public var memoryBytes: Int64 = 3 << 30
    /// A worker is replaced after this many jobs (ImageMagick and poppler keep caches).
    public var recycleAfter = 200
    /// Sources that crashed or hung a worker, remembered (by content) so repeats are refused at once.
    public var rememberedFailures = 10_000

    public init() {}
}

/// A pool of pre-started `pinhole decode-worker` processes (the same binary), each confined (no
/// network where the kernel allows, rlimits, a private temporary directory, ImageMagick restricted to
/// DPX/PSD/PSB by Pinhole's own policy) and fed one source at a time over pipes. A worker that crashes,
/// hangs past the timeout or exceeds a limit is killed and replaced; the request gets a 4xx, the
/// service keeps serving. Blocking: called on render threads, never on an event loop.
public final class DecoderPool: @unchecked Sendable {   // state guarded by `condition`
    final class Worker {
        let process: Process
        let input: FileHandle
        let output: FileHandle
        let directory: String
        var jobs = 0

        init(process: Process, input: FileHandle, output: FileHandle, directory: String) {
            self.process = process
            self.input = input
            self.output = output
            self.directory = directory
        }
    }

    public let settings: DecoderSettings
    let maxPixels: Int
    let maxSourceBytes: Int
    let loaderClasses: [String]
    let logger: Logger
    /// The pool's own directory: ImageMagick's policy, and one temporary directory per worker.
    let root: String
    private let condition = NSCondition()
    private var idle: [Worker] = []
    private var alive = 0
    /// Set by `shutdown`: no worker starts after it. `spawning`: workers being started at this moment
    /// (each makes its directory inside the pool's, which shutdown removes only once they are done).
    private var stopped = false
    private var spawning = 0
    private var remembered: [String: String] = [:]
    private var rememberedOrder: [String] = []
    /// Threads that wait for workers (one per worker, and a spare), so that render threads never do.
    public let waiting: RenderPool
    /// Where the server writes files for workers to read (video excerpts): inside the pool's directory.
    public var sharedDirectory: String { root }
    /// What confinement the workers report (`none`, `rlimits`, `rlimits+no-network`).
    public private(set) var isolation = "not started"

    public init(settings: DecoderSettings, maxPixels: Int, maxSourceBytes: Int, loaderClasses: [String], logger: Logger) throws {
        self.settings = settings
        self.maxPixels = maxPixels
        self.maxSourceBytes = maxSourceBytes
        self.loaderClasses = loaderClasses
        self.logger = logger
        waiting = RenderPool(threads: max(1, settings.workers) + 1)
        Self.removeStaleDirectories()
        root = NSTemporaryDirectory() + "pinhole-decoders-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try ImageMagickPolicy.xml.write(toFile: root + "/policy.xml", atomically: true, encoding: .utf8)
        // A worker that dies makes our next write to it fail with EPIPE: that must be an error, not a signal.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Starts every worker now (rather than on the first studio file), and reports their confinement.
    public func prestart() {
        var started: [Worker] = []
        for _ in 0..<settings.workers {
            condition.lock()
            alive += 1
            condition.unlock()
            if let worker = spawn() { started.append(worker) } else { decrementAlive() }
        }
        condition.lock()
        idle += started
        publishWorkers()
        condition.broadcast()
        condition.unlock()
        logger.info("decode workers started", metadata: ["workers": .stringConvertible(started.count), "confinement": .string(isolation)])
    }

    public func shutdown() {
        condition.lock()
        stopped = true
        let workers = idle
        idle = []
        let deadline = Date().addingTimeInterval(10)
        while spawning > 0 && condition.wait(until: deadline) {}
        condition.unlock()
        for worker in workers { retire(worker) }
        try? FileManager.default.removeItem(atPath: root)
        Task { [waiting] in try? await waiting.shutdown() }
    }

    // MARK: Decoding

    /// The decoded source, or why not: a refusal from the worker (bad or unsupported bytes), or the worker
    /// crashed or timed out on it (remembered, so that the same bytes are refused at once next time).
    /// `still`: for a video, the position of the frame to take (`still(pos)`), nil for the first.
    public func decode(_ bytes: UnsafeRawBufferPointer, still: String? = nil, shrink: ShrinkHint? = nil,
                       facts: Bool = false) throws(RenderError) -> IsolatedDecoding.Decoded {
        let key = Hex.encode(Insecure.SHA1.hash(data: bytes)) + (still.map { "@" + $0 } ?? "")
        return try run(WorkerJob(still: still, shrink: shrink, facts: facts), bytes: bytes, key: key)
    }

    /// A job on a file the server wrote (a video excerpt: `VideoExcerpt`); `key` names the source for
    /// remembered failures.
    public func run(_ job: WorkerJob, key: String) throws(RenderError) -> IsolatedDecoding.Decoded {
        try run(job, bytes: UnsafeRawBufferPointer(start: nil, count: 0), key: key)
    }

    func run(_ job: WorkerJob, bytes: UnsafeRawBufferPointer, key: String) throws(RenderError) -> IsolatedDecoding.Decoded {
        let options = job.options
        if let failure = rememberedFailure(key) {
            ServiceMetrics.decoderFailures(.remembered).increment()
            throw .decoderFailed("\(failure) (earlier, on the same bytes)")
        }
        // A worker found dead before the job started (killed while idle) is replaced; the source is not blamed.
        for _ in 0..<2 {
            guard let worker = acquire() else { throw .decoderFailed("no decode worker could be started") }
            switch run(bytes, options: options, on: worker) {
            case let .answered(status, text, payload):
                release(worker)
                if status == .refused { throw .workerRefused(text) }
                return IsolatedDecoding.Decoded(tiff: payload, answerText: text)
            case .notStarted:
                retire(worker)
                decrementAlive()
                continue
            case let .died(timedOut):
                // How a crashed worker ended (a signal: which one), for the log; a moment to be reaped.
                var ending = "killed after \(settings.timeout) s"
                if !timedOut {
                    for _ in 0..<50 where worker.process.isRunning { usleep(10_000) }
                    ending = worker.process.isRunning ? "still running"
                        : "\(worker.process.terminationReason == .uncaughtSignal ? "signal" : "exit status") \(worker.process.terminationStatus)"
                }
                retire(worker)
                decrementAlive()
                replenish()
                let reason = timedOut ? "decoder timed out" : "decoder crashed"
                ServiceMetrics.decoderFailures(timedOut ? .timeout : .crash).increment()
                remember(key, reason)
                logger.warning("decode worker failed", metadata: ["reason": .string(reason), "source_sha1": .string(key),
                                                                  "worker_ended": .string(ending), "jobs": .stringConvertible(worker.jobs)])
                throw .decoderFailed(reason)
            }
        }
        throw .decoderFailed("no decode worker could be started")
    }

    enum JobOutcome {
        case answered(WorkerFrames.Status, String, [UInt8])
        case notStarted
        case died(timedOut: Bool)
    }

    private func run(_ bytes: UnsafeRawBufferPointer, options: String, on worker: Worker) -> JobOutcome {
        guard worker.process.isRunning else { return .notStarted }
        let timedOut = TimeoutFlag()
        let pid = worker.process.processIdentifier
        let watchdog = DispatchWorkItem {
            timedOut.set()
            kill(-pid, SIGKILL)     // the worker's process group: its sandbox, the worker, FFmpeg or convert under it
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + settings.timeout, execute: watchdog)
        defer { watchdog.cancel() }
        guard WorkerFrames.writeRequest(worker.input.fileDescriptor, bytes, options: options) else {
            return worker.process.isRunning || timedOut.isSet ? .died(timedOut: timedOut.isSet) : .notStarted
        }
        guard let answer = WorkerFrames.readAnswer(worker.output.fileDescriptor, maxPayload: Int.max) else {
            return .died(timedOut: timedOut.isSet)
        }
        worker.jobs += 1
        return .answered(answer.status, answer.text, answer.payload)
    }

    // MARK: Workers

    private func acquire() -> Worker? {
        condition.lock()
        while idle.isEmpty && alive >= max(1, settings.workers) { condition.wait() }
        if let worker = idle.popLast() {
            publishWorkers()
            condition.unlock()
            return worker
        }
        alive += 1
        publishWorkers()
        condition.unlock()
        guard let worker = spawn() else {
            decrementAlive()
            return nil
        }
        return worker
    }

    private func release(_ worker: Worker) {
        if worker.jobs >= settings.recycleAfter || !worker.process.isRunning {
            retire(worker)
            decrementAlive()
            // Recycled (or gone): its replacement starts now, not with the next studio file.
            replenish()
            return
        }
        condition.lock()
        idle.append(worker)
        publishWorkers()
        condition.signal()
        condition.unlock()
    }

    /// `pinhole_decoder_workers{state}`: workers waiting for a job and workers decoding (or starting).
    /// Called with the condition's lock held.
    private func publishWorkers() {
        Self.idleWorkers.record(idle.count)
        Self.busyWorkers.record(max(0, alive - idle.count))
    }

    private static let idleWorkers = Gauge(label: "pinhole_decoder_workers", dimensions: [("state", "idle")])
    private static let busyWorkers = Gauge(label: "pinhole_decoder_workers", dimensions: [("state", "busy")])

    /// Starts a worker in the background when fewer than `workers` run, so that the pool is back to its
    /// size before the next studio file arrives.
    private func replenish() {
        condition.lock()
        guard alive < settings.workers else {
            condition.unlock()
            return
        }
        alive += 1
        condition.unlock()
        DispatchQueue.global().async {
            guard let worker = self.spawn() else {
                self.decrementAlive()
                return
            }
            self.condition.lock()
            self.idle.append(worker)
            self.publishWorkers()
            self.condition.signal()
            self.condition.unlock()
        }
    }

    private func decrementAlive() {
        condition.lock()
        alive -= 1
        publishWorkers()
        condition.signal()
        condition.unlock()
    }

    private func retire(_ worker: Worker) {
        if worker.process.isRunning { kill(-worker.process.processIdentifier, SIGKILL) }
        try? worker.input.close()
        try? worker.output.close()
        let directory = worker.directory
        let process = worker.process
        DispatchQueue.global().async {
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Starts one worker and reads its greeting; nil (logged) if it cannot start.
    private func spawn() -> Worker? {
        condition.lock()
        guard !stopped else {
            condition.unlock()
            return nil
        }
        spawning += 1
        condition.unlock()
        defer {
            condition.lock()
            spawning -= 1
            condition.broadcast()
            condition.unlock()
        }
        return startWorker()
    }

    /// Starts one worker (the body of `spawn`, which keeps count of it for `shutdown`).
    private func startWorker() -> Worker? {
        let directory = root + "/worker-" + UUID().uuidString.prefix(8)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let process = Process()
            let worker = [Self.executable, "decode-worker", "--max-pixels", String(maxPixels),
                          "--max-source-bytes", String(maxSourceBytes), "--memory-bytes", String(settings.memoryBytes),
                          "--cpu-seconds", String(settings.cpuSeconds), "--timeout", String(settings.timeout)]
                + loaderClasses.flatMap { ["--loader", $0] }
            // Confinement around the worker: bubblewrap where it works here, else util-linux `unshare` (a
            // network namespace of its own), else none (rlimits alone); the worker reports what it sees.
            condition.lock()
            let sandbox = sandboxes.first ?? .none
            condition.unlock()
            let wrapper = sandbox.command(workerDirectory: directory, poolDirectory: root, executable: Self.executable)
            process.executableURL = URL(fileURLWithPath: wrapper.isEmpty ? Self.executable : wrapper[0])
            process.arguments = wrapper.isEmpty ? Array(worker.dropFirst()) : Array(wrapper.dropFirst()) + worker
            process.environment = [
                "PATH": "/usr/bin:/bin", "TMPDIR": directory, "HOME": directory,
                "MAGICK_CONFIGURE_PATH": root, "MAGICK_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "VIPS_CONCURRENCY": "1",
            ]
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            let input = Pipe(), output = Pipe()
            // Every end close-on-exec, so that no other worker inherits them (a dead worker's pipe must
            // read as closed); the child's own ends are dup2'ed onto its stdin and stdout, which clears it.
            for handle in [input.fileHandleForReading, input.fileHandleForWriting, output.fileHandleForReading, output.fileHandleForWriting] {
                _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
            }
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            try? input.fileHandleForReading.close()
            try? output.fileHandleForWriting.close()
            let started = Worker(process: process, input: input.fileHandleForWriting, output: output.fileHandleForReading, directory: directory)
            guard let greeting = WorkerFrames.readAnswer(started.output.fileDescriptor, maxPayload: 0), greeting.status == .decoded else {
                retire(started)
                if sandbox != .none {
                    // The kernel refused this sandbox (no user namespaces here, say): the next one, said in the log.
                    logger.warning("decode workers cannot start in this sandbox here; trying the next", metadata: ["sandbox": .string("\(sandbox)")])
                    condition.lock()
                    if sandboxes.first == sandbox { sandboxes.removeFirst() }
                    condition.unlock()
                    return spawn()
                }
                logger.error("decode worker did not start")
                return nil
            }
            condition.lock()
            isolation = greeting.text
            let late = stopped
            condition.unlock()
            if late {                   // the pool stopped while this worker started
                retire(started)
                return nil
            }
            return started
        } catch {
            logger.error("decode worker did not start", metadata: ["error": .string(OperatorText.describe(error))])
            return nil
        }
    }

    /// The sandboxes still to be tried, best first (one the kernel refuses is dropped at the first worker).
    private var sandboxes = WorkerSandbox.available

    /// Pool directories of servers that are gone (killed, or stopped before their shutdown ran): each is
    /// named after its server's process id.
    static func removeStaleDirectories() {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix("pinhole-decoders-") {
            guard let pid = Int32(name.dropFirst("pinhole-decoders-".count).prefix { $0 != "-" }),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: temporary + name)
        }
    }

    /// This very binary (`pinhole`), whichever way it was started.
    static let executable: String = {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }()

    // MARK: Remembered failures

    private func rememberedFailure(_ key: String) -> String? {
        condition.lock()
        defer { condition.unlock() }
        return remembered[key]
    }

    private func remember(_ key: String, _ reason: String) {
        condition.lock()
        defer { condition.unlock() }
        if remembered[key] == nil { rememberedOrder.append(key) }
        remembered[key] = reason
        while rememberedOrder.count > settings.rememberedFailures {
            remembered[rememberedOrder.removeFirst()] = nil
        }
    }
}

/// Set once from the watchdog's thread, read by the job's.
private final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
