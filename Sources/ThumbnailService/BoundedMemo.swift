import NIOConcurrencyHelpers

/// A small thread-safe memo with a hard size bound: when full it starts over, which keeps the hot
/// working set without any bookkeeping per hit.
final class BoundedMemo<Value: Sendable>: Sendable {
    private let capacity: Int
    private let storage = NIOLockedValueBox<[String: Value]>([:])

    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: String) -> Value? { storage.withLockedValue { $0[key] } }

    func put(_ key: String, _ value: Value) {
        storage.withLockedValue { storage in
            if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
            storage[key] = value
        }
    }
}
