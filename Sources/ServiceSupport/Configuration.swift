import Configuration
import SystemPackage

/// A configuration value that cannot be used; start-up stops with this message.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let problem: String
    public init(key: String, problem: String) { self.key = key; self.problem = problem }
    public var description: String { "configuration key '\(key)': \(problem)" }
}

/// Reads keys as text (YAML scalars and environment variables both arrive as text) and parses them
/// here, so that a bad value is an error naming its key instead of a silent default.
public struct ValueReader {
    let reader: ConfigReader
    let prefix: String

    public init(reader: ConfigReader, prefix: String) {
        self.reader = reader
        self.prefix = prefix
    }

    private func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    public func string(_ name: String) throws -> String? {
        reader.string(forKey: ConfigKey(key(name)))
    }

    public func strings(_ name: String) throws -> [String]? {
        if let list = reader.stringArray(forKey: ConfigKey(key(name))) { return list }
        guard let text = try string(name) else { return nil }
        return text.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
    }

    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = try string(name) else { return nil }
        guard let value = Int(text.trimmed) else {
            throw ConfigurationError(key: key(name), problem: "'\(text)' is not a whole number")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: key(name), problem: "\(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func double(_ name: String, above minimum: Double) throws -> Double? {
        guard let text = try string(name) else { return nil }
        guard let value = Double(text.trimmed), value.isFinite else {
            throw ConfigurationError(key: key(name), problem: "'\(text)' is not a number")
        }
        guard value > minimum else { throw ConfigurationError(key: key(name), problem: "must be above \(minimum)") }
        return value
    }

    public func bool(_ name: String) throws -> Bool? {
        guard let text = try string(name) else { return nil }
        switch text.trimmed.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigurationError(key: key(name), problem: "'\(text)' is not true or false")
        }
    }
}

extension String {
    public var trimmed: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}

/// Builds the reader: `PINHOLE_…` environment variables over the YAML file (if any).
public enum ConfigurationSource {
    public static func reader(file: String?, environment: [String: String]? = nil) async throws -> ConfigReader {
        let env = environment.map { EnvironmentVariablesProvider(environmentVariables: $0) } ?? EnvironmentVariablesProvider()
        let prefixed = KeyMappingProvider(upstream: env) { key in
            AbsoluteConfigKey(["pinhole"] + key.components, context: key.context)
        }
        var providers: [any ConfigProvider] = [prefixed]
        if let file {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch {
                throw ConfigurationError(key: "--config", problem: "cannot read '\(file)': \(OperatorText.describe(error))")
            }
        }
        return ConfigReader(providers: providers)
    }
}
