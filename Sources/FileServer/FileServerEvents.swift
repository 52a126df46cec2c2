import NIOConcurrencyHelpers

/// What the file server tells the rest of the process: the executable subscribes (upload → pre-warm
/// thumbnails, remove → purge them) without the file server knowing who listens.
public enum FileServerEvent: Sendable, Equatable {
    /// A component was stored; only images and video are announced (what thumbnails are made of).
    case uploaded(id: String, contentType: String, size: Int64, fileName: String?)
    case removed(id: String)
}

/// An in-process broadcaster: every subscriber gets every event published after it subscribed.
public final class FileServerEvents: Sendable {
    private let subscribers = NIOLockedValueBox<[Int: AsyncStream<FileServerEvent>.Continuation]>([:])
    private let counter = NIOLockedValueBox(0)
    private let committed = NIOLockedValueBox<(@Sendable (ComponentRecord) async -> Void)?>(nil)

    public init() {}

    public func subscribe() -> AsyncStream<FileServerEvent> {
        let (stream, continuation) = AsyncStream<FileServerEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let key = counter.withLockedValue { value -> Int in value += 1; return value }
        subscribers.withLockedValue { $0[key] = continuation }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLockedValue { _ = $0.removeValue(forKey: key) } }
        return stream
    }

    /// `handler` runs after every upload commits and before it is answered: what it records (a review
    /// job) is on disk when the client hears 200.
    public func whenCommitted(_ handler: @escaping @Sendable (ComponentRecord) async -> Void) {
        committed.withLockedValue { $0 = handler }
    }

    func uploadCommitted(_ record: ComponentRecord) async {
        if let handler = committed.withLockedValue({ $0 }) { await handler(record) }
    }

    public func publish(_ event: FileServerEvent) {
        for continuation in subscribers.withLockedValue({ Array($0.values) }) { continuation.yield(event) }
    }
}
