import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The guard above the HTTP codec: sees each request head and each response, so it enforces the limits
/// that need HTTP (target length, bodies where none belong, pipelining, a malformed or oversized head),
/// stamps every response with its `X-Request-Id`, and writes the access line and request metrics when
/// the response ends — for every response, whoever answered it (the router, or the cache fast path).
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let state: ConnectionState

    init(state: ConnectionState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.refused { return }
        switch unwrapInboundIn(data) {
        case .head(let request):
            state.headArrived()
            let port = state.port
            let path = request.path ?? ""
            let record = RequestRecord(id: RequestID.accepting(request.headerFields[RequestID.field]), method: request.method.rawValue,
                                       path: path.utf8.count > 1024 ? String(path.prefix(1024)) + "…" : path, route: port.route(request.method.rawValue, path.utf8.count > 2048 ? path.prefix(2048) : Substring(path)))
            if path.utf8.count > state.limits.maxURLBytes {
                return state.refuse(status: 414, reason: "URI Too Long", message: "request target longer than \(state.limits.maxURLBytes) bytes",
                                    limit: .urlTooLong, record: record)
            }
            let length = request.headerFields[.contentLength].flatMap { Int($0) } ?? 0
            let hasBody = length > 0 || request.headerFields[.transferEncoding] != nil
            if hasBody, port.refusesBodies {
                return state.refuse(status: 413, reason: "Content Too Large", message: "thumbnail requests take no body",
                                    limit: .bodyRefused, record: record)
            }
            if state.requests.count >= state.limits.maxPipelined { return state.close(.pipelining) }
            state.requests.append(record)
            if hasBody { state.bodyStarted() } else { state.inBody = false }
            state.armReadTimer()
        case .body(let chunk):
            if !state.requests.isEmpty { state.requests[state.requests.count - 1].requestBytes += chunk.readableBytes }
        case .end:
            state.inBody = false
            state.awaitingHead = true
            state.armReadTimer()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response):
            guard !state.requests.isEmpty, response.status.code >= 200 else { break }
            state.requests[0].status = response.status.code
            if let field = state.port.cacheStatusField, let cache = response.headerFields[field] { state.requests[0].cache = cache }
            response.headerFields[RequestID.field] = state.requests[0].id
            return context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body(let chunk):
            if !state.requests.isEmpty { state.requests[0].responseBytes += chunk.readableBytes }
        case .end:
            // The connection waits for its next request (and may be evicted as idle) once the response has
            // left, not when it was queued: a response stuck behind a client that does not read keeps it busy.
            let written = context.eventLoop.makePromise(of: Void.self)
            let state = self.state
            written.futureResult.assumeIsolated().whenSuccess { state.responseEnded() }
            if let promise { written.futureResult.cascade(to: promise) }
            context.write(data, promise: written)
            if !state.requests.isEmpty, state.requests[0].status != 0 {
                state.requests.removeFirst().finish(on: state.port, remote: state.remote)
            }
            return
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The codec could not parse the head: answer it here (the application never saw a request).
        if let parseError = error as? HTTPParserError, state.requests.isEmpty {
            if case .headerOverflow = parseError {
                return state.refuse(status: 431, reason: "Request Header Fields Too Large",
                                    message: "request header fields larger than \(state.limits.maxHeaderBytes) bytes", limit: .headersTooLarge)
            }
            return state.refuse(status: 400, reason: "Bad Request", message: "malformed request", limit: .malformed)
        }
        context.fireErrorCaught(error)
    }
}
