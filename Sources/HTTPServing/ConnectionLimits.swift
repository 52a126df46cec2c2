import ServiceSupport

/// What one port allows a client before it is cut off. Both ports read the same keys, each under its
/// own section (`thumbnails.` and `files.`), because a browser-facing thumbnail port and an upload port
/// need different numbers.
public struct ConnectionLimits: Sendable {
    /// Seconds a request head may take to arrive, from the connection opening or from its first byte
    /// (slowloris: a head trickled a byte at a time). Answered 408, then closed.
    public var headerTimeout = 10.0
    /// Seconds a keep-alive connection may wait for its next request.
    public var idleTimeout = 60.0
    /// Seconds a request body may send nothing (an upload trickled or stalled). The connection is closed
    /// and the upload abandoned; nothing of it is stored.
    public var bodyTimeout = 30.0
    /// Bytes a second a request body must average over each `bodyTimeout` window: an upload trickled a
    /// byte at a time (never silent for long) is cut too.
    public var bodyMinRate = 1024.0
    /// Seconds a response may wait for a client that reads none of it (a slow reader).
    public var sendTimeout = 60.0
    /// Open connections at most. At the limit a new connection closes the longest-waiting connection that
    /// has no request in progress; when every connection is busy it is answered 503.
    public var maxConnections = 1024
    /// Longest request target (414 beyond).
    public var maxURLBytes = 8192
    /// Largest header section (431 beyond).
    public var maxHeaderBytes = 16384
    /// Requests one connection may have received ahead of their responses (HTTP pipelining).
    public var maxPipelined = 16
    /// Seconds requests in progress may take to finish after SIGTERM before they are cut.
    public var shutdownGrace = 30.0

    public init() {}

    public static func keys(section: String) -> [(key: String, meaning: String)] {
        [
            ("\(section).header_timeout", "seconds a request head may take to arrive (408 and closed beyond)"),
            ("\(section).idle_timeout", "seconds a keep-alive connection may wait for its next request"),
            ("\(section).body_timeout", "seconds a request body may send nothing before the connection is closed"),
            ("\(section).body_min_rate", "bytes a second a request body must average over each body_timeout window"),
            ("\(section).send_timeout", "seconds a client may read nothing of a response before the connection is closed"),
            ("\(section).max_connections", "open connections at most (idle ones are closed first, then 503)"),
            ("\(section).max_url_bytes", "longest request target (414 beyond)"),
            ("\(section).max_header_bytes", "largest request header section (431 beyond)"),
            ("\(section).max_pipelined", "requests a connection may send ahead of their responses"),
            ("\(section).shutdown_grace", "seconds requests in progress may take to finish after SIGTERM"),
        ]
    }

    /// Reads the keys of one section (`r` carries the section's prefix).
    public mutating func read(_ r: ValueReader) throws {
        headerTimeout = try r.double("header_timeout", above: 0) ?? headerTimeout
        idleTimeout = try r.double("idle_timeout", above: 0) ?? idleTimeout
        bodyTimeout = try r.double("body_timeout", above: 0) ?? bodyTimeout
        bodyMinRate = try r.double("body_min_rate", above: -1) ?? bodyMinRate
        sendTimeout = try r.double("send_timeout", above: 0) ?? sendTimeout
        maxConnections = try r.int("max_connections", in: 1...1_000_000) ?? maxConnections
        maxURLBytes = try r.int("max_url_bytes", in: 256...1 << 20) ?? maxURLBytes
        maxHeaderBytes = try r.int("max_header_bytes", in: 1024...1 << 20) ?? maxHeaderBytes
        maxPipelined = try r.int("max_pipelined", in: 1...10_000) ?? maxPipelined
        shutdownGrace = try r.double("shutdown_grace", above: 0) ?? shutdownGrace
    }
}
