import NIOCore

/// Where one connection is in its request cycle, shared by its two guards (`ByteGuard` under the HTTP
/// codec, `RequestGuard` above it) and confined to the connection's event loop. One read timer covers
/// the waits a client controls — for a head, for the next request, for more of a body — and one send
/// timer covers a client that stops reading.
final class ConnectionState {
    let port: ServedPort
    var ticket: ConnectionTicket?
    /// The byte guard's context: refusals are written as raw bytes beneath the HTTP codec, which may be
    /// in the middle of a head it cannot finish.
    var rawContext: ChannelHandlerContext?
    var remote = "-"

    /// No request head is in progress or complete-but-unanswered… precisely: the next bytes start a head.
    var awaitingHead = true
    /// When the first byte of the head in progress arrived.
    var headStartedAt: NIODeadline?
    /// Bytes of the head in progress seen beneath the codec (a backstop: the codec buffers a request
    /// line without limit).
    var headBytes = 0
    var headHasLineEnd = false
    /// When the connection opened or its last response ended.
    var waitingSince = NIODeadline.now()
    var servedOne = false
    var inBody = false
    var lastRead = NIODeadline.now()
    /// The current `body_timeout` window of a request body, and the bytes it has brought.
    var bodyWindowStart = NIODeadline.now()
    var bodyWindowBytes = 0
    /// Requests received whose responses have not ended, oldest first (responses go out in order).
    var requests: [RequestRecord] = []
    /// A limit answered or closed the connection: nothing more is read or answered.
    var refused = false
    var closeReason: LimitReason?

    private var readTimer: Scheduled<Void>?
    private var readTimerDeadline: NIODeadline?
    private var sendTimer: Scheduled<Void>?

    init(port: ServedPort) { self.port = port }

    var limits: ConnectionLimits { port.limits }

    /// What the client is being waited for now, and until when.
    private func readDeadline() -> (NIODeadline, LimitReason)? {
        if refused { return nil }
        // A response still leaving is the send timer's to judge, not a wait for the client.
        if rawContext?.channel.isWritable == false { return nil }
        if inBody { return (bodyWindowStart + .seconds(limits.bodyTimeout), .bodyTimeout) }
        if let started = headStartedAt { return (started + .seconds(limits.headerTimeout), .headerTimeout) }
        guard awaitingHead, requests.isEmpty else { return nil }
        return servedOne ? (waitingSince + .seconds(limits.idleTimeout), .idleTimeout)
                         : (waitingSince + .seconds(limits.headerTimeout), .headerTimeout)
    }

    /// Schedules the read timer for the current wait. A timer already due earlier is kept: it re-checks
    /// when it fires, so a body that keeps arriving costs no rescheduling per read.
    func armReadTimer() {
        guard let context = rawContext else { return }
        guard let (deadline, _) = readDeadline() else {
            readTimer?.cancel()
            readTimer = nil
            readTimerDeadline = nil
            return
        }
        if let scheduled = readTimerDeadline, scheduled <= deadline { return }
        readTimer?.cancel()
        readTimerDeadline = deadline
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            readTimer = nil
            readTimerDeadline = nil
            guard let (due, reason) = readDeadline() else { return }
            if due > .now() { return armReadTimer() }
            if reason == .bodyTimeout, bodyKeepsUp() { return armReadTimer() }
            expire(reason)
        }
    }

    /// A body window has ended: the body may go on if it was not silent for the whole timeout and
    /// brought at least `body_min_rate` bytes a second; a new window starts.
    private func bodyKeepsUp() -> Bool {
        let now = NIODeadline.now()
        let silent = now - lastRead >= .seconds(limits.bodyTimeout)
        let enough = Double(bodyWindowBytes) >= limits.bodyMinRate * limits.bodyTimeout
        guard !silent, enough else { return false }
        bodyWindowStart = now
        bodyWindowBytes = 0
        return true
    }

    /// A request body begins: its first window starts now.
    func bodyStarted() {
        inBody = true
        bodyWindowStart = .now()
        bodyWindowBytes = 0
    }

    private func expire(_ reason: LimitReason) {
        switch reason {
        case .headerTimeout where requests.isEmpty:
            refuse(status: 408, reason: "Request Timeout", message: "request head timed out", limit: .headerTimeout)
        default:
            close(reason)
        }
    }

    func writabilityChanged(isWritable: Bool) {
        if isWritable {
            sendTimer?.cancel()
            sendTimer = nil
            armReadTimer()
        } else if sendTimer == nil, let context = rawContext {
            sendTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(limits.sendTimeout)) { [self] in
                sendTimer = nil
                if rawContext?.channel.isWritable == false { close(.sendTimeout) }
            }
        }
    }

    /// Answers with a final response written beneath the codec, then closes.
    func refuse(status: Int, reason: String, message: String, limit: LimitReason, record: RequestRecord? = nil, retryAfter: Bool = false) {
        guard !refused, let context = rawContext else { return }
        refused = true
        closeReason = limit
        limit.count(on: port)
        let id = record?.id ?? RequestID.make()
        let body = message + "\n"
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\nX-Request-Id: \(id)\r\n" + (retryAfter ? "Retry-After: 1\r\n" : "") + "\r\n"
        let buffer = context.channel.allocator.buffer(string: head + body)
        var logged = record ?? RequestRecord(id: id, method: "-", path: "-", route: "other")
        logged.status = status
        logged.responseBytes = body.utf8.count
        logged.finish(on: port, remote: remote)
        cancelTimers()
        closing = true
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Closes without an answer (the client is not reading, or a response is already under way). A
    /// request body in progress ends with an error first, so the application abandons it rather than
    /// taking what arrived for the whole (an upload cut here stores nothing).
    func close(_ reason: LimitReason) {
        guard !refused, let context = rawContext else { return }
        refused = true
        closing = true
        closeReason = reason
        reason.count(on: port)
        cancelTimers()
        if inBody { context.fireErrorCaught(ConnectionCut(reason: reason)) }
        context.close(promise: nil)
    }

    /// Set when a guard closes the connection itself: the close does not wait for pending writes.
    var closing = false

    private func cancelTimers() {
        readTimer?.cancel()
        readTimer = nil
        readTimerDeadline = nil
        sendTimer?.cancel()
        sendTimer = nil
    }

    /// The connection is gone: requests it left unanswered are logged (408 if a limit cut them, 499 if
    /// the client went away) and it leaves the registry.
    func closed() {
        cancelTimers()
        let status = closeReason == .bodyTimeout || closeReason == .headerTimeout ? 408 : 499
        for record in requests { record.finish(on: port, remote: remote, status: status) }
        requests = []
        if let ticket {
            let open = port.registry.remove(ticket)
            ConnectionGauge.record(open, service: port.service)
            self.ticket = nil
        }
        rawContext = nil
    }

    /// The head in progress is complete.
    func headArrived() {
        awaitingHead = false
        headStartedAt = nil
        headBytes = 0
        headHasLineEnd = false
        ticket?.setWaiting(false)
    }

    /// The last response ended: the connection waits for its next request.
    func responseEnded() {
        guard requests.isEmpty, awaitingHead else { return }
        servedOne = true
        waitingSince = .now()
        ticket?.setWaiting(true)
        armReadTimer()
    }
}

/// The error a request body ends with when a limit cuts its connection.
struct ConnectionCut: Error, CustomStringConvertible {
    let reason: LimitReason
    var description: String { "connection cut: \(reason.rawValue)" }
}

extension TimeAmount {
    static func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1_000_000_000)) }
}
