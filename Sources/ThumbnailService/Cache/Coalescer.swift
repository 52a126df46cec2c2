import NIOConcurrencyHelpers

/// Identical concurrent work runs once: the first caller for a key starts it, later callers for the
/// same key wait for that result (or that error). Used for renders (key: the request) and for source
/// fetches (key: the source URL), so ten sizes of one new component cost one fetch.
public final class Coalescer<Value: Sendable>: Sendable {
    private let inFlight = NIOLockedValueBox<[String: Task<Value, any Error>]>([:])

    public init() {}

    public func run(_ key: String, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = inFlight.withLockedValue { running -> Task<Value, any Error> in
            if let existing = running[key] { return existing }
            let task = Task<Value, any Error> {
                defer { _ = self.inFlight.withLockedValue { $0.removeValue(forKey: key) } }
                return try await work()
            }
            running[key] = task
            return task
        }
        return try await task.value
    }
}
