import Configuration
import ServiceSupport

/// The review encoder's configuration (section `encode`): what renditions to make, how hard FFmpeg may
/// work, how failures are retried, and the ftrack server the renditions are registered with.
public struct EncodeConfiguration: Sendable {
    /// Encode uploads at all (`pinhole encode ID` works either way).
    public var enabled = true
    /// The job queue and the encoders' scratch space (kept beside the file store: renditions are
    /// renamed into it, so they should share a filesystem).
    public var directory = "./data/review"
    /// Encodes at a time.
    public var concurrency = 1
    /// Larger MP4 renditions made besides `ftrackreview-mp4` (720p) when the source is larger: 1080, 1440, 2160.
    public var sizes: [Int] = [1080]
    /// libx264's preset and constant rate factor.
    public var preset = "medium"
    public var crf = 20
    /// FFmpeg's threads per encode (0: FFmpeg's choice).
    public var threads = 0
    /// Encodes run at the idle scheduling class and this niceness, so thumbnails always go first.
    public var idlePriority = true
    public var niceness = 19
    /// An encode may take this many seconds per second of media (and at least `minimum_timeout`).
    public var timeoutFactor = 20.0
    public var minimumTimeout = 120.0
    /// Transient failures (storage, ftrack's API) are retried this often, waiting `retry_seconds` doubled each time (at most 10 minutes).
    public var maxAttempts = 8
    public var retrySeconds = 2.0
    /// Review images and thumbnails fit these boxes (long edge, pixels).
    public var imageSize = 1920
    public var thumbnailSize = 1024
    /// ftrack's server (`https://studio.ftrackapp.com` or the self-hosted URL); empty: renditions are made, not registered.
    public var ftrackServer = ""
    public var apiUser = ""
    /// From the environment (`PINHOLE_ENCODE_API_KEY`); never logged.
    public var apiKey = ""
    /// Seconds one API call may take.
    public var apiTimeout = 30.0

    public init() {}

    public var registers: Bool { !ftrackServer.isEmpty }

    public static let keys: [(key: String, meaning: String)] = [
        ("encode.enabled", "encode review renditions of uploaded video and stills"),
        ("encode.directory", "job queue and scratch directory"),
        ("encode.concurrency", "encodes at a time"),
        ("encode.sizes", "larger MP4 renditions besides 720p: any of 1080, 1440, 2160"),
        ("encode.preset", "libx264 preset"),
        ("encode.crf", "libx264 constant rate factor"),
        ("encode.threads", "FFmpeg threads per encode (0: FFmpeg's choice)"),
        ("encode.idle_priority", "run encodes in the idle scheduling class"),
        ("encode.niceness", "niceness of encodes"),
        ("encode.timeout_factor", "seconds an encode may take per second of media"),
        ("encode.minimum_timeout", "the least time an encode is given, seconds"),
        ("encode.max_attempts", "tries of a job failing transiently"),
        ("encode.retry_seconds", "first wait before a retry (doubled each time)"),
        ("encode.image_size", "long edge of ftrackreview-image"),
        ("encode.thumbnail_size", "long edge of the version thumbnail"),
        ("encode.ftrack_server", "ftrack server URL to register renditions with (empty: not registered)"),
        ("encode.api_user", "ftrack API user"),
        ("encode.api_key", "ftrack API key (set PINHOLE_ENCODE_API_KEY; never logged)"),
        ("encode.api_timeout", "seconds an ftrack API call may take"),
    ]
}

extension EncodeConfiguration {
    /// Reads the `encode` section; missing keys keep their defaults.
    public init(reader: ConfigReader) throws {
        self.init()
        let r = ValueReader(reader: reader, prefix: "encode")
        enabled = try r.bool("enabled") ?? enabled
        directory = try r.string("directory") ?? directory
        concurrency = try r.int("concurrency", in: 1...16) ?? concurrency
        if let values = try r.strings("sizes") {
            // An empty list (`PINHOLE_ENCODE_SIZES=`): 720p alone.
            sizes = try values.map(\.trimmed).filter { !$0.isEmpty }.map { text in
                guard let size = Int(text), RenditionPlan.largerHeights.contains(size) else {
                    throw ConfigurationError(key: "encode.sizes", problem: "'\(text)' is not one of 1080, 1440, 2160")
                }
                return size
            }
        }
        preset = try r.string("preset") ?? preset
        let presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
        guard presets.contains(preset) else {
            throw ConfigurationError(key: "encode.preset", problem: "'\(preset)' is not one of \(presets.joined(separator: ", "))")
        }
        crf = try r.int("crf", in: 0...51) ?? crf
        threads = try r.int("threads", in: 0...64) ?? threads
        idlePriority = try r.bool("idle_priority") ?? idlePriority
        niceness = try r.int("niceness", in: 0...19) ?? niceness
        timeoutFactor = try r.double("timeout_factor", above: 0) ?? timeoutFactor
        minimumTimeout = try r.double("minimum_timeout", above: 0) ?? minimumTimeout
        maxAttempts = try r.int("max_attempts", in: 1...100) ?? maxAttempts
        retrySeconds = try r.double("retry_seconds", above: 0) ?? retrySeconds
        imageSize = try r.int("image_size", in: 16...16384) ?? imageSize
        thumbnailSize = try r.int("thumbnail_size", in: 16...4096) ?? thumbnailSize
        ftrackServer = try r.string("ftrack_server") ?? ftrackServer
        while ftrackServer.hasSuffix("/") { ftrackServer.removeLast() }
        if !ftrackServer.isEmpty && !(ftrackServer.hasPrefix("http://") || ftrackServer.hasPrefix("https://")) {
            throw ConfigurationError(key: "encode.ftrack_server", problem: "'\(ftrackServer)' is not an http(s) URL")
        }
        apiUser = try r.string("api_user") ?? apiUser
        apiKey = try r.string("api_key") ?? apiKey
        if registers && (apiUser.isEmpty || apiKey.isEmpty) {
            throw ConfigurationError(key: "encode.api_key", problem: "encode.ftrack_server is set: encode.api_user and encode.api_key (PINHOLE_ENCODE_API_KEY) are needed too")
        }
        apiTimeout = try r.double("api_timeout", above: 0) ?? apiTimeout
    }
}
