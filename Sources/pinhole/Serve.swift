import ArgumentParser
import Crypto
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import ThumbnailService

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the thumbnail service (embedded defaults; --config and PINHOLE_… variables override them).")

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var logger = Logger(label: "pinhole")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var configuration = try await loadConfiguration(file: config)
        if configuration.securityKeys.isEmpty {
            // A development key, printed so that URLs can be signed; production sets thumbnails.security_keys.
            let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
            configuration.securityKeys = [key]
            announce("pinhole: no thumbnails.security_keys configured; development key for this run: \(key)")
        }
        try FileManager.default.createDirectory(atPath: configuration.fileRoot, withIntermediateDirectories: true)
        let server = try ThumbnailServer(configuration: configuration, logger: logger)
        announce("pinhole: thumbnails on http://\(configuration.host):\(configuration.port) (loader: \(configuration.loader.rawValue), root: \(configuration.fileRoot))")
        let group = ServiceGroup(
            configuration: .init(services: [server.application()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try await server.shutdown()
    }
}

/// Loads the service configuration or exits with a message naming the bad key.
func loadConfiguration(file: String?) async throws -> ServiceConfiguration {
    do {
        return try ServiceConfiguration(reader: try await ConfigurationSource.reader(file: file))
    } catch let error as ConfigurationError {
        FileHandleOutput.standardError("pinhole: \(error)")
        throw ExitCode(78)  // EX_CONFIG
    }
}

/// A start-up line on standard output, flushed at once (stdout is block-buffered when it is not a terminal).
func announce(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

enum FileHandleOutput {
    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
