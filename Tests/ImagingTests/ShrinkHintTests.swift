import Testing
import ThumborURL
import Vips
@testable import Imaging

@Suite("Shrink hints: how small a decode worker may hand pixels back, and plans on pre-shrunk pixels")
struct ShrinkHintTests {
    func hint(_ path: String) throws -> ShrinkHint? { ShrinkHint(request: try ThumborPath.parse("/unsafe/\(path)/x.exr")) }

    @Test func hintsFromRequests() throws {
        #expect(try hint("fit-in/256x256") == ShrinkHint(width: 256, height: 256, covering: false))
        #expect(try hint("300x-200") == ShrinkHint(width: 300, height: 200, covering: true))
        #expect(try hint("full-fit-in/300x200") == ShrinkHint(width: 300, height: 200, covering: true))
        #expect(try hint("0x120") == ShrinkHint(width: 0, height: 120, covering: true))
        // Geometry that needs every source pixel: none.
        #expect(try hint("10x10:500x500/200x200") == nil)
        #expect(try hint("trim/200x200") == nil)
        #expect(try hint("200x200/smart") == nil)
        #expect(try hint("orig x200".replacingOccurrences(of: " ", with: "")) == nil)
        #expect(try hint("0x0") == nil)
        for hint in [ShrinkHint(width: 256, height: 0, covering: false), ShrinkHint(width: 3, height: 4, covering: true)] {
            #expect(ShrinkHint(option: hint.option) == hint)
        }
    }

    @Test func factorsKeepTwiceTheTargetEitherWayRound() {
        let fit = ShrinkHint(width: 256, height: 256, covering: false)
        // 1280x800 into 256x256: 0.2 of the source either way round, twice that kept: 1/0.4 → 2.
        #expect(fit.factor(sourceWidth: 1280, sourceHeight: 800) == 2)
        #expect(ShrinkHint(width: 200, height: 200, covering: false).factor(sourceWidth: 1280, sourceHeight: 800) == 3)
        // Filling 200x100 from 4000x1000 needs 0.1 of the width; turned, 0.2 of the height: the larger wins.
        #expect(ShrinkHint(width: 200, height: 100, covering: true).factor(sourceWidth: 4000, sourceHeight: 1000) == 2)
        #expect(ShrinkHint(width: 640, height: 400, covering: false).factor(sourceWidth: 1280, sourceHeight: 800) == 1)
        #expect(ShrinkHint(width: 0, height: 50, covering: true).factor(sourceWidth: 10_000, sourceHeight: 10_000) == 100)
        #expect(fit.factor(sourceWidth: 0, sourceHeight: 10) == 1)
    }

    @Test func aPlanOnPreShrunkPixelsKeepsTheSourceGeometry() throws {
        // A 1280x800 source handed back at 427x267 (shrunk by 3): crop and resize in those pixels,
        // /meta's source size the source's own.
        let header = ImageHeader(width: 1280, height: 800, bands: 4, pages: 1, hasAlpha: true, orientation: 1, loader: "openexrload")
        let request = try ThumborPath.parse("/unsafe/200x200/x.exr")
        let plan = try RenderPlan.make(request: request, header: header, settings: RenderSettings(), loadedSize: PixelSize(width: 427, height: 267))
        #expect(plan.logicalSource == PixelSize(width: 1280, height: 800))
        #expect(plan.steps.contains(.crop(PixelRect(left: 80, top: 0, right: 347, bottom: 267))))
        #expect(plan.steps.contains(.resize(PixelSize(width: 200, height: 200))))
    }
}
