import ThumborURL
import Vips

/// Why a render cannot be planned. Each case is a client error (4xx) with a short, true message.
public enum PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    case sourceTooLarge(width: Int, height: Int, limit: Int)
    case outputTooLarge(width: Int, height: Int, limit: Int)
    case geometry(ThumborGeometry.Failure)

    public var description: String {
        switch self {
        case let .sourceTooLarge(w, h, limit): return "source is \(w)x\(h), over the \(limit)-pixel limit"
        case let .outputTooLarge(w, h, limit): return "requested output \(w)x\(h) is over the \(limit)-pixel limit"
        case let .geometry(failure): return failure.description
        }
    }
}

/// One named step of a render, executed in order on libvips (imgproxy-style pipeline as data).
public enum RenderStep: Sendable, Equatable, CustomStringConvertible {
    /// Decode, letting the JPEG decoder shrink by this power of two (1 = full size).
    case load(shrink: Int)
    /// Decode a JPEG with libjpeg-turbo at eighths/8 of its size.
    case decodeJPEG(eighths: Int, fastDCT: Bool)
    /// Crop in decoded (stored-orientation) pixels.
    case crop(PixelRect)
    /// Resize to exactly this size (stored orientation).
    case resize(PixelSize)
    /// Convert to 8-bit sRGB through any ICC profile (CMYK, 16-bit, linear float sources).
    case toSRGB(keepGray: Bool)
    /// Convert linear-light premultiplied RGBA (OpenEXR) to 8-bit sRGB with straight alpha.
    case premultipliedToSRGB
    /// Apply the EXIF orientation to the (small) result.
    case autoOrient(Int)
    case flip(horizontal: Bool)
    /// Drop alpha onto a solid background for formats without alpha.
    case flatten
    /// One of Thumbor's post-transform filters (URL order).
    case filter(ThumborFilter)
    case encode(SaveOptions)

    public var description: String {
        switch self {
        case let .load(shrink): return "load(shrink: \(shrink))"
        case let .decodeJPEG(eighths, fastDCT): return "decodeJPEG(scale: \(eighths)/8\(fastDCT ? ", fast IDCT" : ""))"
        case let .crop(r): return "crop(left: \(r.left), top: \(r.top), width: \(r.width), height: \(r.height))"
        case let .resize(s): return "resize(\(s.width)x\(s.height))"
        case let .toSRGB(keepGray): return keepGray ? "toSRGB(keepGray)" : "toSRGB"
        case .premultipliedToSRGB: return "premultipliedLinearToSRGB"
        case let .autoOrient(o): return "autoOrient(exif: \(o))"
        case let .flip(horizontal): return horizontal ? "flipHorizontally" : "flipVertically"
        case .flatten: return "flatten"
        case let .filter(filter): return "filter(\(filter.name))"
        case let .encode(options): return "encode(\(options))"
        }
    }
}

/// The full render of one request on one source: Thumbor's geometry, and the libvips steps that realise it.
public struct RenderPlan: Sendable {
    public var header: ImageHeader
    /// The size Thumbor's math saw (after orientation and MAX_WIDTH/MAX_HEIGHT normalisation).
    public var logicalSource: PixelSize
    public var geometry: ThumborGeometry
    public var outputFormat: ImageFormat
    public var steps: [RenderStep]
    /// The filters that applied (unknown, disabled and malformed ones already dropped).
    public var filters: [ThumborFilter] = []
    /// `max_bytes(n)`: lower the quality until the output fits (JPEG and WebP).
    public var maxBytes: Int?
    /// `max_age(s)`: the response's Cache-Control max-age instead of the configured one.
    public var maxAge: Int?
    /// Frames rendered: the source's pages for an animation written as GIF or WebP, else 1.
    public var animationFrames = 1
    /// The requested size after clamping and `no_upscale` (0 = not given), which `fill` and `upscale` use.
    public var requestedSize = PixelSize(width: 0, height: 0)
    /// False when the output format cannot depend on Accept (an animated GIF stays a GIF): the response
    /// then carries no `Vary: Accept`, as Thumbor's does not.
    public var formatFollowsAccept = true

    /// `trim` is Thumbor's trim box in displayed coordinates, when the URL asks for trim and it found one.
    /// `detected` are smart-detection focal points in displayed full-size coordinates; `extracted` are
    /// `extract_focal()`'s points (source coordinates, like focal()).
    public static func make(request: ThumborRequest, header: ImageHeader, settings: RenderSettings,
                            trim: PixelRect? = nil, detected: [FocalPoint] = [], extracted: [FocalPoint] = [],
                            outputFormat requestedFormat: ImageFormat? = nil, loadedSize: PixelSize? = nil) throws(PlanError) -> RenderPlan {
        if header.width * header.height > settings.maxPixels || header.width > 1 << 24 || header.height > 1 << 24 {
            throw .sourceTooLarge(width: header.width, height: header.height, limit: settings.maxPixels)
        }
        let orientation = Orientation(settings.respectOrientation ? header.orientation : 1)
        let display = orientation.swapsAxes
            ? PixelSize(width: header.height, height: header.width)
            : PixelSize(width: header.width, height: header.height)

        // Thumbor: clamp the requested size, then normalise (downscale) sources over MAX_WIDTH/MAX_HEIGHT.
        var request = request
        if settings.maxWidth > 0, case let .pixels(w) = request.width, w > settings.maxWidth { request.width = .pixels(settings.maxWidth) }
        if settings.maxHeight > 0, case let .pixels(h) = request.height, h > settings.maxHeight { request.height = .pixels(settings.maxHeight) }
        let logical = normalizedSize(display, settings: settings)
        if logical != display, request.crop.isSet {
            // normalize_crops: floor-scaled by new/original.
            request.crop.left = request.crop.left * logical.width / display.width
            request.crop.right = request.crop.right * logical.width / display.width
            request.crop.top = request.crop.top * logical.height / display.height
            request.crop.bottom = request.crop.bottom * logical.height / display.height
        }

        // Filters by phase (spec §1.6, §3): pre-load ones shape the geometry, after-load `no_upscale`
        // caps the request at the source's size, post-transform ones become steps.
        let filters = ThumborFilter.parseList(request.filters ?? "", enabled: settings.enabledFilters)
        let stretch = filters.contains(.stretch)
        var focalPoints = filters.compactMap { filter -> FocalPoint? in
            guard case let .focal(left, top, right, bottom) = filter, right - left != 0, bottom - top != 0 else { return nil }
            return FocalPoint.fromSquare(x: left, y: top, width: right - left, height: bottom - top, origin: .explicit)
        }
        focalPoints += extracted
        // Detected points join the explicit ones (Thumbor appends detector points to focal() ones).
        focalPoints += detected.map { point in
            var scaled = point
            scaled.x = point.x * logical.width / max(1, display.width)
            scaled.y = point.y * logical.height / max(1, display.height)
            return scaled
        }
        if filters.contains(.noUpscale) {
            if case let .pixels(w) = request.width { request.width = .pixels(min(w, logical.width)) }
            if case let .pixels(h) = request.height { request.height = .pixels(min(h, logical.height)) }
        }

        let geometry: ThumborGeometry
        do {
            var logicalTrim = trim
            if let box = trim, logical != display {
                let fx = Double(logical.width) / Double(display.width), fy = Double(logical.height) / Double(display.height)
                logicalTrim = PixelRect(left: Int(Double(box.left) * fx), top: Int(Double(box.top) * fy),
                                        right: max(Int(Double(box.left) * fx) + 1, Int((Double(box.right) * fx).rounded())),
                                        bottom: max(Int(Double(box.top) * fy) + 1, Int((Double(box.bottom) * fy).rounded())))
            }
            geometry = try ThumborGeometry.compute(source: logical, request: request, trim: logicalTrim, stretch: stretch,
                                                   focalPoints: focalPoints)
        } catch {
            throw .geometry(error)
        }
        let out = geometry.outputSize
        if out.width * out.height > settings.maxPixels || out.width > 1 << 24 || out.height > 1 << 24 {
            throw .outputTooLarge(width: out.width, height: out.height, limit: settings.maxPixels)
        }

        // The region of the logical source that ends up in the output, and the size it is resized to.
        var region = PixelRect(left: 0, top: 0, right: logical.width, bottom: logical.height)
        var resized: PixelSize?
        var flips: [Bool] = []
        for operation in geometry.operations {
            switch operation {
            case let .crop(c):
                region = PixelRect(left: region.left + c.left, top: region.top + c.top,
                                   right: region.left + c.right, bottom: region.top + c.bottom)
            case .resize:
                resized = out
            case .flipHorizontally: flips.append(true)
            case .flipVertically: flips.append(false)
            }
        }
        let finalDisplaySize = resized ?? PixelSize(width: region.width, height: region.height)

        // Logical → displayed → stored coordinates.
        let sx = Double(display.width) / Double(logical.width), sy = Double(display.height) / Double(logical.height)
        let stored = orientation.storedRect(
            fromDisplayed: (Double(region.left) * sx, Double(region.top) * sy, Double(region.right) * sx, Double(region.bottom) * sy),
            stored: (Double(header.width), Double(header.height)))
        let storedTarget = orientation.swapsAxes
            ? PixelSize(width: finalDisplaySize.height, height: finalDisplaySize.width) : finalDisplaySize

        // Shrink-on-load: Pillow's draft scale (`jpegDraftScales`), or the smallest DCT scale in eighths that
        // keeps `jpegShrinkReserve` × the target. libvips' own loader scales only by 1/2/4/8. (libjpeg's
        // scaled sizes round up.)
        let regionW = stored.x1 - stored.x0, regionH = stored.y1 - stored.y0
        let covers: (Double) -> Bool = { scale in
            regionW * scale >= Double(storedTarget.width) * settings.jpegShrinkReserve
                && regionH * scale >= Double(storedTarget.height) * settings.jpegShrinkReserve
        }
        var load: RenderStep = .load(shrink: 1)
        var loadedW = header.width, loadedH = header.height
        let turbo = settings.turboJPEG && header.format == .jpeg && (header.bands == 3 || header.bands == 1)
            && header.profile != .other
        // Pillow's draft: the whole ratio of region to target on each axis, the smaller one, rounded down
        // to 8, 4, 2 or 1.
        let draftRatio = min(Int(regionW) / max(1, Int(Double(storedTarget.width) * settings.jpegShrinkReserve)),
                             Int(regionH) / max(1, Int(Double(storedTarget.height) * settings.jpegShrinkReserve)))
        let draftShrink = [8, 4, 2].first { draftRatio >= $0 } ?? 1
        if turbo {
            let eighths = settings.jpegDraftScales ? 8 / draftShrink : (1...8).first { covers(Double($0) / 8) } ?? 8
            load = .decodeJPEG(eighths: eighths, fastDCT: settings.jpegFastDCT)
            loadedW = (header.width * eighths + 7) / 8
            loadedH = (header.height * eighths + 7) / 8
        } else if header.format == .jpeg {
            let shrink = settings.jpegDraftScales ? draftShrink : [8, 4, 2].first { covers(1 / Double($0)) } ?? 1
            load = .load(shrink: shrink)
            loadedW = (header.width + shrink - 1) / shrink
            loadedH = (header.height + shrink - 1) / shrink
        }
        if let loadedSize {
            // A decode worker shrank the source already (`ShrinkHint`): the plan runs on its pixels.
            loadedW = loadedSize.width
            loadedH = loadedSize.height
        }
        let fx = Double(loadedW) / Double(header.width), fy = Double(loadedH) / Double(header.height)
        let left = min(loadedW - 1, max(0, Int((stored.x0 * fx).rounded(.down))))
        let top = min(loadedH - 1, max(0, Int((stored.y0 * fy).rounded(.down))))
        let right = max(left + 1, min(loadedW, Int((stored.x1 * fx).rounded())))
        let bottom = max(top + 1, min(loadedH, Int((stored.y1 * fy).rounded())))
        let crop = PixelRect(left: left, top: top, right: right, bottom: bottom)

        var steps: [RenderStep] = [load]
        if crop != PixelRect(left: 0, top: 0, right: loadedW, bottom: loadedH) { steps.append(.crop(crop)) }
        if storedTarget != PixelSize(width: crop.width, height: crop.height) { steps.append(.resize(storedTarget)) }
        // Output format: the format() filter (the last one wins; an unknown format resets it), else the
        // negotiated one, else the source's (spec §5.4).
        var filterFormat: ImageFormat?
        for case let .format(name) in filters { filterFormat = name.flatMap(ImageFormat.init(filterName:)) }
        // Thumbor negotiates only for still images: an animated GIF stays a GIF whatever Accept says
        // (`animated_webp` lets WebP, which animates too, take its place).
        let animatedGIF = settings.keepAnimation && header.format == .gif && header.pages > 1
        var requestedFormat = requestedFormat
        if animatedGIF, requestedFormat == .webp || requestedFormat == .avif,
           !(requestedFormat == .webp && settings.animatedWebP) {
            requestedFormat = nil
        }
        let format = filterFormat ?? requestedFormat ?? OutputFormatPolicy.format(forSource: header.format, hasAlpha: header.hasAlpha)
        steps.append(header.format == .exr && header.hasAlpha ? .premultipliedToSRGB : .toSRGB(keepGray: header.bands <= 2))
        if orientation.value != 1 { steps.append(.autoOrient(orientation.value)) }
        steps += flips.map { .flip(horizontal: $0) }
        steps += filters.filter { $0.phase == .postTransform && $0.changesPixels }.map(RenderStep.filter)
        if header.hasAlpha && !format.carriesAlpha { steps.append(.flatten) }
        var quality: Int?
        for case let .quality(q) in filters { quality = q }
        steps.append(.encode(settings.saveOptions(for: format, quality: quality)))
        var plan = RenderPlan(header: header, logicalSource: logical, geometry: geometry, outputFormat: format, steps: steps)
        plan.filters = filters
        plan.formatFollowsAccept = !animatedGIF || settings.animatedWebP
        for filter in filters {
            switch filter {
            case let .maxBytes(n): plan.maxBytes = n
            case let .maxAge(s): plan.maxAge = s
            default: break
            }
        }
        plan.requestedSize = PixelSize(width: request.width.pixels ?? 0, height: request.height.pixels ?? 0)
        // fill() and upscale() draw at the requested size: it is bound by the pixel limit like any output.
        if filters.contains(where: { if case .fill = $0 { return true }; return $0 == .upscale }),
           plan.requestedSize.width * plan.requestedSize.height > settings.maxPixels {
            throw .outputTooLarge(width: plan.requestedSize.width, height: plan.requestedSize.height, limit: settings.maxPixels)
        }
        // Animations stay animated when the output format can carry them and every frame fits the limits.
        if settings.keepAnimation, header.pages > 1, format == .gif || format == .webp,
           header.pages <= settings.maxAnimationFrames, header.pages * header.width * header.height <= settings.maxPixels,
           header.format == .gif || header.format == .webp {
            plan.animationFrames = header.pages
            // Frames are decoded whole, one at a time: no JPEG shrink-on-load to account for.
            if case .decodeJPEG = plan.steps.first { plan.animationFrames = 1 }
        }
        return plan
    }

    /// Thumbor's `Engine.normalize()`: downscale by the side that overshoots its maximum more.
    static func normalizedSize(_ size: PixelSize, settings: RenderSettings) -> PixelSize {
        let maxW = settings.maxWidth, maxH = settings.maxHeight
        guard size.width > maxW || size.height > maxH else { return size }
        let dw = size.width - maxW, dh = size.height - maxH
        if maxW > 0 && dw > dh {
            return PixelSize(width: maxW, height: Int(PythonMath.round(Double(maxW) * Double(size.height) / Double(size.width))))
        }
        if maxH > 0 && dh > dw {
            return PixelSize(width: Int(PythonMath.round(Double(maxH) * Double(size.width) / Double(size.height))), height: maxH)
        }
        return size
    }
}

extension ThumborFilter {
    /// Post-transform filters that change pixels or size (the rest set encoder or response options).
    var changesPixels: Bool {
        switch self {
        case .quality, .format, .maxBytes, .maxAge, .stripEXIF, .stripICC: return false
        default: return phase == .postTransform
        }
    }
}

extension ImageFormat {
    /// The `format()` filter's names; HEIC/HEIF are not written (nil: the default format is used).
    init?(filterName: String) {
        switch filterName {
        case "jpg", "jpeg": self = .jpeg
        case "png": self = .png
        case "gif": self = .gif
        case "webp": self = .webp
        case "avif": self = .avif
        case "jxl": self = .jxl
        default: return nil
        }
    }

    var carriesAlpha: Bool {
        switch self {
        case .png, .webp, .gif, .avif, .jxl: return true
        default: return false
        }
    }
}
