"""Video sources (issue 12): every codec Debian's FFmpeg decodes gives its first frame; `/meta` says how long
a video runs, how fast and how many frames it has; a large MP4 or MOV is read in ranges (its index and
the packets of the wanted frame) and never whole, from a file root or from Pinhole's own file server;
uploads of video pre-warm like images."""
import re
import subprocess
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import CORPUS, PinholeServer, file_signature, image_size, mean_difference, sign

PHOTO = CORPUS / "photo-eveningglow-2560x1600.jpg"
FFMPEG = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
# 12 frames at 24 fps of the photo panning (so that frames differ), 640x400.
PAN = ["-loop", "1", "-framerate", "24", "-i", str(PHOTO), "-frames:v", "12",
       "-vf", "crop=2400:1500:x=n*8:y=n*5,scale=640:400"]
CODECS = {
    "hevc.mp4": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
    "hevc.mkv": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
    "dnxhr.mov": ["-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p"],
    "dnxhr.mxf": ["-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p"],
    "av1.mp4": ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"],
    "av1.webm": ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"],
    "prores4444.mov": ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le"],
    "h264.mov": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    (root / PHOTO.name).write_bytes(PHOTO.read_bytes())
    for name, codec in CODECS.items():
        subprocess.run(FFMPEG + PAN + codec + [str(root / name)], check=True)
    (root / "pan.png").write_bytes(subprocess.run(FFMPEG + PAN[:6] + ["-frames:v", "1", "-vf", "crop=2400:1500:x=0:y=0,scale=640:400",
                                                                     "-f", "image2pipe", "-c:v", "png", "-"],
                                                  check=True, capture_output=True).stdout)
    # Large files (40 MB ProRes with the index at the end and at the start, 15 MB of long-GOP H.264 with
    # a keyframe every 2 s): the corpus clips looped, stream-copied.
    for name, source, loops, flags in [("long.mov", "video-prores-640x400.mov", 44, []),
                                       ("long-faststart.mov", "video-prores-640x400.mov", 44, ["-movflags", "+faststart"]),
                                       ("long.mp4", "video-h264-640x400.mp4", 100, [])]:
        subprocess.run(FFMPEG + ["-stream_loop", str(loops), "-i", str(CORPUS / source), "-c", "copy"] + flags + [str(root / name)],
                       check=True)
    return root


def served(server, path):
    response = server.get(sign(path))
    assert response.status_code == 200, (path, response.text)
    return response


@pytest.mark.parametrize("name", sorted(CODECS))
def test_every_codec_gives_its_first_frame(root, name):
    """HEVC, DNxHR, AV1, ProRes 4444 and H.264 in MP4, MOV, MKV, MXF and WebM: the first frame, which is the
    photo's opening crop (pan.png, thumbnailed the same way; another photo measures 55 and more)."""
    server = PinholeServer(file_root=str(root), decoder_workers="1")
    try:
        ours = served(server, f"fit-in/300x300/{name}").content
        assert image_size(ours) == (300, 188)
        difference = mean_difference(ours, served(server, "fit-in/300x300/pan.png").content)
        print(f"\n{name}: {difference:.2f} from the first frame")
        assert difference < 4
    finally:
        server.stop()


def test_meta_says_duration_frame_rate_and_frame_count(root):
    """12 frames at 24 fps: 0.5 s, whichever container (Matroska and WebM keep no count: duration x rate)."""
    server = PinholeServer(file_root=str(root), decoder_workers="1")
    try:
        for name in ["hevc.mp4", "hevc.mkv", "dnxhr.mov", "av1.webm", "h264.mov"]:
            source = served(server, f"meta/fit-in/300x300/{name}").json()["thumbor"]["source"]
            assert (source["width"], source["height"]) == (640, 400), name
            assert source["frameRate"] == 24.0 and source["frameCount"] == 12, (name, source)
            assert abs(source["duration"] - 0.5) < 0.03, (name, source)
        long = served(server, "meta/fit-in/300x300/long.mov").json()["thumbor"]["source"]
        assert (long["duration"], long["frameRate"], long["frameCount"]) == (45.0, 24.0, 1080)
        # An image's /meta is unchanged: no video fields.
        assert "duration" not in served(server, f"meta/fit-in/300x300/{PHOTO.name}").json()["thumbor"]["source"]
    finally:
        server.stop()


def ranged_bytes(server):
    text = requests.get(server.base + "/metrics", timeout=10).text
    match = re.search(r"^pinhole_ranged_source_bytes_total ([0-9.]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


FRAMES = ["", "filters:still(30.5)/", "filters:still(00:12.25)/", "filters:still(-0.5)/"]


@pytest.fixture(scope="module")
def whole_frames(root):
    """The reference: each frame taken from the whole file (nothing read in ranges)."""
    server = PinholeServer(file_root=str(root), decoder_workers="1", max_source_bytes=str(100 << 20),
                           video_ranged_above=str(1 << 40))
    try:
        frames = {(name, f): served(server, f"fit-in/300x300/{f}{name}").content
                  for name in ["long.mov", "long-faststart.mov", "long.mp4"] for f in FRAMES}
        assert ranged_bytes(server) == 0
        assert mean_difference(frames[("long.mov", "")], frames[("long.mov", "filters:still(30.5)/")]) > 10
        return frames
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["long.mov", "long-faststart.mov", "long.mp4"])
def test_a_large_video_is_read_in_ranges_not_whole(root, whole_frames, name):
    """A source over video_ranged_above is read in ranges: the frames are the very bytes the whole file
    gives, while the bytes read stay a small share of the file, and a source size limit below the file's
    size does not matter (a whole read would be refused)."""
    server = PinholeServer(file_root=str(root), decoder_workers="1", max_source_bytes=str(4 << 20),
                           video_ranged_above=str(1 << 20))
    try:
        length = (root / name).stat().st_size
        for f in FRAMES:
            before = ranged_bytes(server)
            assert served(server, f"fit-in/300x300/{f}{name}").content == whole_frames[(name, f)], f
            read = ranged_bytes(server) - before
            print(f"\n{name} {f or 'first'}: {read / 1e6:.2f} MB read in ranges of {length / 1e6:.1f} MB")
            # ProRes frames are 37 KB and the H.264 GOP is 2 s: a frame costs well under 1 MB here.
            assert 0 < read < 1_000_000
        past = server.get(sign(f"fit-in/300x300/filters:still(500)/{name}"))
        assert past.status_code == 400 and "no frame at 500" in past.text
        meta = served(server, f"meta/fit-in/300x300/{name}").json()["thumbor"]["source"]
        assert meta["frameCount"] > 1000 and meta["frameRate"] == 24.0
    finally:
        server.stop()


def test_a_truncated_large_video_is_a_clear_4xx(root, tmp_path):
    """A large MOV cut off in the middle of its media data (the index is lost): a 400 naming the box."""
    data = (root / "long.mov").read_bytes()
    (tmp_path / "cut.mov").write_bytes(data[:len(data) // 2])
    (tmp_path / "zeros.mov").write_bytes(data[:32] + b"\0" * (3 << 20))
    server = PinholeServer(file_root=str(tmp_path), decoder_workers="1", video_ranged_above=str(1 << 20))
    try:
        for name in ["cut.mov", "zeros.mov"]:
            response = server.get(sign(f"fit-in/300x300/{name}"))
            assert response.status_code == 400 and "source video could not be decoded" in response.text, (name, response.text)
        assert server.get("/healthcheck").status_code == 200
    finally:
        server.stop()


@pytest.fixture()
def studio(tmp_path):
    """Both services in one process: thumbnails of components on its own file server, pre-warmed on upload."""
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", result_cache="true", decoder_workers="1",
                           cache_root=str(tmp_path / "cache"), source_cache_root=str(tmp_path / "sources"),
                           prewarm_sizes="fit-in/300x300", video_ranged_above=str(1 << 20), max_source_bytes=str(4 << 20))
    server.files_base = f"http://127.0.0.1:{server.files_port}"
    yield server
    server.stop()


def component_thumbnail(server, cid, size="fit-in/300x300"):
    source = f"{server.files_base}/get?id={cid}&signature={file_signature({'id': cid})}"
    return sign(f"{size}/{urllib.parse.quote(source, safe='')}")


def upload(server, cid, data, content_type):
    url = f"{server.files_base}/put?id={cid}&signature={file_signature({'id': cid})}"
    return requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=60)


def test_video_uploads_prewarm_and_large_ones_are_read_in_ranges_from_the_file_server(root, whole_frames, studio):
    """The production path: components on Pinhole's file server, fetched over HTTP. A video upload pre-warms
    its thumbnail like an image's; a 40 MB ProRes is read in ranges through the file server (HTTP Range),
    giving the frames the whole file gives."""
    small, large = str(uuid.uuid4()), str(uuid.uuid4())
    assert upload(studio, small, (root / "h264.mov").read_bytes(), "video/quicktime").status_code == 200
    assert upload(studio, large, (root / "long.mov").read_bytes(), "video/quicktime").status_code == 200
    for cid in [small, large]:
        deadline = time.time() + 30
        while time.time() < deadline and studio.get(component_thumbnail(studio, cid), headers={"Cache-Control": "only-if-cached"}).status_code != 200:
            time.sleep(0.2)
        hit = studio.get(component_thumbnail(studio, cid))
        assert hit.headers["X-Pinhole-Cache"] == "hit", f"upload of {cid} did not pre-warm"
        assert image_size(hit.content) == (300, 188)
    assert studio.get(component_thumbnail(studio, large)).content == whole_frames[("long.mov", "")]
    before = ranged_bytes(studio)
    frame = studio.get(component_thumbnail(studio, large, "fit-in/300x300/filters:still(30.5)"))
    assert frame.status_code == 200 and frame.content == whole_frames[("long.mov", "filters:still(30.5)/")]
    assert 0 < ranged_bytes(studio) - before < 1_000_000


def test_an_origin_without_byte_ranges_is_a_clear_502(origin):
    """A large MOV from an origin that answers every Range request with the whole file (200): a 502 that
    says so, rather than a download the threshold exists to avoid; a video under the threshold is read whole."""
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", decoder_workers="1", video_ranged_above="500000")
    try:
        large = urllib.parse.quote(f"http://{origin}/files/video-prores-640x400.mov", safe="")   # 903 KB
        response = server.get(sign(f"fit-in/300x300/{large}"))
        assert response.status_code == 502 and response.text.strip() == "source does not serve byte ranges (upstream 200)"
        small = urllib.parse.quote(f"http://{origin}/files/video-h264-640x400.mp4", safe="")     # 153 KB
        assert image_size(served(server, f"fit-in/300x300/{small}").content) == (300, 188)
        assert server.get("/healthcheck").status_code == 200
    finally:
        server.stop()
