import Metrics

/// The review encoder's metrics (exported with the rest at /metrics).
enum ReviewMetrics {
    /// Jobs queued or running.
    static let queueLength = Gauge(label: "pinhole_encode_queue_length")
    /// Renditions made (MP4s, review images, thumbnails).
    static let encodes = Counter(label: "pinhole_encodes_total")
    /// Jobs failed, by why: the media, or transient failures given up on; and transient failures retried.
    static func failures(_ reason: String) -> Counter {
        Counter(label: "pinhole_encode_failures_total", dimensions: [("reason", reason)])
    }
    /// Seconds of video encoded (per rendition).
    static let mediaSeconds = FloatingPointCounter(label: "pinhole_encoded_media_seconds_total")

    /// Creates every series at start, so that a scrape shows zeros rather than nothing.
    static func register() {
        _ = (queueLength, encodes, mediaSeconds)
        for reason in ["media", "retried", "gave_up"] { _ = failures(reason) }
    }
}
