import ServiceLifecycle

/// Services that stop together: a ServiceGroup shuts its services down one after another (in reverse
/// order), so the thumbnail port would keep accepting while the file port waited for an upload to
/// finish. Run as one service, both ports see SIGTERM at once: both listeners close at once, and each
/// port's requests in progress get the whole grace.
struct ConcurrentServices: Service {
    let services: [any Service]

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services { group.addTask { try await service.run() } }
            try await group.waitForAll()
        }
    }
}
