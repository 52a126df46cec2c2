import Metrics

/// The thumbnail service's metrics (swift-metrics; the executable exports them for Prometheus at /metrics).
enum ServiceMetrics {
    static let renders = Counter(label: "pinhole_renders_total")
    static let cacheHits = Counter(label: "pinhole_cache_hits_total")
    /// Hits answered by `CacheHitFastPath` in the channel pipeline (a subset of `cacheHits`).
    static let fastPathHits = Counter(label: "pinhole_cache_fast_path_hits_total")
    static let cacheMisses = Counter(label: "pinhole_cache_misses_total")
    static let rejected = Counter(label: "pinhole_renders_rejected_total")
    static let deadlines = Counter(label: "pinhole_deadlines_exceeded_total")
    static let sourceFetches = Counter(label: "pinhole_source_fetches_total")
    /// Bytes of large videos read in ranges (`VideoExcerpt`) rather than whole.
    static let rangedSourceBytes = Counter(label: "pinhole_ranged_source_bytes_total")
    /// Why a decode worker gave no image: it crashed, timed out, or the bytes had done so before.
    enum DecoderFailure: String { case crash, timeout, remembered }
    static func decoderFailures(_ reason: DecoderFailure) -> Counter {
        Counter(label: "pinhole_decoder_failures_total", dimensions: [("reason", reason.rawValue)])
    }
    /// Decode, transform and encode of one render (the source already loaded), by source format.
    static func renderDuration(format: String) -> Metrics.Timer {
        Metrics.Timer(label: "pinhole_render_duration_seconds", dimensions: [("format", format)])
    }
    /// Renders admitted: loading their source, waiting for a render thread, or rendering.
    static let renderQueueDepth = Gauge(label: "pinhole_render_queue_depth")
    /// 1 while the result cache cannot be written and thumbnails are served uncached.
    static let cacheDegraded = Gauge(label: "pinhole_cache_degraded")
}
