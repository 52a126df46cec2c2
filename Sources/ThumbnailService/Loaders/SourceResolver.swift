import Foundation
import NIOPosix

/// Resolves a source host to addresses for the HTTP loader to check before it connects: first a hosts
/// file of Pinhole's own (`thumbnails.hosts_file`, hosts(5) format: pinning names the system resolver
/// must not answer for), then the system resolver (`getaddrinfo`, on a thread of NIO's pool: it blocks).
public struct SourceResolver: Sendable {
    let pinned: [String: [SourceAddress]]

    public init(hostsFile: String? = nil) throws {
        var pinned: [String: [SourceAddress]] = [:]
        if let hostsFile, !hostsFile.isEmpty {
            let text = try String(contentsOfFile: hostsFile, encoding: .utf8)
            for line in text.split(whereSeparator: \.isNewline) {
                let fields = line.prefix { $0 != "#" }.split(whereSeparator: \.isWhitespace).map(String.init)
                guard fields.count >= 2, let address = SourceAddress(fields[0]) else { continue }
                for name in fields.dropFirst() { pinned[name.lowercased(), default: []].append(address) }
            }
        }
        self.pinned = pinned
    }

    /// The addresses of `host` (a name; literals are not resolved), in the resolver's order. Empty when
    /// the name does not resolve.
    public func addresses(of host: String) async -> [SourceAddress] {
        if let pinned = pinned[host.lowercased()] { return pinned }
        return (try? await NIOThreadPool.singleton.runIfActive { Self.systemAddresses(of: host) }) ?? []
    }

    static func systemAddresses(of host: String) -> [SourceAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var found: [SourceAddress] = []
        var entry = list
        while let info = entry?.pointee {
            if info.ai_family == AF_INET, let raw = info.ai_addr {
                let address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                found.append(.v4(UInt32(bigEndian: address)))
            } else if info.ai_family == AF_INET6, let raw = info.ai_addr {
                var bytes = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                found.append(.v6(withUnsafeBytes(of: &bytes) { Array($0) }))
            }
            entry = info.ai_next
        }
        var seen = Set<SourceAddress>()
        return found.filter { seen.insert($0).inserted }
    }
}
