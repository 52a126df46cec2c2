import Foundation
import PinholeTestSupport
import Testing
import Vips
@testable import Imaging

@Suite("Decode memory: estimate from the header, budget across render threads")
struct DecodeBudgetTests {
    init() throws { try VipsRuntime.start() }

    @Test func progressiveJPEGNeedsItsCoefficients() throws {
        // 5120×2880 progressive 4:4:4: 640×360 blocks × 3 components × 64 coefficients × 2 bytes.
        let beach = try Corpus.bytes("photo-beach-5120x2880.jpg")
        let beachBytes: Int = beach.withUnsafeBytes { DecodeMemory.estimate($0) }
        #expect(beachBytes == 640 * 360 * 3 * 128)
        // At 1/8 the DC-only decoder keeps one 2-byte value per block; subsampled files still need libjpeg.
        #expect(beach.withUnsafeBytes { DecodeMemory.estimate($0, scaleEighths: 1) } == 640 * 360 * 3 * 2)
        #expect(beach.withUnsafeBytes { DecodeMemory.estimate($0, scaleEighths: 2) } == 640 * 360 * 3 * 128)
        // 2560×1600 progressive 4:2:0: Y 320×200 blocks, Cb and Cr 160×100 each.
        let subsampled = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), sequential: false)
            .encoded(.jpeg(quality: 80, progressive: true))
        let subsampledBytes: Int = subsampled.withUnsafeBytes { DecodeMemory.estimate($0) }
        #expect(subsampledBytes == (320 * 200 + 2 * 160 * 100) * 128)
        #expect(subsampled.withUnsafeBytes { DecodeMemory.estimate($0, scaleEighths: 1) } == subsampledBytes)
        // Baseline JPEG, PNG, garbage: they stream.
        for name in ["photo-kite-2560x1600.jpg", "format-rgba-1280x800.png", "bad/garbage.png", "bad/truncated.jpg"] {
            let bytes: Int = try Corpus.bytes(name).withUnsafeBytes { DecodeMemory.estimate($0) }
            #expect(bytes == 0, "\(name)")
        }
    }

    @Test func budgetSerialisesWhatDoesNotFitAndAlwaysLetsOneThrough() async throws {
        let budget = DecodeBudget(limitBytes: 100)
        #expect(budget.acquire(0) == 0)                        // streaming sources never wait
        let first = budget.acquire(150)                         // larger than the budget: alone, it runs
        #expect(budget.inUse == 150)
        let order = OrderLog()
        let finished = DispatchSemaphore(value: 0)
        let waiter = Thread {
            let held = budget.acquire(60)
            order.append("second decodes")
            budget.release(held)
            finished.signal()
        }
        waiter.start()
        // The second decode is queued (an event the budget reports), and stays queued until the first releases.
        #expect(await eventually { budget.waiting == 1 })
        #expect(order.entries.isEmpty)
        order.append("first releases")
        budget.release(first)
        #expect(finished.wait(timeout: .now() + 60) == .success)
        #expect(order.entries == ["first releases", "second decodes"])
        #expect(budget.waiting == 0)
        #expect(budget.inUse == 0)
        // Two that fit together run together.
        let a = budget.acquire(40), b = budget.acquire(50)
        #expect(budget.inUse == 90)
        budget.release(a); budget.release(b)
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ entry: String) { lock.withLock { list.append(entry) } }
    var entries: [String] { lock.withLock { list } }
}
