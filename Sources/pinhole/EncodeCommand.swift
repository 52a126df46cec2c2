import ArgumentParser
import FileServer
import Foundation
import ReviewEncoding

/// `pinhole encode ID…` queues review encoding of stored components and follows it (a progress bar on a
/// terminal); `pinhole encode status` lists the queue. Both read the queue on disk, so they work beside a
/// running `pinhole serve`, which runs the jobs.
struct EncodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Queue ftrack review renditions of components, or list the queue.",
        subcommands: [Enqueue.self, Status.self], defaultSubcommand: Enqueue.self)

    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Queue components (by id) and follow their jobs.")
        @Option(help: "YAML configuration file.") var config: String?
        @Flag(name: .long, help: "Queue and return at once.") var noWait = false
        @Argument(help: "Component ids stored by the file server.") var ids: [String]

        func run() async throws {
            let reader = try await ServiceOptions.reader(file: config)
            let files = try await loadOrExit { try FileServerConfiguration(reader: reader) }
            let encode = try await loadOrExit { try EncodeConfiguration(reader: reader) }
            let store = try files.makeStore(sweeping: false)
            let queue = try JobQueue(directory: encode.directory)
            var jobs: [String] = []
            for text in ids {
                guard let id = ComponentID(text), let stored = try? await store.open(id) else {
                    FileHandle.standardError.write(Data("pinhole: no component \(text) in \(files.storeDescription)\n".utf8))
                    throw ExitCode(1)
                }
                let record = stored.record
                await stored.close()
                guard ReviewEncoder.kind(contentType: record.contentType, fileName: record.fileName) != nil else {
                    FileHandle.standardError.write(Data("pinhole: \(text) is \(record.contentType): neither video nor a still\n".utf8))
                    throw ExitCode(1)
                }
                let job = try queue.enqueue(source: record.id, sourceMD5: record.md5)
                announce("\(text): queued as job \(job.id)")
                jobs.append(job.id)
            }
            guard !noWait else { return }
            guard RunnerLock.isHeld(directory: queue.directory) else {
                print("no pinhole serve runs the queue in \(queue.directory): the jobs run when one starts")
                return
            }
            try await follow(jobs, queue: queue)
        }

        /// Waits for the jobs, drawing a progress bar on a terminal (a line per step otherwise).
        func follow(_ ids: [String], queue: JobQueue) async throws {
            let terminal = isatty(STDOUT_FILENO) == 1
            var failed = false
            for id in ids {
                var lastLine = ""
                while true {
                    guard let job = queue.load(id) else { break }
                    if job.state.isFinished {
                        FileHandle.standardOutput.write(Data(((terminal ? "\r\u{1B}[2K" : "") + StatusLine.describe(job) + "\n").utf8))
                        failed = failed || job.state != .done
                        break
                    }
                    let line = StatusLine.progress(job, bar: terminal)
                    if terminal {
                        FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8))
                    } else if line != lastLine {
                        announce(line)
                    }
                    lastLine = line
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queued, running (with progress), failed and done jobs.")
        @Option(help: "YAML configuration file.") var config: String?
        @Flag(help: "Every job as JSON.") var json = false

        func run() async throws {
            let reader = try await ServiceOptions.reader(file: config)
            let encode = try await loadOrExit { try EncodeConfiguration(reader: reader) }
            let queue = try JobQueue(directory: encode.directory)
            let jobs = queue.all()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(jobs), as: UTF8.self))
                return
            }
            let counts = Dictionary(grouping: jobs, by: \.state).mapValues(\.count)
            print("review queue \(queue.directory): " + [ReviewJob.State.queued, .running, .failed, .done, .cancelled]
                .map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
                + (RunnerLock.isHeld(directory: queue.directory) ? "" : " (no pinhole serve runs it)"))
            for job in jobs { print(StatusLine.describe(job)) }
        }
    }
}

/// One job as a line of text.
enum StatusLine {
    static func describe(_ job: ReviewJob) -> String {
        var line = "\(job.id)  \(job.source)  \(job.state.rawValue)"
        switch job.state {
        case .queued:
            if job.attempts > 0, let reason = job.reason {
                let wait = max(0, Int(job.notBefore - Date().timeIntervalSince1970))
                line += "  retry \(job.attempts + 1) in \(wait) s; last failure: \(reason)"
            } else if let reason = job.reason {
                line += "  (\(reason))"
            }
        case .running:
            line += "  " + progress(job, bar: false)
        case .failed, .cancelled:
            line += "  \(job.reason ?? "")"
        case .done:
            let outputs = job.renditions.map { "\($0.name)=\($0.componentID)" }.joined(separator: " ")
            let registration = switch job.registration {
            case .registered: "registered on version \(job.versionID ?? "?")"
            case .notConfigured: "not registered (encode.ftrack_server is not set)"
            case .pending: "not registered"
            }
            line += "  \(registration): \(outputs)"
        }
        return line
    }

    static func progress(_ job: ReviewJob, bar: Bool) -> String {
        let step = job.step ?? job.state.rawValue
        guard let fraction = job.progress else { return step }
        let percent = Int((fraction * 100).rounded(.down))
        guard bar else { return "\(percent)% \(step)" }
        let width = 30, filled = Int(fraction * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(percent)% \(step)"
    }
}
