import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers result-cache hits from the memory layer straight from the channel pipeline, before
/// Hummingbird turns the request into an async task with body streams and a response writer (most of
/// a hit's cost). Sits after the HTTP codec; anything it does not answer, and every request while an
/// earlier one on the connection is still with Hummingbird (pipelining keeps responses in order),
/// passes through untouched. The response comes from `ImagingHandler.cachedResponse`, which builds it
/// exactly as the normal path does.
final class CacheHitFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let imaging: ImagingHandler
    /// Requests passed on whose responses have not ended yet.
    private var withHummingbird = 0
    /// The current request was answered here: its remaining parts are dropped.
    private var answered = false

    init(imaging: ImagingHandler) {
        self.imaging = imaging
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case let .head(head):
            if withHummingbird == 0, let (response, body) = imaging.cachedResponse(to: head) {
                answered = true
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            answered = false
            withHummingbird += 1
        case .body, .end:
            if answered {
                if case .end = part { answered = false }
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { withHummingbird = max(0, withHummingbird - 1) }
        context.write(data, promise: promise)
    }
}
