import HTTPTypes
import Synchronization

/// The id an access line and the `X-Request-Id` response header share: the client's own (a proxy's, say)
/// when it is a plain token, else one made here from a per-process random prefix and a counter, which
/// is unique without a system call per request.
enum RequestID {
    static let field = HTTPField.Name("X-Request-Id")!
    private static let prefix = UInt32.random(in: .min ... .max)
    private static let counter = Atomic<UInt32>(0)

    static func make() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return hex(prefix) + hex(n)
    }

    static func accepting(_ offered: String?) -> String {
        guard let offered, (1...128).contains(offered.utf8.count),
              offered.utf8.allSatisfy({ isTokenByte($0) }) else { return make() }
        return offered
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"): true
        default: false
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
