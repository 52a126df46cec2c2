import Foundation
import PinholeTestSupport
import Testing
@testable import Vips

@Suite("Vips: headers, operations, encoders, errors")
struct ImageTests {
    init() throws { try VipsRuntime.start() }

    /// Every readable corpus file's header matches MANIFEST.tsv (loader, width, height, bands), read
    /// without decoding pixels.
    @Test func headersMatchTheManifest() throws {
        let manifest = try String(contentsOf: Corpus.url("MANIFEST.tsv"), encoding: .utf8)
        var checked = 0
        for line in manifest.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 6, !fields[2].isEmpty else { continue }
            let bytes = try Corpus.bytes(fields[0])
            let header = try bytes.withUnsafeBytes { try Image.header(of: $0) }
            #expect(header.width == Int(fields[3]) && header.height == Int(fields[4]), "\(fields[0])")
            #expect(header.bands == Int(fields[5]), "\(fields[0])")
            #expect(header.loader.hasPrefix(fields[2]), "\(fields[0]): \(header.loader)")
            checked += 1
        }
        #expect(checked >= 25)
    }

    /// Flattening takes one background value per colour band, and leaves an image without alpha as it is
    /// (libvips would take its last colour band for alpha: a 500 from `background_color` before JPEG).
    @Test func flattenMatchesTheBands() throws {
        let rgb = try Image.open(try Corpus.bytes("format-rgba-1280x800.png"), options: "", sequential: false)
            .resize(horizontal: 0.05, vertical: 0.05)
        #expect(rgb.bands == 4)
        let flat = try rgb.flatten(red: 0, green: 0, blue: 255)
        #expect(flat.bands == 3)
        let again = try flat.flatten(red: 255, green: 0, blue: 0)
        let same = try again.rawPixels() == flat.rawPixels()
        #expect(again.bands == 3 && same)
        let greyAlpha = try rgb.grayscale()
        #expect(greyAlpha.bands == 2)
        #expect(try greyAlpha.flatten(red: 10, green: 20, blue: 30).bands == 1)
    }

    @Test func cropResizeFlipEncode() throws {
        let image = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), options: "shrink=4", sequential: false)
        #expect(image.width == 640 && image.height == 400)
        let small = try image.crop(left: 10, top: 20, width: 300, height: 200).resize(horizontal: 0.5, vertical: 0.25)
        #expect(small.width == 150 && small.height == 50)
        let png = try small.flip(horizontal: true).encoded(.png(compression: 6))
        let back = try png.withUnsafeBytes { try Image.header(of: $0) }
        #expect(back.width == 150 && back.height == 50 && back.format == .png)
        for options in [SaveOptions.jpeg(quality: 80, progressive: true), .webp(quality: 80, lossless: false), .gif, .avif(quality: 50)] {
            let bytes = try small.encoded(options)
            let header = try bytes.withUnsafeBytes { try Image.header(of: $0) }
            #expect(header.width == 150 && header.height == 50, "\(options)")
        }
    }

    /// Thumbor's resampling (Pillow's LANCZOS; exactness against Thumbor itself is tested in Python):
    /// exact sizes either way, a flat image stays exactly flat, a mirrored input gives the mirrored
    /// output, and the result is close to libvips' own Lanczos3.
    @Test func lanczosResampling() throws {
        let photo = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), options: "shrink=4", sequential: false)
        let ours = try photo.lanczosResampled(width: 512, height: 320)
        #expect(ours.width == 512 && ours.height == 320 && ours.bands == 3 && ours.is8Bit)
        let theirs = try photo.resize(horizontal: 0.8, vertical: 0.8)
        let a = try ours.rawPixels(), b = try theirs.rawPixels()
        #expect(a.count == b.count)
        let meanDifference = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(a.count)
        #expect(meanDifference < 1.5, "mean difference from libvips' lanczos3: \(meanDifference)")

        let up = try photo.crop(left: 0, top: 0, width: 64, height: 40).lanczosResampled(width: 100, height: 63)
        #expect(up.width == 100 && up.height == 63)

        let flat = try photo.crop(left: 0, top: 0, width: 1, height: 1).resize(horizontal: 90, vertical: 70).copyToMemory()
        let flatPixels = try flat.rawPixels()
        let flatResampled = try flat.lanczosResampled(width: 37, height: 23).rawPixels()
        #expect(flatResampled.count == 37 * 23 * 3)
        #expect(flatResampled.enumerated().allSatisfy { $0.element == flatPixels[$0.offset % 3] })

        let mirroredFirst = try photo.flip(horizontal: true).lanczosResampled(width: 300, height: 200).rawPixels()
        let mirroredAfter = try photo.lanczosResampled(width: 300, height: 200).flip(horizontal: true).rawPixels()
        #expect(mirroredFirst == mirroredAfter)

        let sixteenBit = try Image.open(try Corpus.bytes("format-rgb16-1280x800.tif"), sequential: false)
        #expect(sixteenBit.interpretationIs16Bit)
        #expect(throws: VipsError.self) { try sixteenBit.lanczosResampled(width: 10, height: 10) }
    }

    /// Progressive JPEG output (TurboJPEG for 8-bit sRGB and grey, libvips otherwise): progressive frames
    /// (SOF2), libvips' chroma rule (4:2:0 below quality 90, 4:4:4 from 90), grey stays one component,
    /// and the pixels survive the round trip.
    @Test func progressiveJPEGEncoding() throws {
        let photo = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), options: "shrink=8", sequential: false)
        func frame(_ jpeg: [UInt8]) -> (progressive: Bool, components: Int, lumaSampling: UInt8)? {
            var i = 2
            while i + 9 < jpeg.count {
                guard jpeg[i] == 0xFF else { return nil }
                let marker = jpeg[i + 1], length = Int(jpeg[i + 2]) << 8 | Int(jpeg[i + 3])
                if marker == 0xC0 || marker == 0xC2 {
                    return (marker == 0xC2, Int(jpeg[i + 9]), jpeg[i + 11])
                }
                i += 2 + length
            }
            return nil
        }
        let q80 = try photo.encoded(.jpeg(quality: 80, progressive: true))
        let q95 = try photo.encoded(.jpeg(quality: 95, progressive: true))
        let grey = try Image.open(try Corpus.bytes("format-gray-1280x800.jpg"), options: "shrink=8", sequential: false)
            .encoded(.jpeg(quality: 80, progressive: true))
        let baseline = try photo.encoded(.jpeg(quality: 80, progressive: false))
        #expect(frame(q80).map { $0.progressive && $0.components == 3 && $0.lumaSampling == 0x22 } == true)
        #expect(frame(q95).map { $0.progressive && $0.components == 3 && $0.lumaSampling == 0x11 } == true)
        #expect(frame(grey).map { $0.progressive && $0.components == 1 } == true)
        #expect(frame(baseline).map { !$0.progressive } == true)
        #expect(q95.count > q80.count)
        let back = try Image.open(q80, sequential: false)
        let a = try photo.rawPixels(), b = try back.rawPixels()
        let meanDifference = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(a.count)
        #expect(back.width == photo.width && meanDifference < 3, "round trip differs by \(meanDifference)")
    }

    /// A progressive JPEG at 1/8 is decoded from its DC scans alone; the pixels must equal libvips' full
    /// decode at shrink=8 (libjpeg's 1/8 IDCT reads only DC). Both script styles: DC complete in the
    /// first scans (the corpus photo, mozjpeg-like) and DC refined in a later scan (libjpeg's default).
    @Test func progressiveDCDecodeEqualsFullDecode() throws {
        let mozjpegStyle = try Corpus.bytes("photo-beach-5120x2880.jpg")
        let kite = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), sequential: false)
        let libjpegStyle = try kite.encoded(.jpeg(quality: 90, progressive: true))   // 4:4:4
        // 4:2:0 (libvips subsamples below quality 90): chroma goes through a 2×2 IDCT, so the full decode is used.
        let subsampled = try kite.encoded(.jpeg(quality: 80, progressive: true))
        for bytes in [mozjpegStyle, libjpegStyle, subsampled] {
            let fast = try bytes.withUnsafeBytes { try Image.decodeJPEG($0, eighths: 1, fastDCT: false) }
            let full = try Image.open(bytes, options: "shrink=8", sequential: false)
            #expect(fast.width == full.width && fast.height == full.height)
            #expect(try fast.copyToMemory().rawPixels() == (try full.copyToMemory().rawPixels()))
        }
        // A progressive file cut off before its DC is complete is an error, as a full decode's is.
        let cut = Array(libjpegStyle.prefix(400))
        #expect(throws: VipsError.self) { try cut.withUnsafeBytes { try Image.decodeJPEG($0, eighths: 1, fastDCT: false) } }
    }

    @Test func orientationAndRotation() throws {
        let image = try Image.open(try Corpus.bytes("exif-orientation6-640x400.jpg"), sequential: false)
        #expect(image.orientation == 6 && image.width == 400)
        let upright = try image.autoRotate()
        #expect(upright.width == 640 && upright.height == 400 && upright.orientation == 1)
        #expect(try image.rotate(quarterTurns: 1).width == 640)
    }

    @Test func errorsCarryTheOperation() throws {
        #expect(Image.loaderName(for: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        let garbage = Array("this is not an image".utf8)
        #expect(garbage.withUnsafeBytes { Image.loaderName(for: $0) } == nil)
        do {
            _ = try Image.open(garbage)
            Issue.record("garbage opened")
        } catch let error as VipsError {
            #expect(error.operation == "load" && !error.message.isEmpty)
        }
        let truncated = try Corpus.bytes("bad/truncated.jpg")
        #expect(throws: VipsError.self) { try Image.open(truncated, failOn: .truncated).copyToMemory() }
    }

    @Test func trimBoxFindsTheContent() throws {
        // A photo pasted at (37, 23) onto a larger white canvas: the box is exactly the photo (inclusive
        // corners), from either reference corner.
        let photo = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), options: "shrink=8")
        #expect(photo.width == 320 && photo.height == 200)
        let canvas = try photo.embed(x: 37, y: 23, width: photo.width + 80, height: photo.height + 50, background: [255, 255, 255])
            .copyToMemory()
        for bottomRight in [false, true] {
            let box = try canvas.trimBox(bottomRightReference: bottomRight, tolerance: 0)
            #expect(box?.left == 37 && box?.top == 23 && box?.right == 37 + 319 && box?.bottom == 23 + 199, "\(String(describing: box))")
        }
        // A uniform image has no box.
        let white = try canvas.crop(left: 0, top: 0, width: 30, height: 20).copyToMemory()
        let none = try white.trimBox(bottomRightReference: false, tolerance: 0)
        #expect(none == nil || none!.right < none!.left || none!.bottom < none!.top)
    }
}
