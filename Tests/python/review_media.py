"""Review-media test files made with the real FFmpeg (/usr/bin/ffmpeg), each on demand and cached.

Every maker takes a directory and returns the Path of its file there; if the file already exists it is
returned as is (files are written under a temporary name and renamed, so a cached file is never half
made). Sources are lavfi generators (testsrc2, sine, aevalsrc), so nothing is downloaded.
"""
import json
import os
import random
import subprocess
from pathlib import Path

FFMPEG = ["/usr/bin/ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
FFPROBE = "/usr/bin/ffprobe"


def _make(d, name, *arguments):
    """Run ffmpeg with `arguments` (inputs, options; the output is appended) unless d/name exists."""
    target = Path(d) / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{os.getpid()}-{name}")  # same extension: ffmpeg picks the muxer by it
    subprocess.run([*FFMPEG, *arguments, str(partial)], check=True)
    os.replace(partial, target)
    return target


def _video(size, rate, duration):
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}"]


def _stereo(duration):
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}"]


def _h264(pix_fmt="yuv420p", preset="veryfast"):
    return ["-c:v", "libx264", "-preset", preset, "-pix_fmt", pix_fmt]


def h264_odd_size(d):
    """853x479 H.264, 2 s at 24 fps, stereo AAC: a source whose sides a yuv420p rendition must round to even.

    H.264 cannot carry an odd-sized 4:2:0 picture (its crop unit is 2 pixels in 4:2:0; libx264 silently
    makes 852x478), so this is High 4:4:4 (yuv444p): 854x480 coded, cropped to 853x479 in the SPS by
    h264_metadata (crop_right=11 because the coded width is already 864 with a crop of 10)."""
    return _make(d, "h264-odd-853x479.mp4", *_video("854x480", 24, 2), *_stereo(2), "-ac", "2",
                 *_h264("yuv444p"), "-bsf:v", "h264_metadata=crop_right=11:crop_bottom=1", "-c:a", "aac")


def prores_422(d):
    """1920x1080 ProRes 422 (prores_ks profile 2, yuv422p10le) MOV, 1 s at 25 fps, no audio: a typical editorial export."""
    return _make(d, "prores-422-1920x1080.mov", *_video("1920x1080", 25, 1),
                 "-c:v", "prores_ks", "-profile:v", "2", "-pix_fmt", "yuv422p10le", "-vendor", "apl0")


def no_audio(d):
    """640x360 H.264 MOV, 1 s at 30 fps, no audio stream at all: renditions must not expect one."""
    return _make(d, "no-audio-640x360.mov", *_video("640x360", 30, 1), *_h264())


def surround_51(d):
    """1280x720 H.264 MP4, 2 s at 25 fps, 5.1 AAC with a different tone per channel (so a downmix is checkable)."""
    tones = "|".join(f"0.2*sin({f}*2*PI*t)" for f in (440, 550, 660, 110, 770, 880))  # FL FR FC LFE BL BR
    return _make(d, "surround-51-1280x720.mp4", *_video("1280x720", 25, 2),
                 "-f", "lavfi", "-i", f"aevalsrc=exprs={tones}:channel_layout=5.1:sample_rate=48000:duration=2",
                 *_h264(), "-c:a", "aac", "-channel_layout", "5.1")


def variable_frame_rate(d):
    """640x360 H.264 MP4, ~2 s, whose frame durations really vary: testsrc2 at 30 fps with frames dropped
    irregularly (every 5th from the 3rd and every 7th from the 2nd) and timestamps kept (-fps_mode vfr)."""
    return _make(d, "vfr-640x360.mp4", *_video("640x360", 30, 2),
                 "-vf", "select='not(eq(mod(n\\,5)\\,3))*not(eq(mod(n\\,7)\\,2))'", "-fps_mode", "vfr", *_h264())


def uhd_30s(d):
    """3840x2160 H.264 MP4, 30 s at 10 fps (300 frames), no audio: a long UHD source for time and memory limits.

    The slow one: about 10 s on two idle cores with -preset ultrafast (more while something else builds)."""
    return _make(d, "uhd-3840x2160-30s.mp4", *_video("3840x2160", 10, 30), *_h264(preset="ultrafast"))


def anamorphic(d):
    """720x576 H.264 MP4 with sample aspect ratio 64:45 (PAL 16:9, displayed 1024x576), 1 s at 25 fps."""
    return _make(d, "anamorphic-720x576-sar64x45.mp4", *_video("720x576", 25, 1), "-vf", "setsar=64/45", *_h264())


def dpx_still(d):
    """One 1920x1080 16-bit (rgb48le) DPX frame, as film scans and VFX plates come."""
    return _make(d, "still-1920x1080.dpx", *_video("1920x1080", 25, 1), "-frames:v", "1", "-pix_fmt", "rgb48le")


def exr_still(d):
    """One 1920x1080 OpenEXR frame (gbrpf32le in, stored as half float, ZIP16), as renders come."""
    return _make(d, "still-1920x1080.exr", *_video("1920x1080", 25, 1), "-frames:v", "1",
                 "-pix_fmt", "gbrpf32le", "-format", "half", "-compression", "zip16")


def corrupt_video(d):
    """An H.264 MP4 whose bytes after the first 4 KB are replaced by (seeded) random ones: its moov
    index (written at the end) is gone, so neither ffprobe nor ffmpeg can open it."""
    target = Path(d) / "corrupt.mp4"
    if target.exists():
        return target
    source = _make(d, "corrupt-source.mp4", *_video("640x360", 25, 2), *_h264())
    data = source.read_bytes()
    damaged = data[:4096] + random.Random(20240607).randbytes(len(data) - 4096)
    partial = target.with_name(f".partial-{os.getpid()}-corrupt.mp4")
    partial.write_bytes(damaged)
    os.replace(partial, target)
    return target


def probe(path):
    """ffprobe's format and streams of `path`, as a dict (raises CalledProcessError if it cannot)."""
    result = subprocess.run([FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                             str(path)], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def count_frames(path):
    """The number of frames in the first video stream, by decoding them all (not the container's claim)."""
    result = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-select_streams", "v:0",
                             "-show_entries", "stream=nb_read_frames", "-print_format", "json", str(path)],
                            check=True, capture_output=True, text=True)
    return int(json.loads(result.stdout)["streams"][0]["nb_read_frames"])
