"""The review-media makers make what they say: tests that use them trust size, codec, pixel format, rate
and channels without looking, so each promise is checked here with ffprobe."""
import os
import subprocess
from fractions import Fraction

import pytest

import review_media as media


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("review-media")


def video_stream(info):
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def audio_streams(info):
    return [s for s in info["streams"] if s["codec_type"] == "audio"]


# maker, container brand (None for stills), expected video stream fields, decoded frames, (audio codec, channels, layout)
CASES = [
    (media.h264_odd_size, "isom", dict(codec_name="h264", width=853, height=479, pix_fmt="yuv444p",
                                      r_frame_rate="24/1"), 48, ("aac", 2, "stereo")),
    (media.prores_422, "qt  ", dict(codec_name="prores", codec_tag_string="apcn", width=1920, height=1080,
                                    pix_fmt="yuv422p10le", r_frame_rate="25/1"), 25, None),
    (media.no_audio, "qt  ", dict(codec_name="h264", width=640, height=360, pix_fmt="yuv420p",
                                  r_frame_rate="30/1"), 30, None),
    (media.surround_51, "isom", dict(codec_name="h264", width=1280, height=720, pix_fmt="yuv420p",
                                     r_frame_rate="25/1"), 50, ("aac", 6, "5.1")),
    (media.anamorphic, "isom", dict(codec_name="h264", width=720, height=576, pix_fmt="yuv420p", r_frame_rate="25/1",
                                    sample_aspect_ratio="64:45", display_aspect_ratio="16:9"), 25, None),
    (media.dpx_still, None, dict(codec_name="dpx", width=1920, height=1080, pix_fmt="rgb48le"), 1, None),
    (media.exr_still, None, dict(codec_name="exr", width=1920, height=1080, pix_fmt="gbrpf32le"), 1, None),
]


@pytest.mark.parametrize("maker, brand, video, frames, audio", CASES, ids=[c[0].__name__ for c in CASES])
def test_medium_is_what_its_maker_says(media_dir, maker, brand, video, frames, audio):
    path = maker(media_dir)
    info = media.probe(path)
    stream = video_stream(info)
    assert {name: stream.get(name) for name in video} == video
    assert info["format"].get("tags", {}).get("major_brand") == brand
    assert media.count_frames(path) == frames
    audio_found = [(s["codec_name"], s["channels"], s["channel_layout"]) for s in audio_streams(info)]
    assert audio_found == ([audio] if audio else [])


def test_variable_frame_rate_really_varies(media_dir):
    """A constant-rate file with a wrong header would not exercise Pinhole's VFR handling."""
    path = media.variable_frame_rate(media_dir)
    stream = video_stream(media.probe(path))
    assert (stream["width"], stream["height"]) == (640, 360)
    assert Fraction(stream["r_frame_rate"]) != Fraction(stream["avg_frame_rate"])
    # Packet `duration` fields are all one frame at 30 fps here; the variation is in the timestamps.
    timestamps = sorted(int(t) for t in subprocess.run(
        [media.FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts", "-of", "csv=p=0",
         str(path)], check=True, capture_output=True, text=True).stdout.split())
    assert len({later - earlier for earlier, later in zip(timestamps, timestamps[1:])}) > 1
    assert 1.8 <= float(stream["duration"]) <= 2.1


def test_corrupt_video_cannot_be_decoded(media_dir):
    path = media.corrupt_video(media_dir)
    assert subprocess.run([media.FFMPEG[0], "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True).returncode != 0
    with pytest.raises(subprocess.CalledProcessError):
        media.probe(path)


def test_made_files_are_cached(media_dir):
    """A second call must not spend ffmpeg time again or change the file under a running test."""
    first = media.no_audio(media_dir)
    before = first.stat().st_mtime_ns
    assert media.no_audio(media_dir) == first and first.stat().st_mtime_ns == before


@pytest.mark.skipif(not os.environ.get("PINHOLE_SLOW_MEDIA"), reason="4K x 30 s takes ~10 s+; PINHOLE_SLOW_MEDIA=1")
def test_uhd_30s(media_dir):
    path = media.uhd_30s(media_dir)
    info = media.probe(path)
    stream = video_stream(info)
    assert (stream["codec_name"], stream["width"], stream["height"], stream["r_frame_rate"]) == ("h264", 3840, 2160, "10/1")
    assert audio_streams(info) == [] and media.count_frames(path) == 300
