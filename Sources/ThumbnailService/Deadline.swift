import NIOConcurrencyHelpers

/// Runs `work` with a time limit: past it the caller gets a 504 at once and stops waiting; the work is
/// cancelled (a render already on a render thread checks the deadline between its steps and stops there).
func withDeadline<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let pending = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
    let tasks = NIOLockedValueBox<(work: Task<Void, Never>?, timer: Task<Void, Never>?)>((nil, nil))
    @Sendable func finish(_ result: Result<T, any Error>) {
        guard let continuation = pending.withLockedValue({ value -> CheckedContinuation<T, any Error>? in
            defer { value = nil }
            return value
        }) else { return }
        let (workTask, timerTask) = tasks.withLockedValue { $0 }
        timerTask?.cancel()
        if case .failure = result { workTask?.cancel() }
        continuation.resume(with: result)
    }
    return try await withCheckedThrowingContinuation { continuation in
        pending.withLockedValue { $0 = continuation }
        let workTask = Task {
            do { finish(.success(try await work())) } catch { finish(.failure(error)) }
        }
        let timerTask = Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            finish(.failure(ServiceError(.gatewayTimeout, "render took longer than \(limit.components.seconds) s")))
        }
        tasks.withLockedValue { $0 = (workTask, timerTask) }
        if pending.withLockedValue({ $0 == nil }) { timerTask.cancel() }   // the work was already done
    }
}
