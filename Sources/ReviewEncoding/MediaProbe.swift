import Foundation

/// What ffprobe says about a media file, reduced to what planning and `ftr_meta` need.
struct MediaFacts: Sendable, Equatable {
    var formatName: String
    var codec: String
    var width: Int
    var height: Int
    /// Sample (pixel) aspect ratio; 1 for square pixels.
    var sampleAspect: Double = 1
    /// Degrees the picture is displayed rotated by (phone video): 90 and 270 swap the displayed sides.
    var rotation: Int = 0
    /// `r_frame_rate` and `avg_frame_rate` as FFmpeg writes them ("30000/1001").
    var rFrameRate: String
    var averageFrameRate: String
    var frameCount: Int?
    var duration: Double?
    /// Channels of the first audio stream; nil without audio.
    var audioChannels: Int?
    var audioCodec: String?
    var pixelFormat: String?
    var colorSpace: String?

    /// The size the picture is shown at: pixels stretched by the sample aspect, sides swapped when rotated.
    var displaySize: (width: Int, height: Int) {
        let stretched = max(1, Int((Double(width) * sampleAspect).rounded()))
        return rotation % 180 == 0 ? (stretched, height) : (height, stretched)
    }

    static func rate(_ text: String) -> Double? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let n = Double(parts[0]), let d = Double(parts[1]), d > 0, n > 0 else {
            return parts.count == 1 ? Double(text).flatMap { $0 > 0 ? $0 : nil } : nil
        }
        return n / d
    }

    /// The constant frame rate a rendition is encoded at, as FFmpeg's `-r` takes it. A constant-rate source
    /// keeps its exact rate; a variable one gets its average, snapped to the standard rate it is within 2 % of.
    var outputFrameRate: String? {
        let real = Self.rate(rFrameRate), average = Self.rate(averageFrameRate)
        if let real, let average, abs(real - average) / average < 0.001, real <= 240 { return rFrameRate }
        guard let average = average ?? real, average > 0 else { return nil }
        let standard: [(String, Double)] = [("24000/1001", 24000 / 1001), ("24", 24), ("25", 25), ("30000/1001", 30000 / 1001),
                                            ("30", 30), ("48", 48), ("50", 50), ("60000/1001", 60000 / 1001), ("60", 60)]
        if let near = standard.min(by: { abs($0.1 - average) < abs($1.1 - average) }), abs(near.1 - average) / average < 0.02 {
            return near.0
        }
        return String(format: "%.3f", average)
    }

    var isVariableFrameRate: Bool {
        guard let real = Self.rate(rFrameRate), let average = Self.rate(averageFrameRate) else { return false }
        return abs(real - average) / average >= 0.001
    }

    /// Parses `ffprobe -print_format json -show_format -show_streams`; nil without a video stream.
    static func parse(_ data: Data) -> MediaFacts? {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let streams = root["streams"] as? [[String: Any]],
              let video = streams.first(where: { ($0["codec_type"] as? String) == "video" && !isAttachedPicture($0) }),
              let width = video["width"] as? Int, let height = video["height"] as? Int, width > 0, height > 0 else { return nil }
        let format = root["format"] as? [String: Any] ?? [:]
        var facts = MediaFacts(formatName: format["format_name"] as? String ?? "", codec: video["codec_name"] as? String ?? "",
                               width: width, height: height,
                               rFrameRate: video["r_frame_rate"] as? String ?? "0/0",
                               averageFrameRate: video["avg_frame_rate"] as? String ?? "0/0")
        if let sar = video["sample_aspect_ratio"] as? String, let aspect = rate(sar.replacingOccurrences(of: ":", with: "/")) {
            facts.sampleAspect = aspect
        }
        if let sideData = video["side_data_list"] as? [[String: Any]] {
            for entry in sideData {
                if let rotation = entry["rotation"] as? Int { facts.rotation = ((rotation % 360) + 360) % 360 }
            }
        }
        if let tags = video["tags"] as? [String: Any], let rotate = (tags["rotate"] as? String).flatMap(Int.init) {
            facts.rotation = ((rotate % 360) + 360) % 360
        }
        facts.frameCount = (video["nb_frames"] as? String).flatMap(Int.init)
        facts.duration = (video["duration"] as? String).flatMap(Double.init) ?? (format["duration"] as? String).flatMap(Double.init)
        facts.pixelFormat = video["pix_fmt"] as? String
        facts.colorSpace = video["color_space"] as? String
        if let audio = streams.first(where: { ($0["codec_type"] as? String) == "audio" }) {
            facts.audioChannels = audio["channels"] as? Int ?? 2
            facts.audioCodec = audio["codec_name"] as? String
        }
        return facts
    }

    /// Cover art in an MP4 or MKV is a "video" stream of one picture; it is not the video.
    private static func isAttachedPicture(_ stream: [String: Any]) -> Bool {
        ((stream["disposition"] as? [String: Any])?["attached_pic"] as? Int) == 1
    }
}
