import Foundation

/// Runs a helper program with posix_spawn: its standard output captured, its standard error to a file,
/// no standard input, nothing else inherited (every other descriptor of a decode worker is close-on-exec
/// or closed here). Foundation's `Process` is not used: inside a confined worker its child monitoring
/// (a socket pair and a run loop) failed and a second run hung.
enum Subprocess {
    /// The exit status (or 128 + signal) and everything written to standard output; nil if it could not start.
    static func run(_ arguments: [String], errorsTo errorsPath: String) -> (status: Int32, output: [UInt8])? {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_addopen(&actions, 2, errorsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var environment: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0)=\($1)") } + [nil]
        defer { for pointer in environment { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, &argv, &environment)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            return nil
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n > 0 { output += chunk[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
    }

    /// Runs a helper program on `bytes` written to a file of its own in the worker's private temporary
    /// directory (video and PSD decoders need to seek); see `run(onFile:)`.
    static func run(on bytes: UnsafeRawBufferPointer, suffix: String, timeout: Double,
                    _ arguments: (String) -> [String]) throws(RenderError) -> (status: Int32, output: [UInt8], reason: String) {
        try withFile(holding: bytes, suffix: suffix) { input throws(RenderError) in try run(onFile: input, timeout: timeout, arguments) }
    }

    /// `body` given the path of a file holding `bytes` in the worker's private temporary directory,
    /// removed afterwards.
    static func withFile<T>(holding bytes: UnsafeRawBufferPointer, suffix: String,
                            _ body: (String) throws(RenderError) -> T) throws(RenderError) -> T {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let path = directory + "/source-" + UUID().uuidString + suffix
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw .decoderFailed("cannot write the source to a temporary file")
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    /// Runs a helper program on the file at `input` under `timeout -s KILL`; `arguments` turns the path
    /// into the command after `timeout`. The exit status, standard output, and the first line the program
    /// wrote to standard error (its reason, when it failed).
    static func run(onFile input: String, timeout: Double,
                    _ arguments: (String) -> [String]) throws(RenderError) -> (status: Int32, output: [UInt8], reason: String) {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let errorsPath = directory + "/errors-" + UUID().uuidString + ".log"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let command = ["/usr/bin/timeout", "-s", "KILL", String(Int(timeout.rounded(.up)))] + arguments(input)
        guard let (status, output) = run(command, errorsTo: errorsPath) else {
            throw .decoderFailed("cannot run \(arguments(input).first ?? "a helper")")
        }
        let errors = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        let reason = errors.split(separator: "\n").first.map { String($0.prefix(200)) } ?? ""
        return (status, output, reason)
    }
}
