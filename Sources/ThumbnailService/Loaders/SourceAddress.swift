#if canImport(Glibc)
import Glibc
#endif

/// An IP address a source host resolved to, and what kind of network it belongs to: the HTTP loader
/// connects only to public addresses unless configuration names the host or the range (SSRF).
public enum SourceAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])

    /// A canonical literal (`a.b.c.d`, or IPv6 text, brackets allowed); nil for anything else.
    public init?(_ text: String) {
        var host = text
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    /// Whether `host` spells an IPv4 address the way only `inet_aton` reads it: one decimal number
    /// (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`) or a short form (`127.1`). A URL that hides an
    /// address this way is refused whatever it names.
    public static func isObfuscatedIPv4(_ host: String) -> Bool {
        var canonical = in_addr()
        if inet_pton(AF_INET, host, &canonical) == 1 { return false }
        var lenient = in_addr()
        return inet_aton(host, &lenient) != 0
    }

    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
        case .v6(let bytes):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// The kinds of network a source may not be fetched from unless allowed.
    public enum Kind: String, Sendable {
        case `public`, loopback, `private`, linkLocal = "link-local", carrierGradeNAT = "carrier-grade NAT", multicast
        case uniqueLocal = "unique-local", unspecified, reserved, ipv4Mapped = "IPv4-mapped IPv6"
    }

    public var kind: Kind {
        switch self {
        case .v4(let a): return Self.kind(v4: a)
        case .v6(let b): return Self.kind(v6: b)
        }
    }

    static func kind(v4 a: UInt32) -> Kind {
        func within(_ network: UInt32, _ prefix: UInt32) -> Bool { a >> (32 - prefix) == network >> (32 - prefix) }
        if within(0x0000_0000, 8) { return .unspecified }           // 0.0.0.0/8 "this network"
        if within(0x7F00_0000, 8) { return .loopback }              // 127.0.0.0/8
        if within(0x0A00_0000, 8) || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16) { return .private }
        if within(0xA9FE_0000, 16) { return .linkLocal }            // 169.254.0.0/16, cloud metadata among it
        if within(0x6440_0000, 10) { return .carrierGradeNAT }      // 100.64.0.0/10
        if within(0xE000_0000, 4) { return .multicast }             // 224.0.0.0/4
        if within(0xF000_0000, 4) { return .reserved }              // 240.0.0.0/4 and the broadcast address
        // IETF protocol assignments, 6to4 relays, benchmarking, documentation.
        if within(0xC000_0000, 24) || within(0xC058_6300, 24) || within(0xC612_0000, 15) || within(0xC000_0200, 24)
            || within(0xC633_6400, 24) || within(0xCB00_7100, 24) { return .reserved }
        return .public
    }

    static func kind(v6 b: [UInt8]) -> Kind {
        func starts(_ prefix: [UInt8], bits: Int) -> Bool {
            for bit in 0..<bits where (b[bit / 8] >> (7 - bit % 8)) & 1 != (prefix[bit / 8] >> (7 - bit % 8)) & 1 { return false }
            return true
        }
        func embedded(at offset: Int) -> UInt32 {
            UInt32(b[offset]) << 24 | UInt32(b[offset + 1]) << 16 | UInt32(b[offset + 2]) << 8 | UInt32(b[offset + 3])
        }
        if b.allSatisfy({ $0 == 0 }) { return .unspecified }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return .loopback }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return .ipv4Mapped }
        if b[0..<12].allSatisfy({ $0 == 0 }) { return .reserved }        // IPv4-compatible (deprecated)
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judged by it.
        if starts([0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0], bits: 96) {
            let inner = kind(v4: embedded(at: 12))
            return inner == .public ? .public : inner
        }
        if starts([0x20, 0x02], bits: 16) {
            let inner = kind(v4: embedded(at: 2))
            return inner == .public ? .public : inner
        }
        if starts([0xFE, 0x80], bits: 10) { return .linkLocal }
        if starts([0xFE, 0xC0], bits: 10) { return .private }             // site-local (deprecated)
        if starts([0xFC], bits: 7) { return .uniqueLocal }
        if starts([0xFF], bits: 8) { return .multicast }
        if starts([0x20, 0x01, 0x0D, 0xB8], bits: 32) { return .reserved } // documentation
        if starts([0x20], bits: 3) { return .public }                      // global unicast 2000::/3
        return .reserved
    }
}

/// An address range from configuration (`thumbnails.allowed_networks`): `10.0.0.0/8`, `fd00::/8`, or one address.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    let network: SourceAddress
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let address = SourceAddress(first) else { return nil }
        let width: Int
        switch address { case .v4: width = 32; case .v6: width = 128 }
        let prefix = parts.count > 1 ? Int(parts[1]) : width
        guard let prefix, (0...width).contains(prefix) else { return nil }
        network = address
        self.prefix = prefix
    }

    public func contains(_ address: SourceAddress) -> Bool {
        switch (network, address) {
        case let (.v4(n), .v4(a)):
            return prefix == 0 || n >> (32 - UInt32(prefix)) == a >> (32 - UInt32(prefix))
        case let (.v6(n), .v6(a)):
            for bit in 0..<prefix where (n[bit / 8] >> (7 - bit % 8)) & 1 != (a[bit / 8] >> (7 - bit % 8)) & 1 { return false }
            return true
        default:
            return false
        }
    }

    public var description: String { "\(network)/\(prefix)" }
}
