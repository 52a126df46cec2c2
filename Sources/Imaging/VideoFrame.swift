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
        // Seeking before -i is fast (from the nearest keyframe) and accurate (FFmpeg decodes up to the time).
        let seek = position.map { $0.hasPrefix("-") ? ["-sseof", $0] : ["-ss", $0] } ?? []
        let (status, png, reason) = try Subprocess.run(on: bytes, suffix: ".video", timeout: timeout) { input in
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1"] + seek
                + ["-i", input, "-frames:v", "1",
                   "-vf", "scale=trunc(iw*sar/2)*2:ih:flags=lanczos+accurate_rnd+full_chroma_int,setsar=1",
                   "-pix_fmt", "rgb24", "-f", "image2pipe", "-c:v", "png", "-"]
        }
        // FFmpeg can exit 0 without writing a frame (a time past the end): check the bytes.
        guard status == 0, png.count > 8, png.starts(with: [0x89, 0x50, 0x4E, 0x47]) else {
            let at = position.map { " at \($0)" } ?? ""
            throw .workerRefused("source video has no frame\(at) Pinhole could decode (\(reason.isEmpty ? "no frame" : reason))")
        }
        return png
    }
}
