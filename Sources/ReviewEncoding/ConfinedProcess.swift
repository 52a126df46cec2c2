import Foundation
import NIOConcurrencyHelpers
import ThumbnailService

/// FFmpeg and ffprobe on uploaded media run like the decode workers: in the best sandbox this machine
/// has (bubblewrap: no network, the system read-only, only the source readable and the job's scratch
/// directory writable), in the idle scheduling class at a high niceness (thumbnails always go first),
/// with a wall-clock limit, and killed with their whole process group when a job is cancelled.
struct ConfinedProcess: Sendable {
    var sandbox: WorkerSandbox
    var idlePriority: Bool
    var niceness: Int

    struct Outcome: Sendable {
        var status: Int32
        var timedOut: Bool
        var cancelled: Bool
        /// The last lines the program wrote to standard error (its reason when it failed).
        var errors: String
        var succeeded: Bool { status == 0 && !timedOut && !cancelled }
    }

    /// Runs `arguments` (a program and its arguments) able to read `readOnly` and write `workDirectory`;
    /// standard output goes to `outputPath` when given. `tick` is called about twice a second while it
    /// runs (progress files are read there).
    func run(_ arguments: [String], readOnly: [String], workDirectory: String, outputPath: String? = nil,
             timeout: Double, cancellation: Cancellation, tick: @Sendable () -> Void = {}) async throws -> Outcome {
        let errorsPath = workDirectory + "/errors-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        var command: [String] = []
        if idlePriority { command += ["/usr/bin/chrt", "--idle", "0"] }
        if niceness > 0 { command += ["/usr/bin/nice", "-n", String(niceness)] }
        command += sandbox.command(readOnly: readOnly, writable: [workDirectory], workingDirectory: workDirectory, executable: nil)
        command += arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": workDirectory, "TMPDIR": workDirectory]
        process.currentDirectoryURL = URL(fileURLWithPath: workDirectory)
        process.standardInput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: errorsPath, contents: nil)
        let errors = FileHandle(forWritingAtPath: errorsPath)
        process.standardError = errors ?? FileHandle.nullDevice
        var output: FileHandle?
        if let outputPath {
            FileManager.default.createFile(atPath: outputPath, contents: nil)
            output = FileHandle(forWritingAtPath: outputPath)
        }
        process.standardOutput = output ?? FileHandle.nullDevice
        let done = NIOLockedValueBox(false)
        process.terminationHandler = { _ in done.withLockedValue { $0 = true } }
        try process.run()
        try? errors?.close()
        try? output?.close()
        let pid = process.processIdentifier
        // Foundation starts the child in a process group of its own: killing the group reaches the sandbox
        // and FFmpeg under it.
        let kill: @Sendable () -> Void = { Glibc.kill(-pid, SIGKILL); Glibc.kill(pid, SIGKILL) }
        cancellation.onCancel(kill)
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while !done.withLockedValue({ $0 }) {
            tick()
            if Date() > deadline {
                timedOut = true
                kill()
                break
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        // Killed (timeout) or exited: the handler has run or is about to.
        while !done.withLockedValue({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
        cancellation.onCancel(nil)
        let text = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        let lastLines = text.split(separator: "\n").suffix(3).joined(separator: "; ")
        return Outcome(status: process.terminationStatus, timedOut: timedOut, cancelled: cancellation.isCancelled,
                       errors: String(lastLines.prefix(400)))
    }

    /// The first sandbox that starts a program here (bubblewrap needs user namespaces the kernel may refuse).
    static func bestSandbox(scratch: String) -> WorkerSandbox {
        for sandbox in WorkerSandbox.available where sandbox != .none {
            let command = sandbox.command(readOnly: [], writable: [scratch], workingDirectory: scratch, executable: nil) + ["/bin/true"]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.standardError = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            if (try? process.run()) != nil {
                process.waitUntilExit()
                if process.terminationStatus == 0 { return sandbox }
            }
        }
        return .none
    }
}

/// A job's cancellation: set when its source is removed; kills whatever program the job is running.
final class Cancellation: Sendable {
    private let state = NIOLockedValueBox<(cancelled: Bool, handler: (@Sendable () -> Void)?)>((false, nil))

    var isCancelled: Bool { state.withLockedValue { $0.cancelled } }

    func cancel() {
        let handler = state.withLockedValue { value -> (@Sendable () -> Void)? in
            value.cancelled = true
            return value.handler
        }
        handler?()
    }

    /// What cancelling does now (nil: nothing running); called at once if already cancelled.
    func onCancel(_ handler: (@Sendable () -> Void)?) {
        let now = state.withLockedValue { value -> Bool in
            value.handler = handler
            return value.cancelled
        }
        if now { handler?() }
    }
}
