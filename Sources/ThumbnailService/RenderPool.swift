import NIOCore
import NIOPosix

/// The threads libvips runs on: a fixed pool sized to the cores, so decoding never blocks NIO's event
/// loops or Swift's cooperative pool (both only as wide as the cores).
public final class RenderPool: Sendable {
    private let pool: NIOThreadPool
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        pool = NIOThreadPool(numberOfThreads: self.threads)
        pool.start()
    }

    public static var defaultThreads: Int { System.coreCount }

    /// Runs `work` on a render thread and returns its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(work)
    }

    public func shutdown() async throws {
        try await pool.shutdownGracefully()
    }
}
