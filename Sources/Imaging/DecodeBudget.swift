import Foundation

/// Caps the memory that concurrent decodes hold at once (see `DecodeMemory`). A render thread whose
/// source needs more than what is left waits, in arrival order, until earlier decodes finish; one decode
/// is always let through however large, so a single huge source still renders. Sources that stream need
/// nothing and never wait. Held only while pixels are decoded, not while they are resized and encoded,
/// so a waiting thread's wait is short. Without it, two 14.7 MP progressive JPEGs decoding together hold
/// ~180 MB. Blocking: called on render threads only.
public final class DecodeBudget: @unchecked Sendable {   // state guarded by `condition`
    public let limitBytes: Int
    private let condition = NSCondition()
    private var used = 0
    private var running = 0
    private var nextTicket = 0
    private var serving = 0

    public init(limitBytes: Int) { self.limitBytes = limitBytes }

    /// Blocks until `bytes` fit; returns what `release` must be given.
    public func acquire(_ bytes: Int) -> Int {
        guard bytes > 0 else { return 0 }
        condition.lock()
        defer { condition.unlock() }
        let ticket = nextTicket
        nextTicket += 1
        while ticket != serving || (running > 0 && used + bytes > limitBytes) { condition.wait() }
        serving += 1
        used += bytes
        running += 1
        condition.broadcast()   // the next ticket may fit too
        return bytes
    }

    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        condition.lock()
        used -= bytes
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Decodes waiting for room (what tests synchronise on instead of sleeping).
    public var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return nextTicket - serving
    }

    /// Bytes currently held by running decodes.
    public var inUse: Int {
        condition.lock()
        defer { condition.unlock() }
        return used
    }
}
