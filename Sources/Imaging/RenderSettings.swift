import Vips

/// Everything about rendering that comes from configuration rather than the URL.
public struct RenderSettings: Sendable, Equatable {
    /// Refuse sources (from their header, before decoding) and outputs above this many pixels. Thumbor: MAX_PIXELS.
    public var maxPixels: Int = 75_000_000
    /// Thumbor's MAX_WIDTH / MAX_HEIGHT (0 = off): clamp requested sizes and downscale larger sources.
    public var maxWidth: Int = 0
    public var maxHeight: Int = 0
    /// Apply EXIF orientation before the transform math (Thumbor: RESPECT_ORIENTATION, off there).
    public var respectOrientation: Bool = true
    /// JPEG shrink-on-load keeps at least this factor of resolution above the target: 1.0 decodes at the
    /// smallest DCT scale that still covers the target (Pillow's `draft`, fastest); 2.0 is libvips' default (sharper).
    public var jpegShrinkReserve: Double = 1.0
    /// Decode JPEGs with libjpeg-turbo's scaled decoder instead of libvips'.
    public var turboJPEG: Bool = true
    /// Pick the JPEG decode scale as Pillow's `draft` does for Thumbor (1/2, 1/4 or 1/8, from the whole
    /// ratio of source to target): with the accurate IDCT and Thumbor's resampling, fit-in thumbnails of
    /// JPEGs then carry Thumbor's exact pixels. Off: the smallest eighth that covers the target (3/8, 5/8…
    /// too), fewer pixels to decode and resample where such an eighth fits.
    public var jpegDraftScales: Bool = true
    /// With libjpeg-turbo: the fast integer IDCT at full scale (scaled decodes have one IDCT only).
    /// Pillow uses the accurate one, so Thumbor's pixels need it off.
    public var jpegFastDCT: Bool = false
    public var jpegQuality: Int = 80
    public var webpQuality: Int = 80
    public var avifQuality: Int = 80
    public var jxlQuality: Int = 80
    public var pngCompression: Int = 6
    public var progressiveJPEG: Bool = true
    /// Background for flattening transparency into formats without alpha (JPEG).
    public var flattenBackground: (red: Double, green: Double, blue: Double) = (255, 255, 255)
    /// Animated GIF/WebP sources keep every frame when written as GIF or WebP (off: the first frame).
    public var keepAnimation: Bool = true
    /// AUTO_WEBP turns animated GIF sources into animated WebP (off: they stay GIF, as in Thumbor, which
    /// negotiates only for still images).
    public var animatedWebP: Bool = false
    /// Animations with more frames than this are rendered from their first frame only.
    public var maxAnimationFrames: Int = 500
    /// AUTO_PNG_TO_JPG: PNG sources without any transparent pixel are written as JPEG.
    public var autoPNGToJPG: Bool = false
    /// How `smart` finds the subject (Thumbor without OpenCV detectors: not at all, alignment only).
    public var smartDetector: SmartDetector = .colour
    /// Filters applied when a URL asks for them (Thumbor: FILTERS); nil = all 30 built-in ones.
    public var enabledFilters: Set<String>?

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.maxPixels == b.maxPixels && a.maxWidth == b.maxWidth && a.maxHeight == b.maxHeight
            && a.respectOrientation == b.respectOrientation && a.jpegShrinkReserve == b.jpegShrinkReserve
            && a.turboJPEG == b.turboJPEG && a.jpegFastDCT == b.jpegFastDCT && a.jpegDraftScales == b.jpegDraftScales
            && a.jpegQuality == b.jpegQuality && a.webpQuality == b.webpQuality && a.avifQuality == b.avifQuality
            && a.jxlQuality == b.jxlQuality && a.pngCompression == b.pngCompression
            && a.progressiveJPEG == b.progressiveJPEG && a.flattenBackground == b.flattenBackground
            && a.enabledFilters == b.enabledFilters && a.smartDetector == b.smartDetector && a.autoPNGToJPG == b.autoPNGToJPG
            && a.keepAnimation == b.keepAnimation && a.maxAnimationFrames == b.maxAnimationFrames
            && a.animatedWebP == b.animatedWebP
    }

    /// The encoder for an output format.
    /// `quality` is the `quality()` filter's value, which replaces the configured one (Thumbor clamps
    /// nothing; libvips needs 1…100).
    public func saveOptions(for format: ImageFormat, quality: Int? = nil) -> SaveOptions {
        let q = { (configured: Int) in max(1, min(100, quality ?? configured)) }
        switch format {
        case .png: return .png(compression: pngCompression)
        case .webp: return .webp(quality: q(webpQuality), lossless: q(webpQuality) >= 100)
        case .gif: return .gif
        case .avif: return .avif(quality: q(avifQuality))
        case .jxl: return .jxl(quality: q(jxlQuality))
        default: return .jpeg(quality: q(jpegQuality), progressive: progressiveJPEG)
        }
    }
}

/// Subject detection for `smart` crops. Measured on the corpus photos with an off-centre subject (kite,
/// lone orange star, red leaf): colour rarity keeps all three in a 100x300 crop; libvips' attention
/// detector (edges, skin, saturation) is drawn to the kite photo's clouds and loses the kite.
public enum SmartDetector: String, Sendable, CaseIterable {
    /// Where the chroma (Cb, Cr) departs most from the picture's mean chroma.
    case colour
    /// libvips' smartcrop attention centre.
    case attention
    /// Thumbor without detectors: the alignment point only.
    case none
}

/// Which format a thumbnail is written in when the URL does not say.
public enum OutputFormatPolicy {
    /// Thumbor keeps the source format, writes TIFF (and SVG) as PNG; formats browsers cannot show
    /// (EXR, HDR, PSD, DPX, PDF, JPEG XL, HEIC) become PNG when they carry alpha and JPEG otherwise.
    public static func format(forSource source: ImageFormat, hasAlpha: Bool) -> ImageFormat {
        switch source {
        case .jpeg, .png, .webp, .gif: return source
        case .heif: return .avif
        case .tiff, .svg: return .png
        default: return hasAlpha ? .png : .jpeg
        }
    }
}
