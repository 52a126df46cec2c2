import Foundation

/// One source component's review encoding, as recorded on disk. Every step is recorded as it completes,
/// so a job interrupted anywhere (a restart, SIGKILL) resumes without repeating what is done: rendition
/// ids are fixed when planned, a stored rendition is not encoded again, and registration asks ftrack what
/// exists before creating anything.
public struct ReviewJob: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case queued, running, done, failed, cancelled
        public var isFinished: Bool { self == .done || self == .failed || self == .cancelled }
    }

    public enum Kind: String, Codable, Sendable { case video, image }

    /// What became of registering the renditions with ftrack.
    public enum Registration: String, Codable, Sendable {
        case pending
        case registered
        /// No ftrack server is configured: the renditions are in the file store, listed by `pinhole encode status`.
        case notConfigured = "not-configured"
    }

    public var id: String
    /// The source component's id.
    public var source: String
    /// The MD5 of the upload the job was made for (a re-upload makes a new job).
    public var sourceMD5: String?
    public var state: State
    /// Seconds since 1970.
    public var created: Double
    public var updated: Double
    /// Transient failures so far.
    public var attempts = 0
    /// Not run again before this time (backoff after a transient failure).
    public var notBefore: Double = 0
    /// Why the job failed (or was cancelled), or what the last transient failure was.
    public var reason: String?
    /// While running: what it is doing and how far (0...1) that step is.
    public var step: String?
    public var progress: Double?
    /// Set by probing.
    public var kind: Kind?
    /// Seconds of media (video).
    public var mediaSeconds: Double?
    public var renditions: [Rendition] = []
    public var registration: Registration = .pending
    /// The version the renditions were registered on.
    public var versionID: String?

    public init(source: String, sourceMD5: String?, now: Date = Date()) {
        id = UUID().uuidString.lowercased()
        self.source = source
        self.sourceMD5 = sourceMD5
        state = .queued
        created = now.timeIntervalSince1970
        updated = created
    }
}

/// One output of a job: a component of its own, stored by Pinhole's file server under `componentID`.
public struct Rendition: Codable, Sendable, Equatable {
    /// ftrack's component name: `ftrackreview-mp4`, `ftrackreview-mp4-1080`, `ftrackreview-image`, `thumbnail`.
    public var name: String
    public var componentID: String
    public var fileType: String
    public var contentType: String
    /// The box the output fits (even sizes for video).
    public var width: Int
    public var height: Int
    /// `ftr_meta` as registered (JSON text), from the output as probed.
    public var meta: String?
    public var size: Int64?
    /// In the file store.
    public var stored = false
    /// Created in ftrack (component, location, metadata).
    public var registered = false

    public var isThumbnail: Bool { name == Rendition.thumbnailName }
    public static let thumbnailName = "thumbnail"
}
