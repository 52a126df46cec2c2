import Foundation

/// A frame of a video, taken by the `ffmpeg` program (Debian's FFmpeg is a GPL-2+ build: run as a
/// separate program, it leaves Pinhole's own licence alone; linking libav* would not). Runs inside a
/// decode worker, so it inherits the worker's confinement (no network, rlimits, private temporary
/// directory), under `timeout -s KILL` of its own.
public enum VideoFrame {
    /// The frame at `position` (`still(pos)`: seconds or `[HH:]MM:SS[.frac]`, negative from the end; nil
    /// for the first) as PNG (RGB, square pixels), or why there is none: a position past the end gives
    /// no frame (FFmpeg still exits 0), which is a 400.
    public static func frame(of bytes: UnsafeRawBufferPointer, at position: String?, timeout: Double) throws(RenderError) -> [UInt8] {
        // MP4 and MOV need seeking (the index may sit at the end): FFmpeg reads a file, not a pipe.
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let input = directory + "/video-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: input, contents: Data(bytes)) else {
            throw .decoderFailed("cannot write the video for FFmpeg")
        }
        defer { try? FileManager.default.removeItem(atPath: input) }
        // Seeking before -i is fast (from the nearest keyframe) and accurate (FFmpeg decodes up to the time).
        var seek: [String] = []
        if let position {
            seek = position.hasPrefix("-") ? ["-sseof", position] : ["-ss", position]
        }
        let arguments = ["/usr/bin/timeout", "-s", "KILL", String(Int(timeout.rounded(.up))), "ffmpeg", "-nostdin",
                         "-hide_banner", "-loglevel", "error", "-threads", "1"] + seek + ["-i", input, "-frames:v", "1",
                         "-vf", "scale=trunc(iw*sar/2)*2:ih:flags=lanczos+accurate_rnd+full_chroma_int,setsar=1",
                         "-pix_fmt", "rgb24", "-f", "image2pipe", "-c:v", "png", "-"]
        let errorsPath = input + ".log"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        guard let (status, png) = Subprocess.run(arguments, errorsTo: errorsPath) else {
            throw .decoderFailed("cannot run ffmpeg")
        }
        let message = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        // FFmpeg can exit 0 without writing a frame (a stream with no decodable picture): check the bytes.
        guard status == 0, png.count > 8, png.starts(with: [0x89, 0x50, 0x4E, 0x47]) else {
            let reason = message.split(separator: "\n").last.map(String.init) ?? "no frame"
            let at = position.map { " at \($0)" } ?? ""
            throw .workerRefused("source video has no frame\(at) Pinhole could decode (\(reason.prefix(200)))")
        }
        return Array(png)
    }
}
