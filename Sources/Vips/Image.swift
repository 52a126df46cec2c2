import CVips
import CVipsShim

/// How strictly a decoder treats damaged input.
public enum FailOn: Int32, Sendable {
    case none = 0, truncated = 1, error = 2, warning = 3
}

/// What a header read tells without decoding pixels.
public struct ImageHeader: Sendable, Equatable {
    /// Stored size, before EXIF orientation.
    public var width: Int
    public var height: Int
    public var bands: Int
    public var pages: Int
    public var hasAlpha: Bool
    /// EXIF orientation 1…8 (1 when absent).
    public var orientation: Int
    public var loader: String
    /// What the embedded ICC profile says the pixels are.
    public var profile: ColourProfile = .none
    public var format: ImageFormat { ImageFormat(loader: loader) }

    public init(width: Int, height: Int, bands: Int, pages: Int, hasAlpha: Bool, orientation: Int, loader: String,
                profile: ColourProfile = .none) {
        self.width = width; self.height = height; self.bands = bands; self.pages = pages
        self.hasAlpha = hasAlpha; self.orientation = orientation; self.loader = loader; self.profile = profile
    }
}

/// An image's embedded colour profile, as far as rendering cares.
public enum ColourProfile: Sendable, Equatable {
    case none
    /// A profile that describes itself as sRGB: the pixels need no transform.
    case sRGB
    /// Anything else (Adobe RGB, Display P3, CMYK, …): transformed to sRGB through the profile.
    case other
}

/// Encoder settings.
public enum SaveOptions: Sendable, Equatable {
    case jpeg(quality: Int, progressive: Bool)
    case png(compression: Int)
    case webp(quality: Int, lossless: Bool)
    case gif
    case avif(quality: Int)
    case jxl(quality: Int)

    public var format: ImageFormat {
        switch self {
        case .jpeg: return .jpeg
        case .png: return .png
        case .webp: return .webp
        case .gif: return .gif
        case .avif: return .avif
        case .jxl: return .jxl
        }
    }
}

/// An owned libvips image. Not Sendable: create, transform and encode it on one thread, inside one
/// synchronous function, and let only the encoded bytes leave.
public final class Image {
    private let pointer: UnsafeMutablePointer<VipsImage>
    /// Keeps the encoded source (bytes or temporary file) alive while libvips may still read from it lazily.
    private let source: AnyObject?

    private init(_ pointer: UnsafeMutablePointer<VipsImage>, source: AnyObject?) {
        self.pointer = pointer
        self.source = source
    }

    deinit { g_object_unref(pointer) }

    // MARK: Opening

    /// The libvips loader that would claim these bytes, or nil when they are not an image libvips reads
    /// (or its loader is blocked).
    public static func loaderName(for bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        if TemporarySourceFile.isNeeded(for: bytes) { return "openexrload" }
        guard let name = cvips_find_loader(base, bytes.count) else {
            _ = VipsRuntime.takeErrorMessage()
            return nil
        }
        return String(cString: name)
    }

    /// Opens `bytes` (copied once) lazily: nothing is decoded until pixels are needed.
    /// `options` is a libvips option string for the loader (e.g. `shrink=4` for JPEG).
    public static func open(_ bytes: UnsafeRawBufferPointer, options: String = "", sequential: Bool = true,
                            failOn: FailOn = .error) throws -> Image {
        guard bytes.count > 0 else { throw VipsError(operation: "load", message: "empty input") }
        if TemporarySourceFile.isNeeded(for: bytes) {
            let file = try TemporarySourceFile(copying: bytes)
            guard let image = cvips_open_file(file.path, sequential ? 1 : 0, failOn.rawValue) else {
                throw VipsError(operation: "load", message: VipsRuntime.takeErrorMessage())
            }
            return Image(image, source: file)
        }
        let pinned = PinnedBytes(copying: bytes)
        guard let image = cvips_open_buffer(pinned.base, pinned.count, options, sequential ? 1 : 0, failOn.rawValue) else {
            throw VipsError(operation: "load", message: VipsRuntime.takeErrorMessage())
        }
        return Image(image, source: pinned)
    }

    public static func open(_ bytes: [UInt8], options: String = "", sequential: Bool = true, failOn: FailOn = .error) throws -> Image {
        try bytes.withUnsafeBytes { try open($0, options: options, sequential: sequential, failOn: failOn) }
    }

    /// Reads the header only (no pixel decode): size, bands, pages, orientation, loader.
    public static func header(of bytes: UnsafeRawBufferPointer) throws -> ImageHeader {
        try open(bytes, sequential: true, failOn: .none).header
    }

    // MARK: Properties

    public var width: Int { Int(vips_image_get_width(pointer)) }
    public var height: Int { Int(vips_image_get_height(pointer)) }
    public var bands: Int { Int(vips_image_get_bands(pointer)) }
    /// 16 bits per sample (PNG and TIFF can be): full opacity is 65535.
    public var interpretationIs16Bit: Bool { vips_image_get_format(pointer) == VIPS_FORMAT_USHORT }
    public var is8Bit: Bool { vips_image_get_format(pointer) == VIPS_FORMAT_UCHAR }
    public var hasAlpha: Bool { vips_image_hasalpha(pointer) != 0 }
    public var orientation: Int { Int(cvips_orientation(pointer)) }
    public var pages: Int { Int(vips_image_get_n_pages(pointer)) }

    public var loader: String {
        var value: UnsafePointer<CChar>?
        guard vips_image_get_string(pointer, "vips-loader", &value) == 0, let value else {
            _ = VipsRuntime.takeErrorMessage()
            return "unknown"
        }
        return String(cString: value)
    }

    public var header: ImageHeader {
        ImageHeader(width: width, height: height, bands: bands, pages: pages, hasAlpha: hasAlpha,
                    orientation: orientation, loader: loader, profile: profile)
    }

    public var profile: ColourProfile {
        guard vips_image_get_typeof(pointer, "icc-profile-data") != 0 else { return .none }
        return cvips_has_srgb_profile(pointer) != 0 ? .sRGB : .other
    }

    /// Decodes a JPEG with libjpeg-turbo at `eighths`/8 of its size (1…8), with the fast integer IDCT
    /// when `fastDCT`: finer scale steps than libvips' 1/2/4/8 shrink and a faster transform. CMYK
    /// JPEGs are refused (libvips handles them). The result is in memory, without metadata.
    public static func decodeJPEG(_ bytes: UnsafeRawBufferPointer, eighths: Int, fastDCT: Bool) throws -> Image {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw VipsError(operation: "turbojpeg", message: "empty input") }
        guard let image = cvips_turbojpeg_load(base, bytes.count, Int32(eighths), fastDCT ? 1 : 0) else {
            throw VipsError(operation: "turbojpeg", message: VipsRuntime.takeErrorMessage())
        }
        return Image(image, source: nil)
    }

    // MARK: Operations (each returns a new image; the receiver is unchanged)

    private func derive(_ operation: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws -> Image {
        var out: UnsafeMutablePointer<VipsImage>?
        guard body(&out) == 0, let out else {
            throw VipsError(operation: operation, message: VipsRuntime.takeErrorMessage())
        }
        return Image(out, source: source)
    }

    public func crop(left: Int, top: Int, width: Int, height: Int) throws -> Image {
        try derive("crop") { cvips_crop(pointer, $0, Int32(left), Int32(top), Int32(width), Int32(height)) }
    }

    /// A box-filter shrink by a whole factor on both axes (each output pixel the mean of factor x factor).
    public func shrunk(by factor: Int) throws -> Image {
        try derive("shrink") { cvips_shrink(pointer, $0, Double(factor)) }
    }

    /// Lanczos3 resize by independent horizontal and vertical scale factors.
    public func resize(horizontal: Double, vertical: Double) throws -> Image {
        try derive("resize") { cvips_resize(pointer, $0, horizontal, vertical) }
    }

    /// Pillow's LANCZOS resampling (Thumbor's), to exactly `width`×`height`: 8-bit pixels only. The
    /// receiver is rendered to memory first, so use it on thumbnail-scale inputs.
    public func lanczosResampled(width: Int, height: Int) throws -> Image {
        try derive("resample") { cvips_resample_lanczos(pointer, $0, Int32(width), Int32(height)) }
    }

    public func flip(horizontal: Bool) throws -> Image {
        try derive("flip") { cvips_flip(pointer, $0, horizontal ? 1 : 0) }
    }

    /// Applies the EXIF orientation tag to the pixels and removes it.
    public func autoRotate() throws -> Image {
        try derive("autorot") { cvips_autorot(pointer, $0) }
    }

    /// Applies EXIF orientation `exif` (1…8) to the pixels, as libvips' autorot does, whatever
    /// metadata the image carries.
    public func orient(exif: Int) throws -> Image {
        switch exif {
        case 2: return try flip(horizontal: true)
        case 3: return try rotate(quarterTurns: 2)
        case 4: return try flip(horizontal: false)
        case 5: return try rotate(quarterTurns: 1).flip(horizontal: true)
        case 6: return try rotate(quarterTurns: 1)
        case 7: return try rotate(quarterTurns: 3).flip(horizontal: true)
        case 8: return try rotate(quarterTurns: 3)
        default: return self
        }
    }

    /// Rotates clockwise by quarter turns.
    public func rotate(quarterTurns: Int) throws -> Image {
        try derive("rot") { cvips_rot(pointer, $0, Int32(quarterTurns)) }
    }

    /// Places the image at (x, y) on a width×height canvas, repeating edge pixels outward.
    public func embed(x: Int, y: Int, width: Int, height: Int) throws -> Image {
        try derive("embed") { cvips_embed_extend(pointer, $0, Int32(x), Int32(y), Int32(width), Int32(height)) }
    }

    /// 8-bit sRGB through any embedded ICC profile; one-band images stay grey when `keepGray`.
    public func toSRGB(keepGray: Bool) throws -> Image {
        try derive("colourspace") { cvips_to_srgb(pointer, $0, keepGray ? 1 : 0) }
    }

    /// Linear-light premultiplied RGBA (OpenEXR) to 8-bit sRGB with straight alpha.
    /// An image from FFmpeg's `gbrapf32le` planes (linear light, scRGB, premultiplied as OpenEXR stores it).
    public static func fromPlanarGBRAFloat(_ planes: UnsafeRawBufferPointer, width: Int, height: Int) throws -> Image {
        guard width > 0, height > 0, planes.count == width * height * 16 else {
            throw VipsError(operation: "frommemory", message: "\(planes.count) bytes are not \(width) x \(height) float RGBA")
        }
        var out: UnsafeMutablePointer<VipsImage>?
        guard cvips_from_planar_gbra_float(planes.baseAddress!.assumingMemoryBound(to: Float.self), Int32(width), Int32(height), &out) == 0,
              let out else { throw VipsError(operation: "frommemory", message: VipsRuntime.takeErrorMessage()) }
        return Image(out, source: nil)
    }

    public func premultipliedLinearToSRGB() throws -> Image {
        try derive("colourspace") { cvips_premultiplied_linear_to_srgb(pointer, $0) }
    }

    /// Bands `first ..< first + count` (e.g. the colour without alpha).
    public func extractBands(first: Int, count: Int) throws -> Image {
        try derive("extract_band") { cvips_extract_bands(pointer, $0, Int32(first), Int32(count)) }
    }

    /// Composites away the alpha channel onto a solid colour.
    public func flatten(red: Double, green: Double, blue: Double) throws -> Image {
        try derive("flatten") { cvips_flatten(pointer, $0, red, green, blue) }
    }

    /// Where libvips' attention detector (edges, skin, saturation) finds the subject.
    public func attentionCentre() throws -> (x: Int, y: Int) {
        var x: Int32 = 0, y: Int32 = 0
        guard cvips_attention_centre(pointer, &x, &y) == 0 else {
            throw VipsError(operation: "smartcrop", message: VipsRuntime.takeErrorMessage())
        }
        return (Int(x), Int(y))
    }

    /// Where the picture's colour departs most from its mean colour (chroma only): a colourful subject.
    public func colourRarityCentre() throws -> (x: Int, y: Int) {
        var x: Int32 = 0, y: Int32 = 0
        guard cvips_colour_rarity_centre(pointer, &x, &y) == 0 else {
            throw VipsError(operation: "saliency", message: VipsRuntime.takeErrorMessage())
        }
        return (Int(x), Int(y))
    }

    // MARK: Animation

    /// Height of one frame (the whole height for single-frame images).
    public var pageHeight: Int { Int(cvips_page_height(pointer)) }

    /// Frames (each `pageHeight` tall) of an image opened with all its pages.
    public func frames() throws -> [Image] {
        let height = pageHeight
        return try (0..<(self.height / max(height, 1))).map { try crop(left: 0, top: $0 * height, width: width, height: height) }
    }

    /// Frames stacked into one animated image with `source`'s delays and loop count.
    public static func animation(frames: [Image], timingFrom source: Image) throws -> Image {
        var pointers: [UnsafeMutablePointer<VipsImage>?] = frames.map { $0.pointer }
        var out: UnsafeMutablePointer<VipsImage>?
        guard cvips_join_frames(&pointers, Int32(frames.count), source.pointer, &out) == 0, let out else {
            throw VipsError(operation: "arrayjoin", message: VipsRuntime.takeErrorMessage())
        }
        return Image(out, source: nil)
    }

    // MARK: Filters (8-bit sRGB or B_W, alpha last)

    /// Number of bands that are colour (alpha excluded).
    public var colourBands: Int { Int(cvips_colour_bands_count(pointer)) }

    /// Maps each colour band through its own 256-entry table (`tables[band][value]`); alpha is kept.
    public func mapped(through tables: [[UInt8]]) throws -> Image {
        let flat = tables.flatMap { $0 }
        precondition(flat.count == tables.count * 256)
        return try derive("maplut") { out in flat.withUnsafeBufferPointer { cvips_maplut(pointer, out, $0.baseAddress, Int32(tables.count)) } }
    }

    /// Mean value of each band.
    public func bandMeans() throws -> [Double] { try bandStatistics().means }

    /// Minimum and mean of each band.
    public func bandStatistics() throws -> (minimums: [Double], means: [Double]) {
        var minimums = [Double](repeating: 0, count: bands), means = [Double](repeating: 0, count: bands)
        guard cvips_band_stats(pointer, &minimums, &means, Int32(bands)) == 0 else {
            throw VipsError(operation: "stats", message: VipsRuntime.takeErrorMessage())
        }
        return (minimums, means)
    }

    /// 256 counts per band.
    public func histograms() throws -> [[Int]] {
        var counts = [Int32](repeating: 0, count: 256 * bands)
        guard cvips_histograms(pointer, &counts, Int32(bands)) == 0 else {
            throw VipsError(operation: "hist_find", message: VipsRuntime.takeErrorMessage())
        }
        return (0..<bands).map { b in counts[(b * 256)..<(b * 256 + 256)].map(Int.init) }
    }

    public func saturated(by change: Double) throws -> Image {
        try derive("saturation") { cvips_saturation(pointer, $0, change) }
    }

    /// One band of Pillow's `L` (plus alpha when present).
    public func grayscale() throws -> Image {
        try derive("grayscale") { cvips_grayscale(pointer, $0) }
    }

    /// Separable blur by a 1-D kernel (normalised by its sum), edges repeated.
    public func blurred(kernel: [Double]) throws -> Image {
        try derive("blur") { out in kernel.withUnsafeBufferPointer { cvips_blur_kernel(pointer, out, $0.baseAddress, Int32(kernel.count)) } }
    }

    /// À-trous wavelet sharpening (Thumbor's `sharpen`), on luminance only if asked.
    public func waveletSharpened(amount: Double, radius: Double, luminanceOnly: Bool) throws -> Image {
        try derive("sharpen") { cvips_wavelet_sharpen(pointer, $0, amount, radius, luminanceOnly ? 1 : 0) }
    }

    /// Convolution with a row-major `columns`-wide matrix, divided by `scale`; edges repeat.
    public func convolved(matrix: [Double], columns: Int, scale: Double) throws -> Image {
        let rows = matrix.count / columns
        return try derive("conv") { out in
            matrix.withUnsafeBufferPointer { cvips_convolve(pointer, out, $0.baseAddress, Int32(columns), Int32(rows), scale) }
        }
    }

    /// Places the image at (x, y) on a width×height canvas of `background` (one value per band).
    public func embed(x: Int, y: Int, width: Int, height: Int, background: [Double]) throws -> Image {
        try derive("embed") { out in
            background.withUnsafeBufferPointer {
                cvips_embed_background(pointer, out, Int32(x), Int32(y), Int32(width), Int32(height), $0.baseAddress, Int32(background.count))
            }
        }
    }

    public func withAlpha() throws -> Image {
        try derive("addalpha") { cvips_add_alpha(pointer, $0) }
    }

    /// `overlay` composited over this image with its top-left corner at (x, y).
    public func composited(with overlay: Image, x: Int, y: Int) throws -> Image {
        try derive("composite") { cvips_composite_over(pointer, overlay.pointer, $0, Int32(x), Int32(y)) }
    }

    /// Thumbor's noise: one random offset per pixel in [-amount/2, amount/2), on every colour band.
    public func noised(amount: Int, seed: Int) throws -> Image {
        try derive("noise") { cvips_noise(pointer, $0, Int32(amount), Int32(truncatingIfNeeded: seed)) }
    }

    public func roundedCorners(horizontal: Int, vertical: Int, red: Double, green: Double, blue: Double, transparent: Bool) throws -> Image {
        try derive("round_corner") {
            cvips_round_corners(pointer, $0, Int32(horizontal), Int32(vertical), red, green, blue, transparent ? 1 : 0)
        }
    }

    /// Renders the pipeline so far into memory (needed before in-place drawing, and to end sequential reads).
    public func copyToMemory() throws -> Image {
        try derive("copy_memory") { cvips_copy_memory(pointer, $0) }
    }

    /// Draws a one-pixel rectangle outline in place. The image must be in memory (`copyToMemory`).
    public func drawRectangle(left: Int, top: Int, width: Int, height: Int, red: Double, green: Double, blue: Double) throws {
        guard cvips_draw_rect(pointer, red, green, blue, Int32(left), Int32(top), Int32(width), Int32(height)) == 0 else {
            throw VipsError(operation: "draw_rect", message: VipsRuntime.takeErrorMessage())
        }
    }

    /// The pixels as packed bytes, band-interleaved (8-bit images: one byte per band per pixel).
    public func rawPixels() throws -> [UInt8] {
        var size = 0
        guard let memory = vips_image_write_to_memory(pointer, &size) else {
            throw VipsError(operation: "write_to_memory", message: VipsRuntime.takeErrorMessage())
        }
        defer { g_free(memory) }
        return Array(UnsafeRawBufferPointer(start: memory, count: size))
    }

    /// Thumbor's trim box (inclusive edges) around pixels farther than `tolerance` from the reference
    /// corner's colour; nil when every pixel is within it.
    public func trimBox(bottomRightReference: Bool, tolerance: Double) throws -> (left: Int, top: Int, right: Int, bottom: Int)? {
        var found: Int32 = 0, left: Int32 = 0, top: Int32 = 0, right: Int32 = 0, bottom: Int32 = 0
        guard cvips_trim_box(pointer, bottomRightReference ? 1 : 0, tolerance, &found, &left, &top, &right, &bottom) == 0 else {
            throw VipsError(operation: "trim", message: VipsRuntime.takeErrorMessage())
        }
        return found != 0 ? (Int(left), Int(top), Int(right), Int(bottom)) : nil
    }

    // MARK: Encoding

    /// What a decode worker hands back: uncompressed TIFF keeping depth, float, alpha and ICC profile; nil
    /// when the decoded layout is one the loader gets wrong (ImageMagick's CMYK, which loses K).
    public func transferTIFF(fromImageMagick: Bool) throws -> [UInt8]? {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        let status = cvips_transfer_tiff(pointer, fromImageMagick ? 1 : 0, &buffer, &length)
        if status == 2 { return nil }
        guard status == 0, let buffer else { throw VipsError(operation: "tiffsave", message: VipsRuntime.takeErrorMessage()) }
        defer { g_free(buffer) }
        return Array(UnsafeRawBufferPointer(start: buffer, count: length))
    }

    public func encoded(_ options: SaveOptions) throws -> [UInt8] {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        let status: Int32
        switch options {
        case let .jpeg(quality, progressive):
            status = cvips_jpegsave(pointer, Int32(quality), progressive ? 1 : 0, &buffer, &length)
        case let .png(compression):
            status = cvips_pngsave(pointer, Int32(compression), &buffer, &length)
        case let .webp(quality, lossless):
            status = cvips_webpsave(pointer, Int32(quality), lossless ? 1 : 0, &buffer, &length)
        case .gif:
            status = cvips_gifsave(pointer, &buffer, &length)
        case let .avif(quality):
            status = cvips_avifsave(pointer, Int32(quality), &buffer, &length)
        case let .jxl(quality):
            status = cvips_jxlsave(pointer, Int32(quality), &buffer, &length)
        }
        guard status == 0, let buffer else {
            throw VipsError(operation: "\(options.format.rawValue)save", message: VipsRuntime.takeErrorMessage())
        }
        defer { g_free(buffer) }
        return Array(UnsafeRawBufferPointer(start: buffer, count: length))
    }
}
