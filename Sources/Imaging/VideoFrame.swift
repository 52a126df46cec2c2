import Foundation

/// A frame of a video, taken by the `ffmpeg` program (Debian's FFmpeg is a GPL-2+ build: run as a
/// separate program, it leaves Pinhole's own licence alone; linking libav* would not). Runs inside a
/// decode worker, so it inherits the worker's confinement (no network, rlimits, private temporary
/// directory), under `timeout -s KILL` of its own.
public enum VideoFrame {
    /// The frame at `position` (`still(pos)`: seconds or `[HH:]MM:SS[.frac]`, negative from the end; nil
    /// for the first) of the video in the file at `path` (RGB, square pixels), or why there is
    /// none: a position past the end gives no frame (FFmpeg still exits 0), which is a 400. As an
    /// uncompressed TIFF, what a worker hands back anyway: no PNG to encode and decode on the way.
    public static func frame(atPath path: String, at position: String?, timeout: Double) throws(RenderError) -> [UInt8] {
        // Seeking before -i is fast (from the nearest keyframe, through the index) and accurate (FFmpeg
        // decodes up to the time). MP4 and MOV need seeking (the index may sit at the end): a file, not a pipe.
        let seek = position.map { $0.hasPrefix("-") ? ["-sseof", $0] : ["-ss", $0] } ?? []
        let (status, tiff, reason) = try Subprocess.run(onFile: path, timeout: timeout) { input in
            ["/usr/bin/ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1"] + seek
                + ["-i", input, "-frames:v", "1",
                   "-vf", "scale=trunc(iw*sar/2)*2:ih:flags=lanczos+accurate_rnd+full_chroma_int,setsar=1",
                   "-pix_fmt", "rgb24", "-f", "image2pipe", "-c:v", "tiff", "-compression_algo", "raw", "-"]
        }
        // FFmpeg can exit 0 without writing a frame (a time past the end): check the bytes.
        guard status == 0, tiff.count > 8, tiff.starts(with: [0x49, 0x49, 0x2A, 0x00]) || tiff.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) else {
            let at = position.map { " at \($0)" } ?? ""
            throw .workerRefused("source video has no frame\(at) Pinhole could decode (\(reason.isEmpty ? "no frame" : reason))")
        }
        return tiff
    }

    /// What `/meta` reports of a video: duration, frame rate and frame count of its first video stream,
    /// from the container's index (`ffprobe`, no decoding). Nil when FFmpeg finds no video stream.
    public static func facts(atPath path: String, timeout: Double) throws(RenderError) -> VideoFacts? {
        let (status, output, _) = try Subprocess.run(onFile: path, timeout: timeout) { input in
            ["/usr/bin/ffprobe", "-v", "error", "-select_streams", "v:0",
             "-show_entries", "stream=avg_frame_rate,r_frame_rate,nb_frames,duration:format=duration", "-of", "flat", input]
        }
        guard status == 0 else { return nil }
        return VideoFacts(ffprobeFlat: String(decoding: output, as: UTF8.self))
    }

    /// The first video stream's packets (decode order) as FFmpeg's index lists them, read from a file
    /// whose media data may be missing (a sparse excerpt: only the container's boxes are there yet). The
    /// demuxer reads each packet's bytes, but their places, sizes, times and keyframe flags come from the
    /// index; the last line is the file's duration (what `-sseof` counts from). Parsers are off (`noparse`): on missing bytes a parser would clear the keyframe flags the
    /// index set. `firstOnly`: just the opening packets, enough for the first frame.
    public static func packets(atPath path: String, firstOnly: Bool, timeout: Double) throws(RenderError) -> [UInt8] {
        let (status, output, reason) = try Subprocess.run(onFile: path, timeout: timeout) { input in
            ["/usr/bin/ffprobe", "-v", "error", "-fflags", "+noparse+nofillin", "-select_streams", "v:0"]
                + (firstOnly ? ["-read_intervals", "%+#\(VideoExcerpt.openingPackets)"] : [])
                + ["-show_entries", "packet=pts_time,dts_time,pos,size,flags:format=duration", "-of", "compact=p=0", input]
        }
        guard status == 0, !output.isEmpty else {
            throw .workerRefused("source video has no frame Pinhole could decode (\(reason.isEmpty ? "no video packets" : reason))")
        }
        return output
    }
}

/// A video's duration (seconds), frame rate (frames per second) and frame count, for `/meta`.
public struct VideoFacts: Sendable, Equatable {
    public var duration: Double
    public var frameRate: Double
    public var frameCount: Int

    public init(duration: Double, frameRate: Double, frameCount: Int) {
        self.duration = duration
        self.frameRate = frameRate
        self.frameCount = frameCount
    }

    /// From `ffprobe -of flat` (`streams.stream.0.avg_frame_rate="25/1"`, `format.duration="2.000000"`):
    /// the stream's average rate (else its base rate), the stream's duration (else the file's), and the
    /// frame count the container records (MP4, MOV), else duration x rate rounded (Matroska and WebM keep
    /// no count; counting would read every packet).
    init?(ffprobeFlat text: String) {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        func rate(_ key: String) -> Double? {
            guard let text = values["streams.stream.0.\(key)"] else { return nil }
            let parts = text.split(separator: "/").compactMap { Double($0) }
            guard parts.count == 2, parts[1] > 0, parts[0] > 0 else { return nil }
            return parts[0] / parts[1]
        }
        guard let frameRate = rate("avg_frame_rate") ?? rate("r_frame_rate") else { return nil }
        guard let duration = values["streams.stream.0.duration"].flatMap(Double.init) ?? values["format.duration"].flatMap(Double.init),
              duration.isFinite, duration >= 0 else { return nil }
        let recorded = values["streams.stream.0.nb_frames"].flatMap(Int.init)
        self.init(duration: duration, frameRate: frameRate, frameCount: recorded ?? Int((duration * frameRate).rounded()))
    }

    /// One line for the worker's answer, and back.
    public var line: String { "video=\(duration),\(frameRate),\(frameCount)" }

    public init?(line: Substring) {
        guard line.hasPrefix("video=") else { return nil }
        let parts = line.dropFirst("video=".count).split(separator: ",")
        guard parts.count == 3, let duration = Double(parts[0]), let rate = Double(parts[1]), let count = Int(parts[2]) else { return nil }
        self.init(duration: duration, frameRate: rate, frameCount: count)
    }
}
