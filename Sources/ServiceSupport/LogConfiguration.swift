import Configuration
import Logging

/// The `log` section: the line format of every log, and whether each request gets an access line.
public struct LogConfiguration: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// swift-log's text lines (`time level label : key=value message`).
        case text
        /// One JSON object per line (`JSONLogHandler`), for log pipelines.
        case json
    }

    public var format: Format = .text
    /// One line per request on each port (label `pinhole.access`).
    public var access = true

    public init() {}

    public static let keys: [(key: String, meaning: String)] = [
        ("log.format", "text | json (one object per line)"),
        ("log.access", "an access line per request on both ports"),
    ]

    public init(reader: ConfigReader) throws {
        self.init()
        let r = ValueReader(reader: reader, prefix: "log")
        if let text = try r.string("format") {
            guard let format = Format(rawValue: text.trimmed.lowercased()) else {
                throw ConfigurationError(key: "log.format", problem: "'\(text)' is not one of \(Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.format = format
        }
        access = try r.bool("access") ?? access
    }

    /// Installs the process's log handler (once per process, before the first logger is made).
    public func bootstrap(level: Logger.Level) {
        switch format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        }
    }
}
