import Foundation

/// A one-shot gate for tests: work parked in `wait()` resumes when the test calls `open()`, so tests
/// synchronise on events they control instead of sleeping and hoping the timing holds.
public final class Gate: @unchecked Sendable {   // state guarded by `lock`
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = lock.withLock { () -> Bool in
                if isOpen { return true }
                waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func open() {
        let parked = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            isOpen = true
            defer { waiters = [] }
            return waiters
        }
        for waiter in parked { waiter.resume() }
    }
}

/// Polls `condition` (yielding between looks) until it holds; false if it still does not after `limit`
/// looks. For counters that other tasks or threads move: the wait ends on the event, not on a delay.
public func eventually(_ limit: Int = 2_000_000, _ condition: () async -> Bool) async -> Bool {
    for _ in 0..<limit {
        if await condition() { return true }
        await Task.yield()
    }
    return false
}
