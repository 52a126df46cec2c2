import Foundation

/// Who wrote a temporary file in a store shared by several processes, possibly on several machines:
/// the host name, the process id and the process's start time (so a reused pid is not mistaken for
/// the writer). It is part of every temporary name, so a sweep can tell debris from work in progress.
public struct WriterIdentity: Sendable, Equatable {
    public let host: String
    public let pid: Int32
    /// Clock ticks after boot at which the process started (/proc/<pid>/stat, field 22).
    public let started: UInt64

    public static let current = WriterIdentity(host: sanitisedHostName(), pid: getpid(), started: startTime(of: getpid()) ?? 0)

    /// `host+pid+started`: no dots, so it sits in dotted file names unambiguously.
    public var token: String { "\(host)+\(pid)+\(started)" }

    public init(host: String, pid: Int32, started: UInt64) {
        self.host = host
        self.pid = pid
        self.started = started
    }

    public init?(token: some StringProtocol) {
        let parts = token.split(separator: "+")
        guard parts.count == 3, let pid = Int32(parts[1]), let started = UInt64(parts[2]) else { return nil }
        self.init(host: String(parts[0]), pid: pid, started: started)
    }

    /// Whether the writer is known to be gone: only a writer on this host can be checked; one on
    /// another host is judged by the age of its files instead.
    public var isDeadOnThisHost: Bool {
        guard host == Self.current.host else { return false }
        return Self.startTime(of: pid) != started
    }

    static func sanitisedHostName() -> String {
        let name = ProcessInfo.processInfo.hostName
        let cleaned = name.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-") ? Character(scalar) : "-"
        }
        return cleaned.isEmpty ? "host" : String(cleaned)
    }

    /// nil when the process does not exist.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, start time field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
