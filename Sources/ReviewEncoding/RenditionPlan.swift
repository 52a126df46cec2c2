import Foundation

/// Which renditions a source gets, at what size (ftrack's web-review names and boxes).
enum RenditionPlan {
    /// `ftrackreview-mp4` fits 1280x720; the larger renditions are made only for sources larger than the
    /// box below them, and only those configured.
    static let baseBox = (width: 1280, height: 720)
    static let largerHeights = [1080, 1440, 2160]
    static func box(height: Int) -> (width: Int, height: Int) { (height * 16 / 9, height) }

    /// Fits `size` into `box` keeping its aspect ratio, never enlarging; both sides even (H.264 in yuv420p needs them).
    static func fit(_ size: (width: Int, height: Int), into box: (width: Int, height: Int), even: Bool) -> (width: Int, height: Int) {
        let scale = min(Double(box.width) / Double(size.width), Double(box.height) / Double(size.height), 1)
        func side(_ value: Int) -> Int {
            let scaled = Double(value) * scale
            return even ? max(2, Int((scaled / 2).rounded()) * 2) : max(1, Int(scaled.rounded()))
        }
        return (side(size.width), side(size.height))
    }

    /// The video renditions of a source shown at `display` size.
    static func video(display: (width: Int, height: Int), sizes: [Int]) -> [(name: String, width: Int, height: Int)] {
        let base = fit(display, into: baseBox, even: true)
        var plan = [(name: "ftrackreview-mp4", width: base.width, height: base.height)]
        var below = baseBox
        for height in largerHeights {
            let box = box(height: height)
            defer { below = box }
            guard sizes.contains(height), display.width > below.width || display.height > below.height else { continue }
            let fitted = fit(display, into: box, even: true)
            plan.append((name: "ftrackreview-mp4-\(height)", width: fitted.width, height: fitted.height))
        }
        return plan
    }

    /// `ftr_meta` of a video rendition as ftrack's web player reads it: frames counted from 0 to the frame
    /// count (ftrack's own example: 150 frames at 25 fps is `frameIn` 0, `frameOut` 150), the rate as a number.
    static func videoMeta(frames: Int, frameRate: Double, width: Int, height: Int) -> String {
        #"{"frameIn": 0, "frameOut": \#(frames), "frameRate": \#(number(frameRate)), "height": \#(height), "width": \#(width)}"#
    }

    /// `ftr_meta` of a review image.
    static func imageMeta(width: Int, height: Int) -> String {
        #"{"format": "image", "height": \#(height), "width": \#(width)}"#
    }

    /// A whole rate as an integer (25), else at most three decimals (29.97).
    static func number(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        var text = String(format: "%.3f", rounded)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}

/// The FFmpeg command of a source's MP4 renditions: one run, the source decoded once and its picture split
/// to one scaler and encoder per rendition (a 4K master is not decoded again for every size).
enum FFmpegArguments {
    struct Output: Sendable {
        var path: String
        var width: Int
        var height: Int
    }

    static func mp4(source: String, outputs: [Output], progress: String, facts: MediaFacts,
                    configuration: EncodeConfiguration) -> [String] {
        var arguments = ["/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
                         "-progress", progress, "-nostats", "-i", source]
        // Scaled into Rec.709 limited range (what browsers assume for H.264), square pixels, 8-bit 4:2:0.
        var graph = "[0:v:0]split=\(outputs.count)" + outputs.indices.map { "[s\($0)]" }.joined()
        for (index, output) in outputs.enumerated() {
            graph += ";[s\(index)]scale=\(output.width):\(output.height):flags=bicubic\(inputMatrix(facts))"
                + ":out_color_matrix=bt709:out_range=tv,setsar=1,format=yuv420p[v\(index)]"
        }
        arguments += ["-filter_complex", graph]
        for (index, output) in outputs.enumerated() {
            arguments += ["-map", "[v\(index)]"]
            if facts.audioChannels != nil { arguments += ["-map", "0:a:0"] }
            // A constant frame rate: ftrack's player steps frames by frameRate.
            if let rate = facts.outputFrameRate { arguments += ["-fps_mode", "cfr", "-r", rate] }
            arguments += ["-c:v", "libx264", "-preset", configuration.preset, "-crf", String(configuration.crf),
                          "-profile:v", "high", "-pix_fmt", "yuv420p",
                          "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
            if configuration.threads > 0 { arguments += ["-threads", String(configuration.threads)] }
            // Stereo AAC: every browser plays it; 5.1 is folded down.
            if facts.audioChannels != nil { arguments += ["-c:a", "aac", "-b:a", "192k", "-ac", "2", "-ar", "48000"] }
            arguments += ["-movflags", "+faststart", "-map_metadata", "-1", output.path]
        }
        return arguments
    }

    /// A source that does not say its YUV matrix: swscale would take Rec.601, right for SD, a colour shift
    /// for HD (most untagged masters are Rec.709). Tagged sources are converted from what they say.
    static func inputMatrix(_ facts: MediaFacts) -> String {
        let untagged = facts.colorSpace == nil || ["unknown", "reserved", "unspecified"].contains(facts.colorSpace!)
        let yuv = facts.pixelFormat.map { $0.hasPrefix("yuv") || $0.hasPrefix("nv") } ?? true
        guard untagged, yuv else { return "" }
        return facts.height >= 720 ? ":in_color_matrix=bt709" : ":in_color_matrix=bt601"
    }

    static func probe(_ path: String) -> [String] {
        ["/usr/bin/ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path]
    }
}
