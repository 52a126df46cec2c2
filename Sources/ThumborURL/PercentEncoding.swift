/// Percent-decoding and -encoding exactly as Thumbor does it (tornado's `url_unescape(plus=False)`,
/// Python's `urllib.parse.quote`).
public enum PercentEncoding {
    /// Decodes `%XX` escapes once; malformed escapes stay literal and `+` stays `+`.
    /// Returns nil when the decoded bytes are not valid UTF-8 (Thumbor answers 400).
    public static func decode(_ text: some StringProtocol) -> String? {
        let bytes = decodeToBytes(text)
        return String(validating: bytes, as: UTF8.self)
    }

    public static func decodeToBytes(_ text: some StringProtocol) -> [UInt8] {
        let input = Array(text.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "%"), index + 2 < input.count,
               let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(byte)
                index += 1
            }
        }
        return output
    }

    /// Python's `urllib.parse.quote(text, safe=safe)`: UTF-8 bytes outside `A–Z a–z 0–9 _ . - ~` and `safe`
    /// become `%XX` with upper-case hex.
    public static func quote(_ text: some StringProtocol, safe: String = "/") -> String {
        quote(bytes: Array(text.utf8), safe: safe)
    }

    public static func quote(bytes: [UInt8], safe: String = "/") -> String {
        let safeBytes = Set(safe.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        for byte in bytes {
            if isAlwaysSafe(byte) || safeBytes.contains(byte) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isAlwaysSafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."),
             UInt8(ascii: "-"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
