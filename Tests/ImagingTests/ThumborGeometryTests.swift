import Testing
import ThumborURL
import Vips
@testable import Imaging

/// The worked examples of spec §4, each checked against Thumbor 7.8.0's own numbers.
@Suite("Thumbor transform math (spec §4)")
struct ThumborGeometryTests {
    func geometry(_ path: String, _ width: Int, _ height: Int, focal: [FocalPoint] = []) throws -> ThumborGeometry {
        try ThumborGeometry.compute(source: PixelSize(width: width, height: height),
                                    request: try ThumborPath.parse("/unsafe/" + path), focalPoints: focal)
    }

    @Test("auto crop (spec §4.3)", arguments: [
        ("300x200/a.jpg", 1000, 750, PixelRect(left: 0, top: 42, right: 1000, bottom: 709), PixelSize(width: 300, height: 200)),
        ("300x200/left/a.jpg", 1000, 750, PixelRect(left: 0, top: 42, right: 1000, bottom: 709), PixelSize(width: 300, height: 200)),
        ("9x0/a.jpg", 1000, 750, PixelRect(left: 18, top: 0, right: 983, bottom: 750), PixelSize(width: 9, height: 7)),
        ("150x150/right/a.jpg", 1024, 683, PixelRect(left: 341, top: 0, right: 1024, bottom: 683), PixelSize(width: 150, height: 150)),
    ])
    func autoCrop(path: String, width: Int, height: Int, crop: PixelRect, output: PixelSize) throws {
        let g = try geometry(path, width, height)
        #expect(g.operations.first == .crop(crop))
        #expect(g.outputSize == output)
    }

    @Test("proportional sizes resize without cropping", arguments: [
        ("500x0/a.jpg", 1024, 683, PixelSize(width: 500, height: 333)),
        ("2000x0/a.jpg", 1024, 683, PixelSize(width: 2000, height: 1334)),
        ("6x0/a.jpg", 800, 600, PixelSize(width: 6, height: 4)),
        ("300x300/a.jpg", 100, 50, PixelSize(width: 300, height: 300)),
        ("x/a.jpg", 640, 400, PixelSize(width: 640, height: 400)),
        ("origx200/a.jpg", 640, 400, PixelSize(width: 640, height: 200)),
    ])
    func proportional(path: String, width: Int, height: Int, output: PixelSize) throws {
        #expect(try geometry(path, width, height).outputSize == output)
    }

    @Test func focalPointMovesTheCrop() throws {
        let focal = FocalPoint.fromSquare(x: 800, y: 600, width: 100, height: 100, origin: .explicit)
        let g = try geometry("300x100/a.jpg", 1000, 750, focal: [focal])
        #expect(g.operations.first == .crop(PixelRect(left: 0, top: 417, right: 1000, bottom: 750)))
    }

    @Test("fit-in family (spec §4.4)", arguments: [
        ("fit-in/500x500/a.jpg", 1024, 683, PixelSize(width: 500, height: 333)),
        ("full-fit-in/500x500/a.jpg", 1024, 683, PixelSize(width: 750, height: 500)),
        ("adaptive-fit-in/300x500/a.jpg", 1024, 683, PixelSize(width: 450, height: 300)),
        ("fit-in/2000x2000/a.jpg", 1024, 683, PixelSize(width: 1024, height: 683)),
        ("fit-in/7x7/a.jpg", 1000, 750, PixelSize(width: 7, height: 5)),
        ("full-fit-in/1000x1000/a.jpg", 800, 600, PixelSize(width: 1333, height: 1000)),
        ("fit-in/300x0/a.jpg", 2560, 1600, PixelSize(width: 300, height: 188)),
        ("fit-in/10x10/a.png", 768, 576, PixelSize(width: 10, height: 8)),
    ])
    func fitIn(path: String, width: Int, height: Int, output: PixelSize) throws {
        #expect(try geometry(path, width, height).outputSize == output)
    }

    @Test func manualCropThenAutoCrop() throws {
        let g = try geometry("100x100:600x500/200x100/a.jpg", 1000, 750)
        #expect(g.operations == [
            .crop(PixelRect(left: 100, top: 100, right: 600, bottom: 500)),
            .crop(PixelRect(left: 0, top: 75, right: 500, bottom: 325)),
            .resize(width: .float(200), height: .float(100)),
        ])
    }

    @Test func manualCropIsClampedOrIgnored() throws {
        #expect(try geometry("900x700:5000x5000/a.jpg", 1000, 750).operations == [.crop(PixelRect(left: 900, top: 700, right: 1000, bottom: 750))])
        #expect(try geometry("500x500:100x100/a.jpg", 1000, 750).operations == [])
    }

    @Test func trimComesFirstAndShiftsTheManualCrop() throws {
        let trim = PixelRect(left: 37, top: 51, right: 437, bottom: 301)
        let g = try ThumborGeometry.compute(source: PixelSize(width: 640, height: 400),
                                            request: try ThumborPath.parse("/unsafe/trim/47x61:237x161/a.png"), trim: trim)
        #expect(g.operations == [.crop(trim), .crop(PixelRect(left: 10, top: 10, right: 200, bottom: 110))])
        #expect(g.outputSize == PixelSize(width: 190, height: 100))
    }

    @Test func flipsComeLastInOrder() throws {
        let g = try geometry("-300x-200/a.jpg", 1000, 750)
        #expect(g.operations.suffix(2) == [.flipHorizontally, .flipVertically])
        #expect(try geometry("fit-in/-100x100/a.jpg", 1000, 750).operations.last == .flipHorizontally)
    }

    @Test func origWithProportionalSideIsRefused() {
        for path in ["0xorig/a.jpg", "origx0/a.jpg", "origx/a.jpg"] {
            #expect(throws: ThumborGeometry.Failure.origWithProportionalSide) { try geometry(path, 640, 400) }
        }
    }

    @Test func debugDoesNoTransform() throws {
        let g = try geometry("debug/300x200/a.jpg", 1000, 750)
        #expect(g.operations.isEmpty && g.outputSize == PixelSize(width: 1000, height: 750))
    }

    @Test func pythonRounding() {
        #expect(PythonMath.round(4.5) == 4 && PythonMath.round(5.5) == 6 && PythonMath.round(41.5) == 42)
        #expect(PythonMath.round2(1.005) == 1.0)       // 1.005 is 1.00499999… in binary
        #expect(PythonMath.round2(1.015) == 1.01)      // 1.01499999…
        #expect(PythonMath.round2(2.675) == 2.67)
        #expect(PythonMath.round2(0.125) == 0.12)      // exact tie: half to even
        #expect(PythonMath.round2(0.375) == 0.38)
        #expect(PythonMath.round2(1.6) == 1.6)
    }
}

@Suite("Render plan")
struct RenderPlanTests {
    func header(_ w: Int, _ h: Int, orientation: Int = 1, loader: String = "jpegload_buffer") -> ImageHeader {
        ImageHeader(width: w, height: h, bands: 3, pages: 1, hasAlpha: false, orientation: orientation, loader: loader)
    }

    /// Thumbor negotiates formats only for still images: an animated GIF stays a GIF under AUTO_WEBP/AVIF
    /// (and the answer does not vary with Accept), unless `animated_webp` lets WebP take its place.
    @Test func animatedGIFsKeepTheirFormatUnderNegotiation() throws {
        let request = try ThumborPath.parse("/unsafe/fit-in/100x100/a.gif")
        let gif = ImageHeader(width: 320, height: 200, bands: 4, pages: 3, hasAlpha: true, orientation: 1, loader: "gifload_buffer")
        var settings = RenderSettings()
        for negotiated in [ImageFormat.webp, .avif] {
            let plan = try RenderPlan.make(request: request, header: gif, settings: settings, outputFormat: negotiated)
            #expect(plan.outputFormat == .gif && plan.animationFrames == 3 && !plan.formatFollowsAccept)
        }
        var still = gif
        still.pages = 1
        let stillPlan = try RenderPlan.make(request: request, header: still, settings: settings, outputFormat: .webp)
        #expect(stillPlan.outputFormat == .webp && stillPlan.formatFollowsAccept)
        settings.animatedWebP = true
        let webp = try RenderPlan.make(request: request, header: gif, settings: settings, outputFormat: .webp)
        #expect(webp.outputFormat == .webp && webp.animationFrames == 3 && webp.formatFollowsAccept)
        let avif = try RenderPlan.make(request: request, header: gif, settings: settings, outputFormat: .avif)
        #expect(avif.outputFormat == .gif)
    }

    @Test func normalizeExamples() {
        var settings = RenderSettings()
        settings.maxWidth = 400
        settings.maxHeight = 300
        #expect(RenderPlan.normalizedSize(PixelSize(width: 800, height: 600), settings: settings) == PixelSize(width: 400, height: 300))
        #expect(RenderPlan.normalizedSize(PixelSize(width: 400, height: 300), settings: settings) == PixelSize(width: 400, height: 300))
        #expect(RenderPlan.normalizedSize(PixelSize(width: 600, height: 800), settings: settings) == PixelSize(width: 225, height: 300))
        #expect(RenderPlan.normalizedSize(PixelSize(width: 900, height: 600), settings: settings) == PixelSize(width: 400, height: 267))
    }

    @Test func shrinkOnLoadCoversTheTarget() throws {
        let request = try ThumborPath.parse("/unsafe/fit-in/300x300/a.jpg")
        var libvips = RenderSettings()
        libvips.turboJPEG = false
        let plan = try RenderPlan.make(request: request, header: header(2560, 1600), settings: libvips)
        #expect(plan.steps.first == .load(shrink: 8))   // 320x200 still covers 300x188
        libvips.jpegShrinkReserve = 2
        let plan2 = try RenderPlan.make(request: request, header: header(2560, 1600), settings: libvips)
        #expect(plan2.steps.first == .load(shrink: 4))
        // Pillow's draft, by default: 2560 // 512 = 5 → 1/4 (640x400); 2560 // 437 = 5, 1600 // 700 = 2 → 1/2;
        // 2560 // 1000 = 2 → 1/2; 2559 // 1280 = 1 → full scale.
        func firstStep(_ path: String, _ width: Int, _ height: Int, _ settings: RenderSettings = RenderSettings()) throws -> RenderStep? {
            try RenderPlan.make(request: try ThumborPath.parse(path), header: header(width, height), settings: settings).steps.first
        }
        #expect(try firstStep("/unsafe/fit-in/512x512/a.jpg", 2560, 1600) == .decodeJPEG(eighths: 2, fastDCT: false))
        #expect(try firstStep("/unsafe/fit-in/700x700/a.jpg", 2560, 1600) == .decodeJPEG(eighths: 4, fastDCT: false))
        #expect(try firstStep("/unsafe/fit-in/1000x1000/a.jpg", 2560, 1600) == .decodeJPEG(eighths: 4, fastDCT: false))
        #expect(try firstStep("/unsafe/fit-in/1280x1280/a.jpg", 2559, 1600) == .decodeJPEG(eighths: 8, fastDCT: false))
        #expect(try firstStep("/unsafe/fit-in/300x300/a.jpg", 5120, 2880) == .decodeJPEG(eighths: 1, fastDCT: false))
        // Without draft scales, libjpeg-turbo's eighths: 3/8 of 2560 (960) is the smallest that covers 700.
        var eighths = RenderSettings()
        eighths.jpegDraftScales = false
        eighths.jpegFastDCT = true
        #expect(try firstStep("/unsafe/fit-in/512x512/a.jpg", 2560, 1600, eighths) == .decodeJPEG(eighths: 2, fastDCT: true))
        #expect(try firstStep("/unsafe/fit-in/700x700/a.jpg", 2560, 1600, eighths) == .decodeJPEG(eighths: 3, fastDCT: true))
        // A profile that is not sRGB needs libvips (and lcms); so does CMYK.
        var adobe = header(2560, 1600)
        adobe.profile = .other
        #expect(try RenderPlan.make(request: request, header: adobe, settings: RenderSettings()).steps.first == .load(shrink: 8))
        let png = try RenderPlan.make(request: request, header: header(2560, 1600, loader: "pngload_buffer"), settings: RenderSettings())
        #expect(png.steps.first == .load(shrink: 1))
        #expect(png.outputFormat == .png)
    }

    @Test func orientedSourceIsCroppedInStoredCoordinates() throws {
        // Stored 400x640 with EXIF 6 (rotate 90° clockwise to display) displays as 640x400. The displayed
        // left 400x400 square is the stored bottom square; decoded at 1/2 it is (0,120)-(200,320), which
        // is already the 200x200 target, so no resize follows.
        let request = try ThumborPath.parse("/unsafe/200x200/left/a.jpg")
        var libvips = RenderSettings()
        libvips.turboJPEG = false
        let plan = try RenderPlan.make(request: request, header: header(400, 640, orientation: 6), settings: libvips)
        #expect(plan.logicalSource == PixelSize(width: 640, height: 400))
        #expect(plan.steps == [.load(shrink: 2), .crop(PixelRect(left: 0, top: 120, right: 200, bottom: 320)),
                               .toSRGB(keepGray: false), .autoOrient(6), .encode(.jpeg(quality: 80, progressive: true))])
        // A non-square target is resized in stored axes: 300x100 displayed is 100x300 stored.
        let wide = try RenderPlan.make(request: try ThumborPath.parse("/unsafe/300x100/a.jpg"), header: header(400, 640, orientation: 6), settings: RenderSettings())
        #expect(wide.steps.contains(.resize(PixelSize(width: 100, height: 300))))
    }

    @Test func pixelLimitsRefuseBeforeDecoding() throws {
        let request = try ThumborPath.parse("/unsafe/300x200/a.jpg")
        #expect(throws: PlanError.sourceTooLarge(width: 30000, height: 30000, limit: 75_000_000)) {
            try RenderPlan.make(request: request, header: header(30000, 30000), settings: RenderSettings())
        }
        let huge = try ThumborPath.parse("/unsafe/99999999999x1/a.jpg")
        #expect(throws: PlanError.self) { try RenderPlan.make(request: huge, header: header(640, 400), settings: RenderSettings()) }
    }
}
