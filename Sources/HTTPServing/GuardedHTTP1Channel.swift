import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 child channel with a port's guards around its codec (`ByteGuard` beneath it,
/// `RequestGuard` above it, sharing one `ConnectionState` per connection).
public struct GuardedHTTP1Channel: ServerChildChannel {
    public typealias Value = HTTP1Channel.Value

    let port: ServedPort
    let responder: HTTPChannelHandler.Responder
    let additionalChannelHandlers: @Sendable () -> [any RemovableChannelHandler]

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let state = ConnectionState(port: port)
        do {
            try channel.pipeline.syncOperations.addHandler(ByteGuard(state: state), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let guardHandler = NIOLoopBound(RequestGuard(state: state), eventLoop: channel.eventLoop)
        let extra = additionalChannelHandlers
        let limits = port.limits
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [guardHandler.value] + extra(),
            idleTimeout: nil,
            httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes))
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    public func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// An HTTP/1 server whose every connection is guarded by `port`'s limits, access log and metrics;
    /// `additionalChannelHandlers` go after the guard (they see only admitted requests, and their
    /// responses are logged).
    public static func guarded(_ port: ServedPort,
                               additionalChannelHandlers: @escaping @Sendable () -> [any RemovableChannelHandler] = { [] }) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(port: port, responder: responder, additionalChannelHandlers: additionalChannelHandlers)
        }
    }
}
