/// A component id as a storage key. ftrack's ids are UUIDs; anything that could address a path
/// (`/`, `..`, NUL, control characters) or is implausibly long is refused.
public struct ComponentID: Sendable, Hashable, CustomStringConvertible {
    public let value: String
    public static let maxLength = 128

    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength, !text.contains("..") else { return nil }
        for (index, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                continue
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                if index == 0 { return nil }
            default:
                return nil
            }
        }
        value = text
    }

    public var description: String { value }
}
