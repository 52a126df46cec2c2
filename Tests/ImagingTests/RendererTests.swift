import Foundation
import PinholeTestSupport
import Testing
import ThumborURL
import Vips
@testable import Imaging

/// Measured (2026-11-30): the HDR (linear float, Radiance) 2.1 and the PDF (the photo placed on a page)
/// 1.6 from the photo.
let HDR_TOLERANCE = 5.0
let PDF_TOLERANCE = 5.0

@Suite("Rendering corpus images on libvips")
struct RendererTests {
    init() throws { try VipsRuntime.start() }

    func render(_ name: String, _ path: String, settings: RenderSettings = RenderSettings()) throws -> Rendered {
        let bytes = try Corpus.bytes(name)
        let request = try ThumborPath.parse("/unsafe/\(path)/\(name)")
        return try bytes.withUnsafeBytes { buffer throws(RenderError) in try Renderer.render(buffer, request: request, settings: settings) }
    }

    func header(_ bytes: [UInt8]) throws -> ImageHeader {
        try bytes.withUnsafeBytes { try Image.header(of: $0) }
    }

    @Test("output has exactly Thumbor's size", arguments: [
        ("fit-in/300x300", 300, 188), ("300x200", 300, 200), ("300x200/smart", 300, 200), ("1x1", 1, 1),
        ("full-fit-in/300x300", 480, 300), ("-300x-300", 300, 300), ("600x0", 600, 375), ("0x37", 59, 37),
        ("100x100:900x700/200x200", 200, 200), ("fit-in/3000x3000", 2560, 1600),
    ])
    func exactSizes(path: String, width: Int, height: Int) throws {
        let rendered = try render("photo-kite-2560x1600.jpg", path)
        let h = try header(rendered.bytes)
        #expect(h.width == width && h.height == height)
        #expect(h.format == .jpeg)
    }

    @Test func flipsMirrorThePixels() throws {
        let plain = try render("photo-kite-2560x1600.jpg", "200x100")
        let flipped = try render("photo-kite-2560x1600.jpg", "-200x100")
        let flippedTwice = try Image.open(flipped.bytes).flip(horizontal: true).copyToMemory().encoded(.png(compression: 1))
        #expect(try PixelCompare.meanAbsoluteDifference(plain.bytes, flipped.bytes) > 5)
        #expect(try PixelCompare.meanAbsoluteDifference(plain.bytes, flippedTwice) < 2)
    }

    /// Every derived corpus file was made from photo-eveningglow: rendered the same way, each must look
    /// like it. A wrong rotation, colour conversion or alpha handling moves the difference far above these.
    @Test("derived formats look like their source photo", arguments: [
        ("exif-orientation6-640x400.jpg", 6.0), ("cmyk-640x400.jpg", 10.0), ("format-rgb16-1280x800.tif", 6.0),
        ("format-rgba-1280x800.png", 6.0), ("palette-640x400.png", 8.0), ("format-1280x800.webp", 6.0),
        ("format-1280x800.avif", 6.0), ("format-1280x800.jxl", 6.0), ("format-gray-1280x800.jpg", 30.0),
        ("vfx-1024x640.psd", 6.0), ("vfx-rgb10-1024x640.dpx", 8.0), ("vfx-rgba-half-1280x800.exr", 12.0),
        ("format-640x400.hdr", HDR_TOLERANCE), ("doc-1page-640x400.pdf", PDF_TOLERANCE),
    ])
    func derivedFormats(name: String, tolerance: Double) throws {
        let reference = try render("photo-eveningglow-2560x1600.jpg", "fit-in/320x320")
        let rendered = try render(name, "fit-in/320x320")
        let h = try header(rendered.bytes)
        #expect(h.width == 320 && h.height == 200, "\(name) rendered \(h.width)x\(h.height)")
        guard h.hasAlpha else {
            let difference = try PixelCompare.meanAbsoluteDifference(reference.bytes, rendered.bytes)
            #expect(difference < tolerance, "\(name): mean difference \(difference)")
            return
        }
        // Colour from the photo; alpha by value: the RGBA original the corpus' "rgba" files share, else
        // opaque (the PDF's page).
        let colour = try PixelCompare.channelDifferences(reference.bytes, rendered.bytes).colour
        #expect(colour < tolerance, "\(name): mean colour difference \(colour)")
        let alphaReference = name.contains("rgba") ? try render("format-rgba-1280x800.png", "fit-in/320x320") : reference
        let alpha = try PixelCompare.channelDifferences(alphaReference.bytes, rendered.bytes).alpha
        #expect(alpha < 2, "\(name): mean alpha difference \(alpha)")
    }

    /// The SVG is a drawing, not the photo: at 320x200 (scale 0.4) its parts are where and what its
    /// source says (a #e74c3c square at 80-200 × 60-180, a #1e3c72→#f7b733 diagonal gradient under a 60 %
    /// white circle at the centre).
    @Test func svgIsDrawnAtItsSizeWithItsColours() throws {
        let rendered = try render("vector-800x500.svg", "fit-in/320x320")
        let image = try Image.open(rendered.bytes, sequential: false).toSRGB(keepGray: false).copyToMemory()
        #expect(image.width == 320 && image.height == 200)
        let pixels = try image.rawPixels(), bands = image.bands
        func colour(_ x: Int, _ y: Int) -> [Int] { (0..<3).map { Int(pixels[(y * 320 + x) * bands + $0]) } }
        func near(_ a: [Int], _ b: [Int], _ tolerance: Int) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= tolerance } }
        #expect(near(colour(56, 48), [231, 76, 60], 4), "square: \(colour(56, 48))")
        #expect(near(colour(1, 1), [30, 60, 114], 8), "gradient start: \(colour(1, 1))")
        #expect(near(colour(318, 198), [247, 183, 51], 8), "gradient end: \(colour(318, 198))")
        // Centre: 60 % white over the gradient's midpoint ((30+247)/2, (60+183)/2, (114+51)/2).
        #expect(near(colour(160, 100), [208, 202, 186], 10), "circle: \(colour(160, 100))")
    }

    @Test func exifOrientationIsApplied() throws {
        let rendered = try render("exif-orientation6-640x400.jpg", "x")
        let h = try header(rendered.bytes)
        #expect(h.width == 640 && h.height == 400 && h.orientation == 1)
        var ignoring = RenderSettings()
        ignoring.respectOrientation = false
        let raw = try render("exif-orientation6-640x400.jpg", "x", settings: ignoring)
        let rh = try header(raw.bytes)
        #expect(rh.width == 400 && rh.height == 640)
    }

    @Test("bad files fail as client errors", arguments: Corpus.bad)
    func badFiles(name: String) throws {
        #expect(throws: RenderError.self) { try render(name, "fit-in/300x300") }
        do {
            _ = try render(name, "fit-in/300x300")
        } catch let error as RenderError {
            if case .processing = error { Issue.record("\(name) should be the source's fault, got \(error)") }
        }
    }

    @Test func concurrentRendersAreIndependent() async throws {
        let expected = try render("photo-path-2560x1600.jpg", "300x200").bytes
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 {
                group.addTask { try await Thread.runDetached { try self.render("photo-path-2560x1600.jpg", "300x200").bytes } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0 == expected })
    }
}

extension Thread {
    /// Runs blocking work on its own OS thread (as the service's render pool does).
    static func runDetached<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}
