import ArgumentParser
import CSandbox
import Foundation
import Imaging
import ThumbnailService
import Vips

/// `pinhole decode-worker`: started by the thumbnail service's decoder pool, never by hand. Confines
/// itself (rlimits, no network where the kernel allows, death with its parent), then decodes one source
/// at a time from stdin and answers on stdout (`WorkerFrames`). A crash or a hang here costs one worker.
struct DecodeWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-worker",
        abstract: "Decode untrusted studio files for the thumbnail service (started by `pinhole serve`).",
        shouldDisplay: false)

    @Option(help: "Refuse sources with more pixels.") var maxPixels: Int = 75_000_000
    @Option(help: "Refuse larger sources.") var maxSourceBytes: Int = 256 << 20
    @Option(help: "Address-space limit (RLIMIT_AS) in bytes.") var memoryBytes: Int64 = 3 << 30
    @Option(help: "CPU seconds per job (RLIMIT_CPU).") var cpuSeconds: Int = 20
    @Option(help: "Wall-clock seconds for a helper program (FFmpeg) per job.") var timeout: Double = 20
    @Option(name: .customLong("loader"), help: "libvips loader class enabled here (repeatable).") var loaders: [String] = []

    /// True when this process sees a network interface besides loopback (it was not started in a
    /// network namespace of its own).
    static var hasNetwork: Bool {
        guard let table = try? String(contentsOfFile: "/proc/self/net/dev", encoding: .utf8) else { return true }
        let interfaces = table.split(separator: "\n").compactMap { line -> Substring? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return line[..<colon].drop { $0 == " " }
        }
        return interfaces.contains { $0 != "lo" }
    }

    /// True when the system's files cannot be written, whoever this process is (bubblewrap's read-only mounts).
    static var systemIsReadOnly: Bool { access("/usr", W_OK) != 0 && errno == EROFS }

    func run() throws {
        guard csandbox_confine(memoryBytes, 64, 1 << 30) == 0 else { throw ValidationError("could not set the worker's resource limits") }
        let confinement = (["rlimits"] + (Self.hasNetwork ? [] : ["no-network"]) + (Self.systemIsReadOnly ? ["read-only-system"] : []))
            .joined(separator: "+")
        try VipsRuntime.start(VipsSettings(concurrency: 1, blockUntrusted: true, allowedUntrustedLoaders: loaders))
        let input = FileHandle.standardInput.fileDescriptor, output = FileHandle.standardOutput.fileDescriptor
        WorkerFrames.writeAnswer(output, status: .decoded, text: confinement)
        while let (options, source) = WorkerFrames.readRequest(input, maxBytes: maxSourceBytes) {
            _ = csandbox_allow_cpu(Int64(cpuSeconds))
            let job = WorkerJob(options: options)
            let answer = source.withUnsafeBytes { bytes in
                Result { () throws(RenderError) in try job.run(on: bytes, maxPixels: maxPixels, timeout: timeout) }
            }
            switch answer {
            case let .success(decoded):
                guard WorkerFrames.writeAnswer(output, status: .decoded, text: decoded.answerText, payload: decoded.tiff) else { return }
            case let .failure(error):
                guard WorkerFrames.writeAnswer(output, status: .refused, text: error.description) else { return }
            }
        }
    }
}
