import HTTPTypes
import ServiceSupport

/// How one HTTP port is served: its name in logs and metrics, its limits, how its paths map to route
/// names, and where its access log goes. Each port has one; every connection to it is guarded by it.
public struct ServedPort: Sendable {
    /// `thumbnails` or `files`: the `service` label of metrics and access lines.
    public let service: String
    public let limits: ConnectionLimits
    /// The thumbnail port serves GET and HEAD only: a request body there is refused (413) before a byte
    /// of it is read.
    public let refusesBodies: Bool
    /// A metric-safe route name for a request target (a fixed, small set per port).
    public let route: @Sendable (_ method: String, _ path: Substring) -> String
    /// The response header that says how the cache answered (thumbnails), for logs and metrics.
    public let cacheStatusField: HTTPField.Name?
    /// Where access lines go; nil turns them off.
    public let accessLog: AccessLog?
    /// Called once per finished request (after the access line), for a port's own counters.
    public let finished: (@Sendable (CompletedRequest) -> Void)?
    let registry: ConnectionRegistry

    public init(service: String, limits: ConnectionLimits, refusesBodies: Bool, route: @escaping @Sendable (_ method: String, _ path: Substring) -> String,
                cacheStatusField: HTTPField.Name? = nil, accessLog: AccessLog?, finished: (@Sendable (CompletedRequest) -> Void)? = nil) {
        self.service = service
        self.limits = limits
        self.refusesBodies = refusesBodies
        self.route = route
        self.cacheStatusField = cacheStatusField
        self.accessLog = accessLog
        self.finished = finished
        self.registry = ConnectionRegistry(limit: limits.maxConnections)
    }
}

/// A request as its access line and metrics see it once its response has ended (or it was cut off).
public struct CompletedRequest: Sendable {
    public let route: String
    public let method: String
    /// The final status; 408 or 499 (nginx's "client closed request") when the connection ended first.
    public let status: Int
    public let requestBytes: Int
    public let responseBytes: Int
}
