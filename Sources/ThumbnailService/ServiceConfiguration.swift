import HTTPServing
import Configuration
import ServiceSupport
import Imaging
import ThumborURL
import Vips

/// Which loader fetches sources (Thumbor: LOADER).
public enum LoaderKind: String, Sendable, CaseIterable {
    /// http_loader: the image part is a URL.
    case http
    /// file_loader: the image part is a path under `file_root`.
    case file
    /// file_loader_http_fallback: a file first, then the URL.
    case fileThenHTTP = "file_then_http"
}

/// The thumbnail service's configuration: defaults here, loaded from a YAML file and `PINHOLE_…`
/// environment variables, validated with the offending key named.
public struct ServiceConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8888
    /// HMAC-SHA1 keys. Any key verifies (rotation); the first signs. Thumbor: SECURITY_KEY.
    public var securityKeys: [String] = []
    /// Accept `/unsafe/` URLs. Thumbor: ALLOW_UNSAFE_URL (True there; off here).
    public var allowUnsafe = false
    public var loader: LoaderKind = .fileThenHTTP
    /// Thumbor: FILE_LOADER_ROOT_PATH.
    public var fileRoot = "./data/images"
    /// Hosts the HTTP loader may fetch from. Thumbor: ALLOWED_SOURCES (there, empty = any).
    public var allowedHosts: [String] = ["localhost", "127.0.0.1"]
    /// Also fetch from hosts not in `allowedHosts`: those must resolve to public addresses (or `allowedNetworks`).
    public var allowAnyHost = false
    /// Address ranges a source host not named in `allowedHosts` may resolve to besides public addresses.
    public var allowedNetworks: [AddressRange] = []
    /// A hosts(5) file the HTTP loader reads before the system resolver (empty: none).
    public var hostsFile = ""
    /// Thumbor: HTTP_LOADER_CONNECT_TIMEOUT / HTTP_LOADER_REQUEST_TIMEOUT (seconds).
    public var connectTimeout = 5.0
    public var requestTimeout = 20.0
    /// Thumbor: HTTP_LOADER_MAX_REDIRECTS.
    public var maxRedirects = 5
    /// Largest source accepted, enforced while streaming.
    public var maxSourceBytes = 100 * 1024 * 1024
    /// MP4 and MOV sources longer than this are read in ranges (the frame's packets and the index), never
    /// whole, and may be longer than `maxSourceBytes`: a multi-gigabyte master.
    public var videoRangedAbove: Int64 = 32 * 1024 * 1024
    /// Thumbor: MAX_AGE. 0 = no Cache-Control.
    public var maxAge = 86_400
    /// AUTO_WEBP / AUTO_AVIF: answer with WebP or AVIF when the browser's Accept lists it.
    public var negotiation = FormatNegotiation()
    /// META_CALLBACK_NAME: wrap every /meta answer in this JSONP callback (`?callback=` does it per request).
    public var metaCallbackName = ""
    /// Thumbor: ENABLE_ETAGS.
    public var etags = true
    /// Value of Access-Control-Allow-Origin on thumbnails; empty = none. Thumbor: ACCESS_CONTROL_ALLOW_ORIGIN_HEADER.
    public var corsOrigin = ""
    /// Render threads; 0 = one per core.
    public var workers = 0
    /// Disk result cache (Thumbor: RESULT_STORAGE = file_storage).
    public var resultCache = true
    public var cacheRoot = "./data/cache"
    public var cacheMaxBytes: Int64 = 10 * 1024 * 1024 * 1024
    /// Seconds; 0 = never (Thumbor: RESULT_STORAGE_EXPIRATION_SECONDS).
    public var cacheExpiry = 0.0
    /// Thumbor: RESULT_STORAGE_STORES_UNSAFE.
    public var cacheUnsafe = false
    /// Fetched originals kept on disk (Thumbor: STORAGE = file_storage).
    public var sourceCache = true
    public var sourceCacheRoot = "./data/sources"
    public var sourceCacheMaxBytes: Int64 = 2 * 1024 * 1024 * 1024
    /// Bytes of hot result-cache entries also kept in memory.
    public var cacheMemoryBytes = 64 * 1024 * 1024
    /// Identical concurrent requests render once (off only to measure raw render throughput).
    public var coalesce = true
    /// Renders admitted at once (running or waiting for a render thread); more get 429.
    public var renderQueue = 64
    /// Bytes that concurrent decodes may hold at once (progressive JPEG coefficients); a render that
    /// does not fit waits for earlier ones. One render always runs.
    public var decodeMemoryBytes = 128 * 1024 * 1024
    /// Seconds a request may take before the client gets 504 and the render is abandoned.
    public var requestDeadline = 30.0
    /// Sizes pre-rendered when the file server receives an image or video (Thumbor URL option parts).
    public var prewarmSizes: [String] = ["fit-in/300x300", "fit-in/1024x1024", "fit-in/150x150"]
    /// The source URL pre-warming uses for a component: `{id}` and `{signature}` (the file server's
    /// signature of `id=<id>`) are filled in. Empty: this Pinhole's own file server `/get`. Set it to the
    /// URL form your ftrack puts in thumbnail URLs so that pre-warmed entries are the ones it asks for.
    public var prewarmSourceURL = ""
    public var render = RenderSettings()
    public var vips = VipsSettings()
    /// Decode workers for PSD, DPX, PDF, SVG and EXR (`IsolatedDecoding`).
    public var decoders = DecoderSettings()

    /// The server's own libvips settings: with isolation, the loaders that run in decode workers are not
    /// even enabled here (their bytes never reach them in this process).
    public var serverVips: VipsSettings {
        var settings = vips
        if decoders.isolate {
            settings.allowedUntrustedLoaders.removeAll { IsolatedDecoding.workerLoaderClasses.contains($0) }
        }
        return settings
    }

    /// The loader classes a decode worker enables: the configured ones that run in workers.
    public var workerLoaderClasses: [String] {
        vips.allowedUntrustedLoaders.filter { IsolatedDecoding.workerLoaderClasses.contains($0) }
    }

    /// What a client of the thumbnail port may do before it is cut off.
    public var limits = ConnectionLimits()

    public init() {}

    /// Every key, its Thumbor equivalent and meaning: printed by `pinhole config keys` and mirrored in
    /// `config/pinhole.example.yaml`.
    public static let keys: [(key: String, thumbor: String, meaning: String)] = [
        ("thumbnails.host", "-i/--ip", "address to listen on"),
        ("thumbnails.port", "-p/--port", "port to listen on"),
        ("thumbnails.security_keys", "SECURITY_KEY", "list of signing keys; any verifies, the first signs"),
        ("thumbnails.allow_unsafe", "ALLOW_UNSAFE_URL", "accept /unsafe/ URLs"),
        ("thumbnails.loader", "LOADER", "http | file | file_then_http"),
        ("thumbnails.file_root", "FILE_LOADER_ROOT_PATH", "root directory of the file loader"),
        ("thumbnails.allowed_hosts", "ALLOWED_SOURCES", "hosts the HTTP loader may fetch from"),
        ("thumbnails.allow_any_host", "(ALLOWED_SOURCES = [])", "also fetch from hosts not in allowed_hosts, if they resolve to public addresses"),
        ("thumbnails.allowed_networks", "-", "address ranges (CIDR) hosts not in allowed_hosts may resolve to; others must be public"),
        ("thumbnails.hosts_file", "-", "hosts(5) file the HTTP loader consults before DNS"),
        ("thumbnails.connect_timeout", "HTTP_LOADER_CONNECT_TIMEOUT", "seconds"),
        ("thumbnails.request_timeout", "HTTP_LOADER_REQUEST_TIMEOUT", "seconds"),
        ("thumbnails.max_redirects", "HTTP_LOADER_MAX_REDIRECTS", "redirects followed (0 = none)"),
        ("thumbnails.max_source_bytes", "(tornado max_body_size)", "largest source fetched"),
        ("thumbnails.video_ranged_above", "-", "MP4/MOV sources longer than this are read in ranges (index and the frame's packets), never whole"),
        ("thumbnails.max_pixels", "MAX_PIXELS", "largest source or output, in pixels"),
        ("thumbnails.max_width", "MAX_WIDTH", "clamp requested width and normalise sources (0 = off)"),
        ("thumbnails.max_height", "MAX_HEIGHT", "clamp requested height and normalise sources (0 = off)"),
        ("thumbnails.respect_orientation", "RESPECT_ORIENTATION", "apply EXIF orientation"),
        ("thumbnails.quality", "QUALITY", "JPEG quality"),
        ("thumbnails.webp_quality", "WEBP_QUALITY", "WebP quality (100 = lossless)"),
        ("thumbnails.avif_quality", "AVIF_QUALITY", "AVIF quality"),
        ("thumbnails.png_compression", "PNG_COMPRESSION_LEVEL", "zlib level 0-9"),
        ("thumbnails.progressive_jpeg", "PROGRESSIVE_JPEG", "progressive JPEG output"),
        ("thumbnails.jpeg_shrink_reserve", "(Pillow draft)", "JPEG shrink-on-load keeps this factor above the target"),
        ("thumbnails.jpeg_decoder", "-", "turbojpeg (libjpeg-turbo, scaled) | libvips"),
        ("thumbnails.jpeg_draft_scales", "(Pillow draft)", "decode scale as Pillow's draft picks it (1/2, 1/4, 1/8; Thumbor's pixels); off: any eighth that covers"),
        ("thumbnails.jpeg_fast_dct", "-", "libjpeg-turbo's fast integer IDCT at full scale (off: Pillow's accurate one)"),
        ("thumbnails.max_age", "MAX_AGE", "Cache-Control max-age in seconds (0 = none)"),
        ("thumbnails.auto_webp", "AUTO_WEBP", "WebP for browsers whose Accept lists image/webp (q > 0)"),
        ("thumbnails.auto_avif", "AUTO_AVIF", "AVIF for browsers whose Accept lists image/avif (q > 0)"),
        ("thumbnails.keep_animation", "ALLOW_ANIMATED_GIFS", "animated GIF/WebP stay animated (off: first frame)"),
        ("thumbnails.animated_webp", "-", "with auto_webp, animated GIFs become animated WebP (off: they stay GIF, as in Thumbor)"),
        ("thumbnails.max_animation_frames", "-", "animations with more frames render from their first frame"),
        ("thumbnails.auto_png_to_jpg", "AUTO_PNG_TO_JPG", "PNG sources without transparency come out as JPEG"),
        ("thumbnails.meta_callback_name", "META_CALLBACK_NAME", "JSONP callback wrapping every /meta answer"),
        ("thumbnails.filters", "FILTERS", "filters a URL may use (default: all 30 built-in ones)"),
        ("thumbnails.smart_detector", "DETECTORS", "colour | attention | none: how smart crops find the subject"),
        ("thumbnails.etags", "ENABLE_ETAGS", "send ETag and answer If-None-Match"),
        ("thumbnails.cors_origin", "ACCESS_CONTROL_ALLOW_ORIGIN_HEADER", "Access-Control-Allow-Origin value"),
        ("thumbnails.workers", "ENGINE_THREADPOOL_SIZE", "render threads (0 = cores)"),
        ("thumbnails.vips_concurrency", "-", "libvips threads per image"),
        ("thumbnails.result_cache", "RESULT_STORAGE", "keep rendered thumbnails on disk"),
        ("thumbnails.cache_root", "RESULT_STORAGE_FILE_STORAGE_ROOT_PATH", "result cache directory"),
        ("thumbnails.cache_max_bytes", "-", "result cache size cap (least recently used evicted)"),
        ("thumbnails.cache_expiry", "RESULT_STORAGE_EXPIRATION_SECONDS", "seconds a result stays valid (0 = never)"),
        ("thumbnails.cache_unsafe", "RESULT_STORAGE_STORES_UNSAFE", "cache /unsafe/ URLs too"),
        ("thumbnails.source_cache", "STORAGE", "keep fetched originals on disk"),
        ("thumbnails.source_cache_root", "FILE_STORAGE_ROOT_PATH", "source cache directory"),
        ("thumbnails.source_cache_max_bytes", "-", "source cache size cap"),
        ("thumbnails.cache_memory_bytes", "-", "bytes of hot result-cache entries also kept in memory"),
        ("thumbnails.coalesce", "-", "identical concurrent requests render once"),
        ("thumbnails.render_queue", "-", "renders admitted at once; more are answered 429"),
        ("thumbnails.decode_memory_bytes", "-", "bytes concurrent decodes may hold; larger renders wait their turn"),
        ("thumbnails.request_deadline", "-", "seconds before a request answers 504 and its render is abandoned"),
        ("thumbnails.prewarm_sizes", "-", "sizes rendered ahead when the file server receives an image or video"),
        ("thumbnails.prewarm_source_url", "-", "source URL template for pre-warming a component ({id}, {signature})"),
        ("thumbnails.untrusted_loaders", "-", "libvips loader classes re-enabled after blocking untrusted ones"),
        ("thumbnails.decoder_isolation", "-", "decode PSD, DPX, PDF, SVG and EXR in confined worker processes"),
        ("thumbnails.decoder_workers", "-", "decode worker processes kept running"),
        ("thumbnails.decoder_timeout", "-", "seconds a decode may take before its worker is killed (4xx)"),
        ("thumbnails.decoder_cpu_seconds", "-", "CPU seconds a decode may use (RLIMIT_CPU)"),
        ("thumbnails.decoder_memory_bytes", "-", "address-space limit of a decode worker (RLIMIT_AS)"),
        ("thumbnails.decoder_recycle_after", "-", "jobs after which a decode worker is replaced"),
    ] + ConnectionLimits.keys(section: "thumbnails").map { ($0.key, "-", $0.meaning) }
}

extension ServiceConfiguration {
    /// Reads the `thumbnails` section; missing keys keep their defaults.
    public init(reader: ConfigReader) throws {
        self.init()
        let r = ValueReader(reader: reader, prefix: "thumbnails")
        try limits.read(r)
        host = try r.string("host") ?? host
        port = try r.int("port", in: 0...65535) ?? port
        securityKeys = try r.strings("security_keys") ?? securityKeys
        if securityKeys.contains(where: \.isEmpty) { throw ConfigurationError(key: "thumbnails.security_keys", problem: "keys must not be empty") }
        allowUnsafe = try r.bool("allow_unsafe") ?? allowUnsafe
        if let text = try r.string("loader") {
            guard let kind = LoaderKind(rawValue: text) else {
                throw ConfigurationError(key: "thumbnails.loader", problem: "'\(text)' is not one of \(LoaderKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            loader = kind
        }
        fileRoot = try r.string("file_root") ?? fileRoot
        allowedHosts = try r.strings("allowed_hosts") ?? allowedHosts
        allowAnyHost = try r.bool("allow_any_host") ?? allowAnyHost
        if let ranges = try r.strings("allowed_networks") {
            allowedNetworks = try ranges.map { text in
                guard let range = AddressRange(text) else {
                    throw ConfigurationError(key: "thumbnails.allowed_networks", problem: "'\(text)' is not an address or a CIDR range")
                }
                return range
            }
        }
        hostsFile = try r.string("hosts_file") ?? hostsFile
        connectTimeout = try r.double("connect_timeout", above: 0) ?? connectTimeout
        requestTimeout = try r.double("request_timeout", above: 0) ?? requestTimeout
        maxRedirects = try r.int("max_redirects", in: 0...20) ?? maxRedirects
        maxSourceBytes = try r.int("max_source_bytes", in: 1...Int.max) ?? maxSourceBytes
        videoRangedAbove = try r.int("video_ranged_above", in: 1...Int.max).map(Int64.init) ?? videoRangedAbove
        render.maxPixels = try r.int("max_pixels", in: 1...Int.max) ?? render.maxPixels
        render.maxWidth = try r.int("max_width", in: 0...Int(Int32.max)) ?? render.maxWidth
        render.maxHeight = try r.int("max_height", in: 0...Int(Int32.max)) ?? render.maxHeight
        render.respectOrientation = try r.bool("respect_orientation") ?? render.respectOrientation
        if let name = try r.string("smart_detector") {
            guard let detector = SmartDetector(rawValue: name) else {
                throw ConfigurationError(key: "thumbnails.smart_detector", problem: "'\(name)' is not colour, attention or none")
            }
            render.smartDetector = detector
        }
        if let names = try r.strings("filters") {
            let unknown = names.filter { !ThumborFilter.builtinNames.contains($0) }
            guard unknown.isEmpty else {
                throw ConfigurationError(key: "thumbnails.filters", problem: "unknown filter(s) \(unknown.joined(separator: ", ")); "
                                         + "known: \(ThumborFilter.builtinNames.joined(separator: ", "))")
            }
            render.enabledFilters = Set(names)
        }
        render.jpegQuality = try r.int("quality", in: 1...100) ?? render.jpegQuality
        render.webpQuality = try r.int("webp_quality", in: 1...100) ?? render.jpegQuality
        render.avifQuality = try r.int("avif_quality", in: 1...100) ?? render.jpegQuality
        render.jxlQuality = render.jpegQuality
        render.pngCompression = try r.int("png_compression", in: 0...9) ?? render.pngCompression
        render.progressiveJPEG = try r.bool("progressive_jpeg") ?? render.progressiveJPEG
        render.jpegShrinkReserve = try r.double("jpeg_shrink_reserve", above: 0) ?? render.jpegShrinkReserve
        if let decoder = try r.string("jpeg_decoder") {
            guard ["turbojpeg", "libvips"].contains(decoder) else {
                throw ConfigurationError(key: "thumbnails.jpeg_decoder", problem: "'\(decoder)' is not one of turbojpeg, libvips")
            }
            render.turboJPEG = decoder == "turbojpeg"
        }
        render.jpegFastDCT = try r.bool("jpeg_fast_dct") ?? render.jpegFastDCT
        render.jpegDraftScales = try r.bool("jpeg_draft_scales") ?? render.jpegDraftScales
        maxAge = try r.int("max_age", in: 0...Int(Int32.max)) ?? maxAge
        negotiation.autoWebP = try r.bool("auto_webp") ?? negotiation.autoWebP
        negotiation.autoAVIF = try r.bool("auto_avif") ?? negotiation.autoAVIF
        render.autoPNGToJPG = try r.bool("auto_png_to_jpg") ?? render.autoPNGToJPG
        render.keepAnimation = try r.bool("keep_animation") ?? render.keepAnimation
        render.animatedWebP = try r.bool("animated_webp") ?? render.animatedWebP
        render.maxAnimationFrames = try r.int("max_animation_frames", in: 1...10_000) ?? render.maxAnimationFrames
        metaCallbackName = try r.string("meta_callback_name") ?? metaCallbackName
        if !metaCallbackName.isEmpty, !JSONPCallback.isValid(metaCallbackName) {
            throw ConfigurationError(key: "thumbnails.meta_callback_name", problem: "'\(metaCallbackName)' is not a JavaScript identifier path")
        }
        etags = try r.bool("etags") ?? etags
        corsOrigin = try r.string("cors_origin") ?? corsOrigin
        workers = try r.int("workers", in: 0...1024) ?? workers
        vips.concurrency = try r.int("vips_concurrency", in: 0...256) ?? vips.concurrency
        vips.allowedUntrustedLoaders = try r.strings("untrusted_loaders") ?? vips.allowedUntrustedLoaders
        resultCache = try r.bool("result_cache") ?? resultCache
        cacheRoot = try r.string("cache_root") ?? cacheRoot
        cacheMaxBytes = Int64(try r.int("cache_max_bytes", in: 0...Int.max) ?? Int(cacheMaxBytes))
        cacheExpiry = Double(try r.int("cache_expiry", in: 0...Int.max) ?? Int(cacheExpiry))
        cacheUnsafe = try r.bool("cache_unsafe") ?? cacheUnsafe
        sourceCache = try r.bool("source_cache") ?? sourceCache
        sourceCacheRoot = try r.string("source_cache_root") ?? sourceCacheRoot
        sourceCacheMaxBytes = Int64(try r.int("source_cache_max_bytes", in: 0...Int.max) ?? Int(sourceCacheMaxBytes))
        cacheMemoryBytes = try r.int("cache_memory_bytes", in: 0...Int.max) ?? cacheMemoryBytes
        coalesce = try r.bool("coalesce") ?? coalesce
        renderQueue = try r.int("render_queue", in: 1...100_000) ?? renderQueue
        decodeMemoryBytes = try r.int("decode_memory_bytes", in: 0...Int.max) ?? decodeMemoryBytes
        requestDeadline = try r.double("request_deadline", above: 0) ?? requestDeadline
        prewarmSizes = try r.strings("prewarm_sizes") ?? prewarmSizes
        prewarmSourceURL = try r.string("prewarm_source_url") ?? prewarmSourceURL
        decoders.isolate = try r.bool("decoder_isolation") ?? decoders.isolate
        decoders.workers = try r.int("decoder_workers", in: 1...64) ?? decoders.workers
        decoders.timeout = try r.double("decoder_timeout", above: 0) ?? decoders.timeout
        decoders.cpuSeconds = try r.int("decoder_cpu_seconds", in: 1...3600) ?? decoders.cpuSeconds
        decoders.memoryBytes = Int64(try r.int("decoder_memory_bytes", in: 64 << 20...Int.max) ?? Int(decoders.memoryBytes))
        decoders.recycleAfter = try r.int("decoder_recycle_after", in: 1...1_000_000) ?? decoders.recycleAfter
    }
}

