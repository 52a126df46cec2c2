import Vips

/// Formats whose decoders are not hardened for hostile input are decoded in worker processes
/// (`pinhole decode-worker`), never in the server: ImageMagick (PSD, PSB, DPX), poppler (PDF), librsvg
/// (SVG), OpenEXR, and FFmpeg for video (a subprocess of the worker). A crash there (ImageMagick aborts on a CMYK PSD with alpha) or a hang kills one
/// worker, not the service. The fast native loaders with a fuzzing record (JPEG, PNG, WebP, GIF, TIFF,
/// HEIF/AVIF, JPEG XL, Radiance HDR) stay in-process.
public enum IsolatedDecoding {
    /// The libvips loader classes used only inside decode workers.
    public static let workerLoaderClasses = ["VipsForeignLoadMagick", "VipsForeignLoadPdf", "VipsForeignLoadSvg",
                                             "VipsForeignLoadOpenexr"]

    /// The format of bytes a worker must decode, from their magic numbers alone (no library looks at them
    /// in the server): PSD/PSB `8BPS`, DPX `SDPX`/`XPDS`, PDF `%PDF`, SVG (`<svg` within the first 2 KB),
    /// OpenEXR `76 2f 31 01`. Nil for everything else.
    public static func format(of bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if starts(bytes, with: "8BPS") || starts(bytes, with: "SDPX") || starts(bytes, with: "XPDS") { return .magick }
        if starts(bytes, with: "%PDF") { return .pdf }
        if starts(bytes, with: [0x76, 0x2F, 0x31, 0x01]) { return .exr }
        if isVideo(bytes) { return .video }
        let head = bytes.prefix(2048)
        if let text = String(bytes: head, encoding: .utf8) ?? String(bytes: head, encoding: .isoLatin1),
           text.contains("<svg") { return .svg }
        return nil
    }

    static func starts(_ bytes: UnsafeRawBufferPointer, with magic: [UInt8]) -> Bool {
        bytes.count >= magic.count && zip(bytes, magic).allSatisfy { $0 == $1 }
    }

    static func starts(_ bytes: UnsafeRawBufferPointer, with magic: String) -> Bool { starts(bytes, with: Array(magic.utf8)) }

    /// MP4/MOV (an ISO-BMFF `ftyp` whose brand is not a still-image one — AVIF and HEIF are images —, or
    /// an old QuickTime file opening with `moov`, `mdat`, `wide`, `free` or `skip`), Matroska/WebM, and MXF
    /// (a SMPTE partition pack key: Avid's DNxHD masters).
    static func isVideo(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 12 else { return false }
        if starts(bytes, with: [0x1A, 0x45, 0xDF, 0xA3]) || starts(bytes, with: [0x06, 0x0E, 0x2B, 0x34, 0x02, 0x05, 0x01, 0x01]) { return true }
        let box = String(decoding: bytes[4..<8], as: UTF8.self)
        if box == "ftyp" {
            let brand = String(decoding: bytes[8..<12], as: UTF8.self)
            return !["avif", "avis", "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"].contains(brand)
        }
        return ["moov", "mdat", "wide", "free", "skip"].contains(box)
    }

    /// What a worker answers: the decoded image (uncompressed TIFF: depth, float, alpha and ICC profile
    /// kept) and the loader that decoded it (it decides the output format and the colour path).
    public struct Decoded: Sendable {
        public var tiff: [UInt8]
        public var loader: String
        /// A video's duration, frame rate and frame count (for `/meta`).
        public var video: VideoFacts?
        /// The source's own size when the worker shrank it (`ShrinkHint`): the TIFF is smaller.
        public var sourceSize: PixelSize?

        public init(tiff: [UInt8], loader: String, video: VideoFacts? = nil, sourceSize: PixelSize? = nil) {
            self.tiff = tiff
            self.loader = loader
            self.video = video
            self.sourceSize = sourceSize
        }

        /// The worker's answer text: the loader, then a line of video facts and one of the source's size.
        public var answerText: String {
            ([loader] + (video.map { [$0.line] } ?? []) + (sourceSize.map { ["source=\($0.width)x\($0.height)"] } ?? [])).joined(separator: "\n")
        }

        public init(tiff: [UInt8], answerText: String) {
            let lines = answerText.split(separator: "\n")
            let size = lines.first { $0.hasPrefix("source=") }.map { $0.dropFirst("source=".count).split(separator: "x").compactMap { Int($0) } }
            self.init(tiff: tiff, loader: lines.first.map(String.init) ?? "", video: lines.dropFirst().lazy.compactMap(VideoFacts.init(line:)).first,
                      sourceSize: size.flatMap { $0.count == 2 ? PixelSize(width: $0[0], height: $0[1]) : nil })
        }
    }

    /// Worker side: the frame of the video in the file at `path` (a whole file, or a sparse excerpt of a
    /// large one: `VideoExcerpt`), decoded like any image, with the video's facts.
    /// `facts`: also the video's duration, frame rate and frame count (`/meta`; another FFmpeg run).
    public static func decodeVideo(atPath path: String, maxPixels: Int, timeout: Double, still: String?,
                                   facts: Bool) throws(RenderError) -> Decoded {
        let tiff = try VideoFrame.frame(atPath: path, at: still, timeout: timeout)
        let header = try tiff.withUnsafeBytes { bytes in Result { () throws(RenderError) in try Renderer.header(of: bytes) } }.get()
        if header.width * header.height > maxPixels {
            throw .plan(.sourceTooLarge(width: header.width, height: header.height, limit: maxPixels))
        }
        return Decoded(tiff: tiff, loader: "ffmpeg", video: facts ? try? VideoFrame.facts(atPath: path, timeout: timeout) : nil)
    }

    /// An OpenEXR picture kept in a layer (`rgba.R`, `beauty.R`), which libvips' loader cannot read: FFmpeg's
    /// EXR decoder takes the layer, framed by the display window, as linear float RGBA planes (alpha
    /// still premultiplied, as the file stores it), the same pixels libvips' loader gives for R, G, B, A.
    static func decodeEXR(_ bytes: UnsafeRawBufferPointer, layer: String, window: EXRHeader.Window, timeout: Double) throws -> Image {
        let (status, planes, reason) = try Subprocess.run(on: bytes, suffix: ".exr", timeout: timeout) { input in
            ["/usr/bin/ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-layer", layer, "-i", input,
             "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gbrapf32le", "-"]
        }
        guard status == 0, planes.count == window.width * window.height * 16 else {
            throw RenderError.workerRefused("source image could not be decoded (EXR layer \(layer): \(reason.isEmpty ? "no pixels" : reason))")
        }
        return try planes.withUnsafeBytes { try Image.fromPlanarGBRAFloat($0, width: window.width, height: window.height) }
    }

    /// Worker side: decodes the first page (a PSD's merged composite, a PDF's first page) whole, after
    /// checking the size against `maxPixels`; for video, the frame FFmpeg gives (`VideoFrame`).
    public static func decode(_ bytes: UnsafeRawBufferPointer, maxPixels: Int, timeout: Double,
                              still: String? = nil, shrink: ShrinkHint? = nil, facts: Bool = false) throws(RenderError) -> Decoded {
        // Video: FFmpeg's frame (VideoFrame). A CMYK PSD or a log or linear DPX: a TIFF from ImageMagick's
        // `convert`, decoded like any image and reported as that decoder's.
        if isVideo(bytes) {
            return try Subprocess.withFile(holding: bytes, suffix: ".video") { path throws(RenderError) in
                try decodeVideo(atPath: path, maxPixels: maxPixels, timeout: timeout, still: still, facts: facts)
            }
        }
        let converted: (bytes: [UInt8], loader: String)?
        if let kind = ImageMagickConversion.kind(of: bytes) {
            converted = (try ImageMagickConversion.convert(bytes, kind: kind, timeout: timeout), "magickload")
        } else {
            converted = nil
        }
        if let converted {
            let result = converted.bytes.withUnsafeBytes { image in
                Result { () throws(RenderError) in try decode(image, maxPixels: maxPixels, timeout: timeout, shrink: shrink) }
            }
            var decoded = try result.get()
            decoded.loader = converted.loader
            return decoded
        }
        let header = try Renderer.header(of: bytes)
        let exr = header.format == .exr ? EXRHeader(bytes) : nil
        for (width, height) in [(header.width, header.height)] + (exr.map { [($0.displayWindow.width, $0.displayWindow.height)] } ?? [])
        where width * height > maxPixels {
            throw .plan(.sourceTooLarge(width: width, height: height, limit: maxPixels))
        }
        do {
            var image: Image
            if let exr, let layer = exr.pictureLayer {
                image = try decodeEXR(bytes, layer: layer, window: exr.displayWindow, timeout: timeout)
            } else {
                image = try Image.open(bytes, sequential: false, failOn: .error)
                if let exr, exr.dataWindow != exr.displayWindow {
                    // The picture is framed by the display window: overscan outside it is cut, and where the
                    // data window is smaller the rest is transparent black.
                    let (data, display) = (exr.dataWindow, exr.displayWindow)
                    image = try image.embed(x: data.minX - display.minX, y: data.minY - display.minY, width: display.width,
                                            height: display.height, background: Array(repeating: 0, count: image.bands))
                }
            }
            if let exr, !exr.hasAlpha(in: exr.pictureLayer), exr.dataWindow.covers(exr.displayWindow), image.bands == 4 {
                image = try image.extractBands(first: 0, count: 3)      // no alpha in the file, no gap: none in the thumbnail
            }
            // Handed back no larger than the request needs: a box shrink by a whole factor (on linear,
            // premultiplied light for EXR, where averaging belongs), the plan's Lanczos doing the rest.
            var sourceSize: PixelSize?
            if let factor = shrink?.factor(sourceWidth: image.width, sourceHeight: image.height), factor > 1 {
                sourceSize = PixelSize(width: image.width, height: image.height)
                image = try image.copyToMemory().shrunk(by: factor)
            }
            guard let tiff = try image.copyToMemory().transferTIFF(fromImageMagick: header.format == .magick) else {
                throw RenderError.unsupported("CMYK PSD (ImageMagick's loader loses its black channel)")
            }
            return Decoded(tiff: tiff, loader: header.loader, sourceSize: sourceSize)
        } catch let error as VipsError {
            throw .undecodable(error)
        } catch let error as RenderError {
            throw error
        } catch {
            throw .undecodable(VipsError(operation: "load", message: "\(error)"))
        }
    }
}
