import ThumborURL
import Vips

/// Why a source could not be rendered.
public enum RenderError: Error, Sendable, CustomStringConvertible {
    /// libvips cannot identify the bytes as an image (or its loader is blocked).
    case notAnImage
    /// The bytes looked like an image but decoding failed (truncated, corrupt).
    case undecodable(VipsError)
    case plan(PlanError)
    /// An operation failed after decoding: a server-side fault.
    case processing(VipsError)
    /// The request's deadline passed between two steps; the render was abandoned.
    case deadlineExceeded
    /// A source whose layout Pinhole does not decode correctly yet (refused rather than shown wrong).
    case unsupported(String)
    /// The decode worker crashed, hung or hit a limit on this source (or did before: remembered).
    case decoderFailed(String)
    /// The decode worker refused the source (bad or unsupported bytes): its own description.
    case workerRefused(String)

    public var description: String {
        switch self {
        case .notAnImage: return "source is not an image Pinhole can read"
        case let .undecodable(error): return "source image could not be decoded (\(error.operation))"
        case let .plan(error): return error.description
        case let .processing(error): return "processing failed (\(error.operation))"
        case .deadlineExceeded: return "render abandoned at its deadline"
        case let .unsupported(what): return "source image is not supported: \(what)"
        case let .decoderFailed(why): return "source image could not be decoded: \(why)"
        case let .workerRefused(description): return description
        }
    }
}

/// The outcome of a render: encoded bytes and what was done to get them.
public struct Rendered: Sendable {
    public var bytes: [UInt8]
    public var format: ImageFormat
    public var plan: RenderPlan
    /// The size of the encoded image (of each frame, for animations): what `/meta` reports as `target`,
    /// whatever the filters after the geometry did to it.
    public var outputSize: PixelSize
}

/// Executes render plans on libvips. Synchronous and CPU-bound: call it from a worker thread, never
/// from an event loop or Swift's cooperative pool.
public enum Renderer {
    /// Reads just the header (no pixels) or explains why the bytes are not an image.
    public static func header(of bytes: UnsafeRawBufferPointer) throws(RenderError) -> ImageHeader {
        guard Image.loaderName(for: bytes) != nil else { throw .notAnImage }
        do {
            return try Image.header(of: bytes)
        } catch {
            throw .undecodable(error as! VipsError)
        }
    }

    /// `overlays` are the encoded images `watermark()` and `frame()` name, by URL (already loaded);
    /// `extracted` are `extract_focal()`'s focal points.
    public static func render(_ bytes: UnsafeRawBufferPointer, request: ThumborRequest, settings: RenderSettings,
                              outputFormat: ImageFormat? = nil, deadline: ContinuousClock.Instant? = nil,
                              budget: DecodeBudget? = nil, overlays: [String: [UInt8]] = [:],
                              extracted: [FocalPoint] = [], decodedBy loader: String? = nil,
                              sourceSize: PixelSize? = nil) throws(RenderError) -> Rendered {
        // The source is inspected once (header; trim and AUTO_PNG_TO_JPG decode pixels), whatever follows.
        // `loader`: the bytes are a decode worker's TIFF of a source that loader read (IsolatedDecoding).
        var source = try inspect(bytes, request: request, settings: settings, outputFormat: outputFormat)
        if let loader { source.header.loader = loader }
        if let sourceSize, sourceSize != PixelSize(width: source.header.width, height: source.header.height) {
            // The worker shrank the source (`ShrinkHint`): geometry in the source's own size, pixels as they came.
            source.loadedSize = PixelSize(width: source.header.width, height: source.header.height)
            source.header.width = sourceSize.width
            source.header.height = sourceSize.height
        }
        guard request.smart, settings.smartDetector != .none else {
            return try execute(source.plan(request: request, settings: settings, extracted: extracted, detected: []),
                               on: bytes, settings: settings, deadline: deadline, budget: budget, overlays: overlays)
        }
        // `smart`: where the JPEG is decoded whole anyway (libjpeg-turbo, scaled), find the subject on those
        // pixels and render from them, instead of decoding the source a second time for detection. The
        // crop's size, and so the decode scale, does not depend on where the crop goes.
        let undetected = try source.plan(request: request, settings: settings, extracted: extracted, detected: [])
        guard case let .decodeJPEG(eighths, fastDCT) = undetected.steps.first else {
            let detected = try subject(bytes, header: source.header, settings: settings)
            return try execute(source.plan(request: request, settings: settings, extracted: extracted, detected: detected),
                               on: bytes, settings: settings, deadline: deadline, budget: budget, overlays: overlays)
        }
        let held = budget?.acquire(DecodeMemory.estimate(bytes, scaleEighths: eighths)) ?? 0
        let decoded: Image
        let detected: [FocalPoint]
        do {
            defer { budget?.release(held) }
            decoded = try Image.decodeJPEG(bytes, eighths: eighths, fastDCT: fastDCT)
            detected = try subject(in: decoded, header: source.header, settings: settings)
        } catch let error as VipsError {
            throw .undecodable(error)
        } catch {
            throw .undecodable(VipsError(operation: "smartcrop", message: "\(error)"))
        }
        let plan = try source.plan(request: request, settings: settings, extracted: extracted, detected: detected)
        return try execute(plan, on: bytes, settings: settings, deadline: deadline, overlays: overlays,
                           preloaded: plan.steps.first == undetected.steps.first ? decoded : nil)
    }

    /// Reads the header (and, for `trim`, the pixels Thumbor's trim looks at) and plans the render, with
    /// `smart` detection when the URL asks for it.
    public static func plan(_ bytes: UnsafeRawBufferPointer, request: ThumborRequest, settings: RenderSettings,
                            outputFormat: ImageFormat? = nil, extracted: [FocalPoint] = []) throws(RenderError) -> RenderPlan {
        let source = try inspect(bytes, request: request, settings: settings, outputFormat: outputFormat)
        let detected = request.smart && settings.smartDetector != .none ? try subject(bytes, header: source.header, settings: settings) : []
        return try source.plan(request: request, settings: settings, extracted: extracted, detected: detected)
    }

    /// What planning needs from the source itself, read once.
    struct Inspection {
        var header: ImageHeader
        /// Thumbor's trim box, when the URL asks for trim and it found one.
        var trimBox: PixelRect?
        /// The requested format, or JPEG for AUTO_PNG_TO_JPG.
        var outputFormat: ImageFormat?
        /// The size of the bytes' pixels when a decode worker shrank the source (the header has its own size).
        var loadedSize: PixelSize?

        func plan(request: ThumborRequest, settings: RenderSettings, extracted: [FocalPoint],
                  detected: [FocalPoint]) throws(RenderError) -> RenderPlan {
            do {
                return try RenderPlan.make(request: request, header: header, settings: settings, trim: trimBox, detected: detected,
                                           extracted: extracted, outputFormat: outputFormat, loadedSize: loadedSize)
            } catch {
                throw .plan(error)
            }
        }
    }

    static func inspect(_ bytes: UnsafeRawBufferPointer, request: ThumborRequest, settings: RenderSettings,
                        outputFormat: ImageFormat?) throws(RenderError) -> Inspection {
        let header = try header(of: bytes)
        var trimBox: PixelRect?
        if let trim = request.trimOption {
            // Checked here too: trim decodes the whole source before the plan's own check would run.
            if header.width * header.height > settings.maxPixels {
                throw .plan(.sourceTooLarge(width: header.width, height: header.height, limit: settings.maxPixels))
            }
            trimBox = try self.trimBox(bytes, option: trim, settings: settings)
        }
        var outputFormat = outputFormat
        if outputFormat == nil, settings.autoPNGToJPG, header.format == .png, try !hasTransparentPixels(bytes, header: header) {
            outputFormat = .jpeg   // AUTO_PNG_TO_JPG (a format() filter still wins in the plan)
        }
        return Inspection(header: header, trimBox: trimBox, outputFormat: outputFormat)
    }

    /// True when the image has an alpha band with any pixel below fully opaque.
    static func hasTransparentPixels(_ bytes: UnsafeRawBufferPointer, header: ImageHeader) throws(RenderError) -> Bool {
        guard header.hasAlpha else { return false }
        do {
            let image = try Image.open(bytes, sequential: true, failOn: .error)
            let alpha = try image.extractBands(first: image.bands - 1, count: 1)
            let maximum = image.interpretationIs16Bit ? 65535.0 : 255.0
            return try alpha.bandStatistics().minimums[0] < maximum
        } catch let error as VipsError {
            throw .undecodable(error)
        } catch {
            throw .undecodable(VipsError(operation: "stats", message: "\(error)"))
        }
    }

    /// `smart`: the configured detector on a small copy of the upright image gives one focal point, in
    /// displayed full-size coordinates (Thumbor runs OpenCV detectors here, and without them does nothing).
    static func subject(_ bytes: UnsafeRawBufferPointer, header: ImageHeader, settings: RenderSettings) throws(RenderError) -> [FocalPoint] {
        if header.width * header.height > settings.maxPixels { return [] }
        do {
            let longest = max(header.width, header.height)
            let shrink = header.format == .jpeg ? [8, 4, 2].first { longest / $0 >= 300 } ?? 1 : 1
            let image = try Image.open(bytes, options: shrink > 1 ? "shrink=\(shrink)" : "", sequential: false, failOn: .error)
            return try subject(in: image, header: header, settings: settings)
        } catch let error as VipsError {
            throw .undecodable(error)
        } catch {
            throw .undecodable(VipsError(operation: "smartcrop", message: "\(error)"))
        }
    }

    /// The detector on already decoded pixels (stored orientation, any scale).
    static func subject(in decoded: Image, header: ImageHeader, settings: RenderSettings) throws -> [FocalPoint] {
        var image = decoded
        let scale = min(1, 400 / Double(max(image.width, image.height)))   // small decodes are used as they are
        if scale < 1 { image = try image.resize(horizontal: scale, vertical: scale) }
        if settings.respectOrientation { image = try image.orient(exif: header.orientation) }
        image = try image.toSRGB(keepGray: false).copyToMemory()
        let centre = settings.smartDetector == .attention ? try image.attentionCentre() : try image.colourRarityCentre()
        let swaps = settings.respectOrientation && [5, 6, 7, 8].contains(header.orientation)
        let displayWidth = swaps ? header.height : header.width, displayHeight = swaps ? header.width : header.height
        let x = Int(Double(centre.x) + 0.5) * displayWidth / image.width
        let y = Int(Double(centre.y) + 0.5) * displayHeight / image.height
        return [FocalPoint(x: min(x, displayWidth - 1), y: min(y, displayHeight - 1), weight: 1, origin: .detection)]
    }

    /// Thumbor's trim (`_bounding_box.c`) on the full-size, upright, 8-bit sRGB pixels.
    static func trimBox(_ bytes: UnsafeRawBufferPointer, option: TrimOption, settings: RenderSettings) throws(RenderError) -> PixelRect? {
        do {
            var image = try Image.open(bytes, sequential: false, failOn: .error)
            if settings.respectOrientation { image = try image.autoRotate() }
            image = try image.toSRGB(keepGray: false).copyToMemory()
            guard let box = try image.trimBox(bottomRightReference: option.corner == .bottomRight, tolerance: Double(option.tolerance)),
                  box.right >= box.left, box.bottom >= box.top else { return nil }
            return PixelRect(left: box.left, top: box.top, right: box.right + 1, bottom: box.bottom + 1)
        } catch let error as VipsError {
            throw .undecodable(error)
        } catch {
            throw .undecodable(VipsError(operation: "trim", message: "\(error)"))
        }
    }

    /// Runs the plan's steps in order, checking `deadline` between them.
    public static func execute(_ plan: RenderPlan, on bytes: UnsafeRawBufferPointer, settings: RenderSettings,
                               deadline: ContinuousClock.Instant? = nil, budget: DecodeBudget? = nil,
                               overlays: [String: [UInt8]] = [:], preloaded: Image? = nil) throws(RenderError) -> Rendered {
        var image: Image?
        var output: [UInt8] = []
        var outputSize = PixelSize(width: 0, height: 0)
        var decoded = false
        // The decode's memory is held from the first step until the pixels are in memory (`decoded`).
        // (Preloaded pixels were decoded, under the budget, by the caller.)
        var scaleEighths = 8
        if case let .decodeJPEG(eighths, _) = plan.steps.first { scaleEighths = eighths }
        var held = budget?.acquire(preloaded == nil ? DecodeMemory.estimate(bytes, scaleEighths: scaleEighths) : 0) ?? 0
        defer { budget?.release(held) }
        func decodeFinished() {
            decoded = true
            budget?.release(held)
            held = 0
        }
        do {
            if plan.animationFrames > 1 {
                // Every frame goes through the same steps, then the frames are joined back with their timing.
                let all = try Image.open(bytes, options: "n=\(plan.animationFrames)", sequential: false, failOn: .error)
                var frames: [Image] = []
                for frame in try all.frames() {
                    if let deadline, ContinuousClock.now > deadline { throw RenderError.deadlineExceeded }
                    var current = frame
                    for step in plan.steps {
                        switch step {
                        case .load, .decodeJPEG, .encode: continue
                        default: current = try transform(current, step, plan: plan, settings: settings, overlays: overlays)
                        }
                    }
                    frames.append(current)
                }
                decodeFinished()
                guard case let .encode(options) = plan.steps.last else { throw RenderError.processing(VipsError(operation: "plan", message: "no encoder")) }
                output = try Image.animation(frames: frames, timingFrom: all).encoded(options)
                return Rendered(bytes: output, format: plan.outputFormat, plan: plan,
                                outputSize: PixelSize(width: frames[0].width, height: frames[0].height))
            }
            for step in plan.steps {
                if let deadline, ContinuousClock.now > deadline { throw RenderError.deadlineExceeded }
                switch step {
                case let .load(shrink):
                    let options = shrink > 1 ? "shrink=\(shrink)" : ""
                    image = try preloaded ?? Image.open(bytes, options: options, sequential: true, failOn: .error)
                case let .decodeJPEG(eighths, fastDCT):
                    image = try preloaded ?? Image.decodeJPEG(bytes, eighths: eighths, fastDCT: fastDCT)
                case let .encode(options):
                    var final = image!
                    if final.colourBands < final.bands && !options.format.carriesAlpha {
                        // A filter added alpha (round corners, fill) but the format has none.
                        let bg = settings.flattenBackground
                        final = try final.flatten(red: bg.red, green: bg.green, blue: bg.blue)
                    }
                    output = try encode(final, options, maxBytes: plan.maxBytes)
                    outputSize = PixelSize(width: final.width, height: final.height)
                case .toSRGB, .premultipliedToSRGB:
                    image = try transform(image!, step, plan: plan, settings: settings, overlays: overlays)
                    decodeFinished()
                default:
                    image = try transform(image!, step, plan: plan, settings: settings, overlays: overlays)
                }
            }
        } catch let error as VipsError {
            // Failures while pixels are still being decoded are the source's fault (truncated, corrupt).
            throw decoded ? .processing(error) : .undecodable(error)
        } catch let error as RenderError {
            throw error
        } catch {
            throw .processing(VipsError(operation: "render", message: "\(error)"))
        }
        return Rendered(bytes: output, format: plan.outputFormat, plan: plan, outputSize: outputSize)
    }

    /// One pixel step of a plan (everything but loading and encoding).
    static func transform(_ image: Image, _ step: RenderStep, plan: RenderPlan, settings: RenderSettings,
                          overlays: [String: [UInt8]]) throws -> Image {
        switch step {
        case let .crop(rect):
            return try image.crop(left: rect.left, top: rect.top, width: rect.width, height: rect.height)
        case let .resize(size):
            if ThumborResampling.applies(from: image, to: size) {
                return try image.lanczosResampled(width: size.width, height: size.height)
            }
            var resized = try image.resize(horizontal: Double(size.width) / Double(image.width),
                                           vertical: Double(size.height) / Double(image.height))
            if resized.width != size.width || resized.height != size.height {
                // libvips rounds its output size; land on Thumbor's size exactly.
                if resized.width > size.width || resized.height > size.height {
                    resized = try resized.crop(left: 0, top: 0, width: min(resized.width, size.width),
                                               height: min(resized.height, size.height))
                }
                resized = try resized.embed(x: 0, y: 0, width: size.width, height: size.height)
            }
            return resized
        case let .toSRGB(keepGray):
            // Everything before this point streams through the decoder; from here the image is
            // thumbnail-sized, so render it to memory once (rotations and flips read it randomly).
            return try image.toSRGB(keepGray: keepGray).copyToMemory()
        case .premultipliedToSRGB:
            return try image.copyToMemory().premultipliedLinearToSRGB().copyToMemory()
        case let .autoOrient(exif):
            return try image.orient(exif: exif)
        case let .flip(horizontal):
            return try image.flip(horizontal: horizontal)
        case .flatten:
            let bg = settings.flattenBackground
            return try image.flatten(red: bg.red, green: bg.green, blue: bg.blue)
        case let .filter(filter):
            let context = FilterRenderer.Context(requestedWidth: plan.requestedSize.width, requestedHeight: plan.requestedSize.height,
                                                 overlays: overlays)
            return try FilterRenderer.apply(filter, to: image, context: context)
        case .load, .decodeJPEG, .encode:
            return image
        }
    }

    /// Encodes; with `max_bytes` (JPEG and WebP), Thumbor's search: quality × 0.75 until the output fits
    /// (below quality 10 it gives up and keeps the first output), then × 1.1 back up while it still fits.
    static func encode(_ image: Image, _ options: SaveOptions, maxBytes: Int?) throws -> [UInt8] {
        let first = try image.encoded(options)
        guard let maxBytes, first.count > maxBytes else { return first }
        func with(_ q: Int) -> SaveOptions? {
            switch options {
            case let .jpeg(_, progressive): return .jpeg(quality: q, progressive: progressive)
            case .webp: return .webp(quality: q, lossless: false)
            default: return nil
            }
        }
        guard case let .some(start) = options.quality, with(start) != nil else { return first }
        var quality = start
        var fitting: [UInt8]?
        while fitting == nil {
            quality = Int(Double(quality) * 0.75)
            if quality < 10 { return first }
            let attempt = try image.encoded(with(quality)!)
            if attempt.count <= maxBytes { fitting = attempt }
        }
        while true {
            let higher = Int(Double(quality) * 1.1)
            guard higher > quality, higher <= 100 else { break }
            let attempt = try image.encoded(with(higher)!)
            guard attempt.count <= maxBytes else { break }
            quality = higher
            fitting = attempt
        }
        return fitting!
    }
}

extension SaveOptions {
    var quality: Int? {
        switch self {
        case let .jpeg(q, _): return q
        case let .webp(q, _): return q
        case let .avif(q): return q
        case let .jxl(q): return q
        default: return nil
        }
    }
}
