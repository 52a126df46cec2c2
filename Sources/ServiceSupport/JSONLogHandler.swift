import Foundation
import Logging

/// One JSON object per line on standard error: `time`, `level`, `label`, `message`, then every metadata
/// key as a field of its own. Numbers logged as numbers stay JSON numbers, so a log pipeline can sum
/// `bytes` or chart `duration_ms` without parsing text.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"label\":"
        Self.appendString(label, to: &line)
        line += ",\"message\":"
        Self.appendString(event.message.description, to: &line)
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        for key in merged.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
            line += ","
            Self.appendString(key, to: &line)
            line += ":"
            Self.append(merged[key]!, to: &line)
        }
        if event.level >= .warning {
            line += ",\"source\":"
            Self.appendString("\(event.file.split(separator: "/").last ?? ""):\(event.line)", to: &line)
        }
        line += "}\n"
        Self.write(line)
    }

    static func append(_ value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text):
            appendString(text, to: &line)
        case .stringConvertible(let value):
            switch value {
            case let number as any BinaryInteger: line += "\(number)"
            case let number as Double where number.isFinite: line += "\(number)"
            case let number as Float where number.isFinite: line += "\(number)"
            case let flag as Bool: line += flag ? "true" : "false"
            default: appendString(value.description, to: &line)
            }
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                append(element, to: &line)
            }
            line += "]"
        case .dictionary(let entries):
            line += "{"
            for (index, key) in entries.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                appendString(key, to: &line)
                line += ":"
                append(entries[key]!, to: &line)
            }
            line += "}"
        }
    }

    static func appendString(_ text: String, to line: inout String) {
        JSONValue.appendQuoted(text, to: &line)
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        let millis = now.tv_nsec / 1_000_000
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// One `write(2)` per line, so lines from several threads never interleave.
    static func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}
