/// Why a job step failed, and so what happens next.
enum ReviewError: Error, CustomStringConvertible {
    /// The media itself cannot be encoded (unreadable, corrupt, too slow): the job fails at once with the reason.
    case badMedia(String)
    /// Storage, the thumbnail service or ftrack's API: retried with backoff, the renditions kept.
    case transient(String)
    /// The source was removed (or the encoder is stopping) while the job ran.
    case cancelled

    var description: String {
        switch self {
        case let .badMedia(reason), let .transient(reason): reason
        case .cancelled: "cancelled"
        }
    }
}

/// What the executable's still renderer (the thumbnail service) throws: the answer's status decides
/// whether the media is bad or the failure may pass.
public enum StillRenderFailure: Error, Sendable {
    case badMedia(String)
    case transient(String)
}

/// Renders component `source` as a JPEG fitting `box`x`box` through the thumbnail pipeline (its sandboxed
/// decoders for EXR, DPX, PSD and video), throwing `StillRenderFailure`.
public typealias StillRenderer = @Sendable (_ source: String, _ box: Int) async throws -> [UInt8]
