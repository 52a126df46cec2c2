import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// The threads libvips runs on: a fixed pool sized to the cores, so decoding never blocks NIO's event
/// loops or Swift's cooperative pool (both only as wide as the cores).
public final class RenderPool: Sendable {
    private let pool: NIOThreadPool
    public let threads: Int
    /// Work running on a thread (`pinhole_render_pool_busy`, when the pool is named).
    private let busy = Atomic<Int>(0)
    private let busyGauge: Gauge?

    /// `name`: the pool's metrics (`pinhole_<name>_busy`, `pinhole_<name>_threads`); nil for none.
    public init(threads: Int, name: String? = nil) {
        self.threads = max(1, threads)
        pool = NIOThreadPool(numberOfThreads: self.threads)
        pool.start()
        busyGauge = name.map { Gauge(label: "pinhole_\($0)_busy") }
        if let name { Gauge(label: "pinhole_\(name)_threads").record(self.threads) }
    }

    public static var defaultThreads: Int { System.coreCount }

    /// Runs `work` on a render thread and returns its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard let busyGauge else { return try await pool.runIfActive(work) }
        return try await pool.runIfActive {
            busyGauge.record(self.busy.wrappingAdd(1, ordering: .relaxed).newValue)
            defer { busyGauge.record(self.busy.wrappingSubtract(1, ordering: .relaxed).newValue) }
            return try work()
        }
    }

    public func shutdown() async throws {
        try await pool.shutdownGracefully()
    }
}
