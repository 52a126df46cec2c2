import Metrics
import ServiceSupport
import NIOCore

/// One request from its head to the end of its response: what the access line and the request metrics
/// report.
struct RequestRecord {
    let id: String
    let method: String
    let path: String
    let route: String
    let start = NIODeadline.now()
    var status = 0
    var cache = "-"
    var requestBytes = 0
    var responseBytes = 0

    init(id: String, method: String, path: String, route: String) {
        self.id = id
        self.method = method
        self.path = path
        self.route = route
    }

    /// Writes the access line and records the request's metrics.
    func finish(on port: ServedPort, remote: String, status final: Int? = nil) {
        let status = final ?? self.status
        let nanoseconds = Int64(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
        let milliseconds = (Double(nanoseconds) / 1000).rounded() / 1000
        port.accessLog?.record(AccessLog.Line(requestID: id, service: port.service, method: method, path: path, status: status,
                                              milliseconds: milliseconds, bytes: responseBytes, cache: cache, remote: remote))
        let cacheLabel = cache == "-" ? "none" : cache
        Timer(label: "pinhole_http_request_duration_seconds",
              dimensions: [("service", port.service), ("route", route), ("cache", cacheLabel)]).recordNanoseconds(nanoseconds)
        Counter(label: "pinhole_http_responses_total",
                dimensions: [("service", port.service), ("route", route), ("status", "\(status / 100)xx")]).increment()
        if responseBytes > 0 {
            Counter(label: "pinhole_http_response_bytes_total", dimensions: [("service", port.service), ("route", route)])
                .increment(by: responseBytes)
        }
        port.finished?(CompletedRequest(route: route, method: method, status: status, requestBytes: requestBytes, responseBytes: responseBytes))
    }
}

/// Why a connection was cut by a limit (the `reason` label of `pinhole_http_limit_closures_total`).
enum LimitReason: String {
    case headerTimeout = "header_timeout", idleTimeout = "idle_timeout", bodyTimeout = "body_timeout", sendTimeout = "send_timeout"
    case maxConnections = "max_connections", evicted, urlTooLong = "url_too_long", headersTooLarge = "headers_too_large"
    case bodyRefused = "body_refused", pipelining, malformed

    func count(on port: ServedPort) {
        Counter(label: "pinhole_http_limit_closures_total", dimensions: [("service", port.service), ("reason", rawValue)]).increment()
    }
}
