import NIOCore
import Synchronization

/// One open connection as the registry sees it: its channel, and since when it has had no request in
/// progress (`-1` while it has one). Written on the connection's event loop, read by whoever admits a
/// new connection.
final class ConnectionTicket: Sendable {
    let channel: any Channel
    private let waitingSince = Atomic<Int64>(0)

    init(channel: any Channel) {
        self.channel = channel
        waitingSince.store(NIODeadline.now().uptimeNanoseconds.clamped, ordering: .relaxed)
    }

    /// Whether the connection is waiting for a request (idle, or still sending a head).
    func setWaiting(_ waiting: Bool) {
        waitingSince.store(waiting ? NIODeadline.now().uptimeNanoseconds.clamped : -1, ordering: .relaxed)
    }

    var waitingSinceNanoseconds: Int64 { waitingSince.load(ordering: .relaxed) }
}

/// The open connections of one port, so that the port can hold `max_connections` and make room for a
/// new client by closing the connection that has waited longest without a request (as nginx reuses
/// idle keep-alive connections when it runs out). A connection with a request in progress is never
/// closed for room.
final class ConnectionRegistry: Sendable {
    enum Admission { case admitted, admittedByEvicting, refused }

    private let open = Mutex<[ObjectIdentifier: ConnectionTicket]>([:])
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func admit(_ ticket: ConnectionTicket) -> (Admission, count: Int) {
        let (admission, count, evicted) = open.withLock { open -> (Admission, Int, ConnectionTicket?) in
            var evicted: ConnectionTicket?
            if open.count >= limit {
                let oldest = open.values.filter { $0.waitingSinceNanoseconds >= 0 }.min { $0.waitingSinceNanoseconds < $1.waitingSinceNanoseconds }
                guard let oldest else { return (.refused, open.count, nil) }
                open[ObjectIdentifier(oldest)] = nil
                evicted = oldest
            }
            open[ObjectIdentifier(ticket)] = ticket
            return (evicted == nil ? .admitted : .admittedByEvicting, open.count, evicted)
        }
        // Outside the lock: a channel on this event loop closes at once, and its close leaves the registry.
        evicted?.channel.close(promise: nil)
        return (admission, count)
    }

    /// Returns the number of connections left open.
    func remove(_ ticket: ConnectionTicket) -> Int {
        open.withLock { open in
            open[ObjectIdentifier(ticket)] = nil
            return open.count
        }
    }
}

extension UInt64 {
    var clamped: Int64 { Int64(clamping: self) }
}
