import NIOConcurrencyHelpers

/// A bounded render queue in front of the render pool: at most `limit` renders admitted (running or
/// waiting for a render thread); beyond that the client gets 429 at once instead of the server piling
/// up memory. Cache hits and the healthcheck never pass through here.
public final class AdmissionControl: Sendable {
    public let limit: Int
    private let admitted = NIOLockedValueBox(0)

    public init(limit: Int) { self.limit = max(1, limit) }

    /// Runs `work` if there is room; throws a 429 `ServiceError` otherwise.
    public func admit<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        let entered = admitted.withLockedValue { count -> Bool in
            guard count < limit else { return false }
            count += 1
            ServiceMetrics.renderQueueDepth.record(count)
            return true
        }
        guard entered else {
            throw ServiceError(.tooManyRequests, "too many renders queued; retry shortly")
        }
        defer {
            admitted.withLockedValue {
                $0 -= 1
                ServiceMetrics.renderQueueDepth.record($0)
            }
        }
        return try await work()
    }

    public var inUse: Int { admitted.withLockedValue { $0 } }
}
