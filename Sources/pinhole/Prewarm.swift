import ArgumentParser
import AsyncHTTPClient
import FileServer
import Foundation
import NIOCore
import ServiceSupport
import ThumbnailService
import ThumborURL

/// `pinhole prewarm`: renders thumbnails into a running Pinhole's cache ahead of their first view.
struct Prewarm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render thumbnails into the cache ahead of the first view (component ids or source URLs).")

    @Option(help: "YAML configuration file (keys, file-server secret, sizes, server address).") var config: String?
    @Option(name: .customLong("file"), help: "Read inputs from this file, one per line ('-' = standard input).") var inputFile: String?
    @Option(name: .customLong("size"), help: "A size to make, as Thumbor options (repeatable; default thumbnails.prewarm_sizes).")
    var sizes: [String] = []
    @Option(help: "The thumbnail service to fill (default cluster.balancer_url, else http://<thumbnails.host>:<thumbnails.port>).") var server: String?
    @Option(help: "Requests at once.") var concurrency = 4
    @Argument(help: "Component ids or source URLs (none: read standard input when it is not a terminal).") var inputs: [String] = []

    struct Job: Sendable { let input: String; let size: String; let path: String }
    enum Outcome: Sendable { case done, skipped, failed(String) }

    func run() async throws {
        let reader = try await loadOrExit { try await ServiceOptions.reader(file: config) }
        let thumbnails = try await loadOrExit { try ServiceConfiguration(reader: reader) }
        let files = try await loadOrExit { try FileServerConfiguration(reader: reader) }
        guard let key = thumbnails.securityKeys.first else {
            throw ValidationError("no thumbnails.security_keys configured: pre-warmed URLs must be signed with the server's key")
        }
        var items = inputs
        if let inputFile {
            let text = inputFile == "-" ? Self.readStandardInput() : try String(contentsOfFile: inputFile, encoding: .utf8)
            items += text.split(whereSeparator: \.isNewline).map { String($0).trimmed }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        } else if items.isEmpty, isatty(0) == 0 {
            items = Self.readStandardInput().split(whereSeparator: \.isNewline).map { String($0).trimmed }.filter { !$0.isEmpty }
        }
        guard !items.isEmpty else { throw ValidationError("nothing to pre-warm: give component ids or URLs") }
        let cluster = try await loadOrExit { try ClusterConfiguration(reader: reader) }
        let sources = ComponentSources(thumbnails: thumbnails, files: files)
        let jobs = Self.jobs(inputs: items, sizes: sizes.isEmpty ? thumbnails.prewarmSizes : sizes, sources: sources, signer: URLSigner(key: key))
        // Through the cluster's balancer when there is one, so each render lands on its URL's home node.
        let base = server ?? (cluster.balancerURL.isEmpty ? "http://\(thumbnails.host):\(thumbnails.port)" : cluster.balancerURL)
        let progress = Progress(total: jobs.count, terminal: isatty(1) != 0)
        var failures: [(Job, String)] = []
        var done = 0, skipped = 0
        let client = HTTPClient.shared
        await withTaskGroup(of: (Job, Outcome).self) { group in
            var next = 0
            func launch() {
                guard next < jobs.count else { return }
                let job = jobs[next]
                next += 1
                group.addTask { (job, await Self.warm(job, base: base, client: client)) }
            }
            for _ in 0..<max(1, concurrency) { launch() }
            while let (job, outcome) = await group.next() {
                switch outcome {
                case .done: done += 1
                case .skipped: skipped += 1
                case let .failed(reason): failures.append((job, reason))
                }
                progress.advance(line: "\(job.input) \(job.size): \(outcome)")
                launch()
            }
        }
        progress.finish()
        print("pre-warm: \(done) rendered, \(skipped) already cached, \(failures.count) failed")
        for (job, reason) in failures { print("  failed: \(job.input) \(job.size): \(reason)") }
        if failures.count == jobs.count { throw ExitCode(1) }
    }

    /// One signed thumbnail path per input and size, byte-identical to what ftrack requests (a load
    /// balancer hashes these bytes).
    static func jobs(inputs: [String], sizes: [String], sources: ComponentSources, signer: URLSigner) -> [Job] {
        inputs.flatMap { input in
            sizes.map { size -> Job in
                let signed = size + "/" + sources.imageURL(for: input)
                return Job(input: input, size: size, path: "/" + signer.signature(for: signed) + "/" + signed)
            }
        }
    }

    /// Skips what is cached (`Cache-Control: only-if-cached` answers 504 on a miss), renders the rest.
    static func warm(_ job: Job, base: String, client: HTTPClient) async -> Outcome {
        do {
            var probe = HTTPClientRequest(url: base + job.path)
            probe.method = .HEAD
            probe.headers.add(name: "Cache-Control", value: "only-if-cached")
            if try await client.execute(probe, timeout: .seconds(30)).status == .ok { return .skipped }
            let response = try await client.execute(HTTPClientRequest(url: base + job.path), timeout: .seconds(120))
            let body = try await response.body.collect(upTo: 64 << 20)
            if response.status == .ok { return .done }
            return .failed("\(response.status.code) \(String(buffer: body).trimmed)")
        } catch {
            return .failed(OperatorText.describe(error))
        }
    }

    static func readStandardInput() -> String {
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        return lines.joined(separator: "\n")
    }
}

/// A progress bar with rate and ETA on a terminal; one plain line per item otherwise.
final class Progress: @unchecked Sendable {
    let total: Int
    let terminal: Bool
    let started = Date()
    var count = 0

    init(total: Int, terminal: Bool) {
        self.total = total
        self.terminal = terminal
    }

    func advance(line: String) {
        count += 1
        let elapsed = max(Date().timeIntervalSince(started), 0.001)
        let rate = Double(count) / elapsed
        if terminal {
            let width = 30, filled = width * count / max(total, 1)
            let eta = rate > 0 ? Double(total - count) / rate : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardOutput.write(Data(String(format: "\r[%@] %d/%d  %.1f/s  ETA %.0fs ", bar, count, total, rate, eta).utf8))
        } else {
            print("[\(count)/\(total)] \(line)")
        }
    }

    func finish() {
        if terminal { print("") }
    }
}
