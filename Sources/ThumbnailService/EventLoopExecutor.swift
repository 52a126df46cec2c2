import NIOCore
import NIOPosix
import ServiceLifecycle

/// Runs Swift tasks on NIO's event loops instead of the cooperative pool. A request's code resumes on the
/// loop that read it (NIO's `any()` prefers the calling loop), so a cache hit is parsed, looked up and
/// written back without two thread hops per await. Only for code that never blocks: libvips runs on the
/// `RenderPool`, sources are read with NIOFileSystem; the file server (fsync) stays on the cooperative pool.
final class EventLoopExecutor: TaskExecutor {
    let group: any EventLoopGroup

    init(group: any EventLoopGroup) { self.group = group }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        group.any().execute { job.runSynchronously(on: executor) }
    }
}

/// A service whose tasks (and their child tasks: every connection) prefer `executor`.
struct PreferringExecutor<Inner: Service>: Service {
    let inner: Inner
    let executor: EventLoopExecutor

    func run() async throws {
        try await withTaskExecutorPreference(executor) { try await inner.run() }
    }
}
