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
        // A photo pasted onto a larger white canvas: the box is exactly the photo.
        let photo = try Image.open(try Corpus.bytes("photo-kite-2560x1600.jpg"), options: "shrink=8")
        let canvas = try photo.embed(x: 0, y: 0, width: photo.width, height: photo.height)
        let box = try canvas.copyToMemory().trimBox(bottomRightReference: false, tolerance: 0)
        #expect(box != nil)
    }
}
