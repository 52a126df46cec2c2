import Foundation

/// A JSON document written by hand, for output where a number's spelling matters: Python prints `300.0`
/// for a float and `300` for an int, and Thumbor's JSON keeps the difference, which `JSONSerialization`
/// (a Double of 300 is written `300`) and `JSONEncoder` both lose.
public indirect enum JSONValue: Sendable, Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case int(Int)
    /// Written as Python's `repr` writes a float: `300.0`, `0.5`, `1e+16`.
    case float(Double)
    case bool(Bool)
    case null

    /// Converts what `JSONSerialization` accepts (dictionaries, arrays, strings, numbers, booleans, NSNull),
    /// with `JSONValue`s nested anywhere kept as they are. Anything else becomes its description.
    public init(_ value: Any) {
        switch value {
        case let value as JSONValue: self = value
        case let value as String: self = .string(value)
        case let value as Bool: self = .bool(value)
        case let value as Int: self = .int(value)
        case let value as Int64: self = .int(Int(value))
        case let value as Double: self = value.isFinite && value == value.rounded() && abs(value) < 1e15 ? .int(Int(value)) : .float(value)
        case let value as [String: Any]: self = .object(value.mapValues { JSONValue($0) })
        case let value as [Any]: self = .array(value.map { JSONValue($0) })
        case is NSNull: self = .null
        case let value as NSNumber: self = .float(value.doubleValue)
        default: self = .string(String(describing: value))
        }
    }

    /// The text, keys sorted; `indent` > 0 writes one member per line.
    public func text(indent: Int = 2) -> String {
        var out = ""
        write(to: &out, indent: indent, depth: 0)
        return out
    }

    private func write(to out: inout String, indent: Int, depth: Int) {
        let newline = indent > 0 ? "\n" : ""
        let pad = { (level: Int) in String(repeating: " ", count: indent * level) }
        switch self {
        case let .object(members):
            if members.isEmpty { out += "{}"; return }
            out += "{" + newline
            for (n, key) in members.keys.sorted().enumerated() {
                out += pad(depth + 1) + Self.quoted(key) + (indent > 0 ? ": " : ":")
                members[key]!.write(to: &out, indent: indent, depth: depth + 1)
                out += (n == members.count - 1 ? "" : ",") + newline
            }
            out += pad(depth) + "}"
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "[" + newline
            for (n, item) in items.enumerated() {
                out += pad(depth + 1)
                item.write(to: &out, indent: indent, depth: depth + 1)
                out += (n == items.count - 1 ? "" : ",") + newline
            }
            out += pad(depth) + "]"
        case let .string(text): out += Self.quoted(text)
        case let .int(n): out += String(n)
        case let .float(x): out += Self.pythonFloat(x)
        case let .bool(b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// Python's `repr(float)` for finite values (non-finite ones are not JSON: null).
    static func pythonFloat(_ x: Double) -> String {
        guard x.isFinite else { return "null" }
        if x == x.rounded(), abs(x) < 1e16 { return String(Int(x)) + ".0" }
        return String(x)
    }

    public static func quoted(_ text: String) -> String {
        var out = ""
        appendQuoted(text, to: &out)
        return out
    }

    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped (U+2028 and
    /// U+2029 too, which JavaScript does not allow raw in a string).
    public static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar == "\u{2028}" || scalar == "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
