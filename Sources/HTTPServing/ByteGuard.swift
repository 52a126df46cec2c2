import Metrics
import NIOCore

/// The first handler of a guarded connection, beneath the HTTP codec: admits the connection under
/// `max_connections`, times the client's waits from its first byte, watches writability for slow
/// readers, and stops a request line or head from growing past its limits (NIO's decoder buffers a
/// request line without bound).
final class ByteGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let state: ConnectionState

    init(state: ConnectionState) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) {
        state.rawContext = context
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        context.fireChannelActive()
    }

    private func admit(_ context: ChannelHandlerContext) {
        guard state.ticket == nil else { return }
        state.remote = context.channel.remoteAddress?.ipAddress ?? "-"
        let ticket = ConnectionTicket(channel: context.channel)
        state.ticket = ticket
        let (admission, open) = state.port.registry.admit(ticket)
        ConnectionGauge.record(open, service: state.port.service)
        switch admission {
        case .admitted:
            state.armReadTimer()
        case .admittedByEvicting:
            LimitReason.evicted.count(on: state.port)
            state.armReadTimer()
        case .refused:
            state.ticket = nil
            state.refuse(status: 503, reason: "Service Unavailable", message: "too many connections", limit: .maxConnections, retryAfter: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        state.closed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.refused { return }
        let buffer = unwrapInboundIn(data)
        state.lastRead = .now()
        if state.inBody { state.bodyWindowBytes += buffer.readableBytes }
        let startsHead = state.awaitingHead && state.headStartedAt == nil && buffer.readableBytes > 0
        if startsHead { state.headStartedAt = state.lastRead }
        context.fireChannelRead(data)
        // After the codec has seen the bytes: if a head is still incomplete, count them against it.
        guard state.awaitingHead, state.headStartedAt != nil, !state.refused else { return }
        if startsHead { state.armReadTimer() }
        state.headBytes += buffer.readableBytes
        if !state.headHasLineEnd { state.headHasLineEnd = buffer.readableBytesView.contains(UInt8(ascii: "\n")) }
        let limits = state.limits
        if !state.headHasLineEnd, state.headBytes > limits.maxURLBytes + 32 {
            state.refuse(status: 414, reason: "URI Too Long", message: "request target longer than \(limits.maxURLBytes) bytes",
                         limit: .urlTooLong)
        } else if state.headBytes > limits.maxURLBytes + limits.maxHeaderBytes + 32 {
            state.refuse(status: 431, reason: "Request Header Fields Too Large",
                         message: "request header fields larger than \(limits.maxHeaderBytes) bytes", limit: .headersTooLarge)
        }
    }

    /// A close asked for by the application (a response finished as the server stops, or a
    /// `Connection: close`) waits until what was written has reached the socket: NIO discards pending
    /// writes on close, which would truncate the response. The guards' own closes do not wait (the send
    /// timer bounds a client that never reads).
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !state.closing, mode != .input, context.channel.isActive else {
            return context.close(mode: mode, promise: promise)
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer()))).assumeIsolated().whenComplete { _ in
            context.close(mode: mode, promise: promise)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        state.writabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }
}

/// `pinhole_http_connections{service}`: connections open on a port.
enum ConnectionGauge {
    static func record(_ open: Int, service: String) {
        Gauge(label: "pinhole_http_connections", dimensions: [("service", service)]).record(open)
    }
}
