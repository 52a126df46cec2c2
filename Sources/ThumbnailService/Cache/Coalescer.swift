import NIOConcurrencyHelpers

/// Identical concurrent work runs once: the first caller for a key starts it, later callers for the
/// same key wait for that result (or that error). Used for renders (key: the request) and for source
/// fetches (key: the source URL), so ten sizes of one new component cost one fetch.
public final class Coalescer<Value: Sendable>: Sendable {
    private struct Running {
        var task: Task<Value, any Error>
        /// Callers waiting for this task's result, the one that started it included.
        var callers: Int
    }

    private let inFlight = NIOLockedValueBox<[String: Running]>([:])

    public init() {}

    public func run(_ key: String, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = inFlight.withLockedValue { running -> Task<Value, any Error> in
            if let existing = running[key] {
                running[key]!.callers += 1
                return existing.task
            }
            let task = Task<Value, any Error> {
                defer { _ = self.inFlight.withLockedValue { $0.removeValue(forKey: key) } }
                return try await work()
            }
            running[key] = Running(task: task, callers: 1)
            return task
        }
        return try await task.value
    }

    /// How many callers are waiting for the work running under `key` (0 when none runs): what tests and
    /// diagnostics synchronise on.
    public func callers(_ key: String) -> Int {
        inFlight.withLockedValue { $0[key]?.callers ?? 0 }
    }
}
