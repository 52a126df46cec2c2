"""Review encoding (issue 13) against a real `pinhole serve`, real FFmpeg and a local stand-in for ftrack's
JSON API (`ftrack_standin.py`: only the operations Pinhole calls, its request checks following
ftrack-python-api's `Session.call`/`Session.commit`, since ftrack's server cannot run here).

Every rendition is checked with ffprobe (codec, pixel format, size, frame count, frame rate, faststart), is
decoded whole without an error, and its `ftr_meta` as registered is compared with what ffprobe says."""
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

import review_media as media
from conftest import PinholeServer, image_size, mean_difference
from ftrack_standin import SERVER_LOCATION_ID, FtrackStandin

BOXES = {"ftrackreview-mp4": (1280, 720), "ftrackreview-mp4-1080": (1920, 1080),
         "ftrackreview-mp4-1440": (2560, 1440), "ftrackreview-mp4-2160": (3840, 2160)}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("review-media")


def review_server(ftrack=None, workdir=None, **encode):
    """`pinhole serve` encoding at ultrafast (the tests check formats, not quality), retrying quickly."""
    env = {"PINHOLE_ENCODE_PRESET": "ultrafast", "PINHOLE_ENCODE_RETRY_SECONDS": "0.3",
           "PINHOLE_ENCODE_SIZES": "1080,1440,2160", "PINHOLE_ENCODE_API_TIMEOUT": "2"}
    if ftrack is not None:
        env.update({"PINHOLE_ENCODE_FTRACK_SERVER": ftrack.url, "PINHOLE_ENCODE_API_USER": "pinhole",
                    "PINHOLE_ENCODE_API_KEY": "test-api-key"})
    env.update({"PINHOLE_ENCODE_" + key.upper(): str(value) for key, value in encode.items()})
    return PinholeServer(env=env, workdir=workdir, loader="file_then_http")


def upload(server, path, content_type, ftrack=None, version=None):
    """PUTs a file as a new component (known to ftrack on `version` when given); its id."""
    component = str(uuid.uuid4())
    if ftrack is not None:
        ftrack.add_component(component, version or ftrack.add_version(), file_type=Path(path).suffix)
    response = requests.put(server.files_url("put", component), data=Path(path).read_bytes(),
                            headers={"Content-Type": content_type}, timeout=60)
    assert response.status_code == 200, response.text
    return component


def jobs(server):
    result = server.cli("encode", "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def job_of(server, component):
    found = [job for job in jobs(server) if job["source"] == component]
    return found[-1] if found else None


def wait_job(server, component, states=("done", "failed", "cancelled"), timeout=300, until=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = job_of(server, component)
        if job is not None and (job["state"] in states if until is None else until(job)):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job of {component} not finished: {job_of(server, component)}\n{server.logs()[-3000:]}")


def fetch(server, component_id, directory, suffix):
    response = requests.get(server.files_url("get", component_id), timeout=60)
    assert response.status_code == 200
    path = Path(directory) / (component_id + suffix)
    path.write_bytes(response.content)
    return path, response


def check_mp4(path, name, meta, source_facts):
    """What a web-review MP4 must be, and that its ftr_meta says what it is."""
    info = media.probe(path)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1
    v = video[0]
    # Profiles every browser decodes (ultrafast, used here, gives Constrained Baseline; the default preset High).
    assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p" and v["profile"] in ("Constrained Baseline", "Main", "High")
    assert v["color_primaries"] == "bt709" and v["color_transfer"] == "bt709" and v["color_space"] == "bt709"
    assert v.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1", "N/A")
    width, height = v["width"], v["height"]
    box = BOXES[name]
    assert width % 2 == 0 and height % 2 == 0 and width <= box[0] and height <= box[1]
    # The displayed aspect ratio is kept (within the rounding to even sides).
    sw, sh = source_facts["display"]
    assert abs(width / height - sw / sh) < 0.02 * (sw / sh) + 2 / height
    # One side fills the box unless the source is smaller.
    assert width == box[0] or height == box[1] or (width >= sw - 1 and height >= sh - 1)
    frames = media.count_frames(path)
    num, den = (int(x) for x in v["r_frame_rate"].split("/"))
    assert meta == {"frameIn": 0, "frameOut": frames, "frameRate": pytest.approx(num / den, abs=0.001),
                    "width": width, "height": height}
    assert v["avg_frame_rate"] == v["r_frame_rate"], "the rendition's frame rate is constant"
    if source_facts["audio"]:
        assert len(audio) == 1 and audio[0]["codec_name"] == "aac" and audio[0]["channels"] == 2
    else:
        assert audio == []
    # +faststart: the index (moov) comes before the media data.
    head = path.read_bytes()[:1 << 20]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head
    # It plays: decoded to the end without an error.
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == ""
    return frames, num / den


def registered(ftrack, version):
    """The components registered on `version`, by name, with their location and ftr_meta."""
    components = [c for c in ftrack.entities("FileComponent") if c["version_id"] == version]
    locations = ftrack.entities("ComponentLocation")
    metadata = ftrack.entities("Metadata")
    found = {}
    for component in components:
        where = [loc for loc in locations if loc["component_id"] == component["id"]]
        meta = [m for m in metadata if m["parent_id"] == component["id"] and m["key"] == "ftr_meta"]
        found.setdefault(component["name"], []).append((component, where, meta))
    return found


VIDEOS = {
    # name: (maker, content type, displayed size, audio, renditions)
    "odd-size": (media.h264_odd_size, "video/mp4", (853, 479), True, ["ftrackreview-mp4"]),
    "prores-422": (media.prores_422, "video/quicktime", (1920, 1080), False, ["ftrackreview-mp4", "ftrackreview-mp4-1080"]),
    "no-audio": (media.no_audio, "video/quicktime", (640, 360), False, ["ftrackreview-mp4"]),
    "surround-5.1": (media.surround_51, "video/mp4", (1280, 720), True, ["ftrackreview-mp4"]),
    "variable-frame-rate": (media.variable_frame_rate, "video/mp4", (640, 360), False, ["ftrackreview-mp4"]),
    "anamorphic": (media.anamorphic, "video/mp4", (1024, 576), False, ["ftrackreview-mp4"]),
    "uhd-30s": (media.uhd_30s, "video/mp4", (3840, 2160), False, list(BOXES)),
}


@pytest.fixture(scope="module")
def registering():
    with FtrackStandin() as ftrack:
        server = review_server(ftrack)
        try:
            yield server, ftrack
        finally:
            server.stop()


@pytest.mark.parametrize("name", list(VIDEOS))
def test_video_renditions_are_web_review_mp4s_registered_with_ftrack(registering, media_dir, tmp_path, name):
    server, ftrack = registering
    maker, content_type, display, audio, expected = VIDEOS[name]
    source = maker(media_dir)
    version = ftrack.add_version()
    component = upload(server, source, content_type, ftrack, version)
    job = wait_job(server, component, timeout=600)
    assert job["state"] == "done", job
    assert job["registration"] == "registered" and job["versionID"] == version
    names = [r["name"] for r in job["renditions"]]
    assert names == expected + ["thumbnail"]
    found = registered(ftrack, version)
    assert sorted(found) == sorted(names + ["main"])
    source_duration = float(media.probe(source)["format"]["duration"])
    for rendition in job["renditions"]:
        (component_entity, locations, meta), = found[rendition["name"]]   # exactly one of each
        assert component_entity["id"] == rendition["componentID"]
        assert [(loc["location_id"], loc["resource_identifier"]) for loc in locations] == [(SERVER_LOCATION_ID, rendition["componentID"])]
        path, response = fetch(server, rendition["componentID"], tmp_path, ".mp4" if rendition["name"] != "thumbnail" else ".jpg")
        assert component_entity["size"] == path.stat().st_size
        if rendition["name"] == "thumbnail":
            assert response.headers["Content-Type"] == "image/jpeg" and meta == []
            assert max(image_size(path.read_bytes())) <= 1024
            continue
        assert response.headers["Content-Type"] == "video/mp4"
        assert len(meta) == 1 and meta[0]["value"] == rendition["meta"]
        frames, rate = check_mp4(path, rendition["name"], json.loads(meta[0]["value"]), {"display": display, "audio": audio})
        # Every frame of the source is there (a constant-rate output of the same length).
        assert abs(frames / rate - source_duration) <= 2 / rate + 0.05, (frames, rate, source_duration)
    thumbnail = next(r for r in job["renditions"] if r["name"] == "thumbnail")
    versions = {v["id"]: v for v in ftrack.entities("AssetVersion")}
    assert versions[version]["thumbnail_id"] == thumbnail["componentID"]


@pytest.mark.parametrize("maker", [media.dpx_still, media.exr_still], ids=["dpx", "exr"])
def test_stills_get_a_review_image_through_the_studio_decoders(registering, media_dir, tmp_path, maker):
    server, ftrack = registering
    source = maker(media_dir)
    version = ftrack.add_version()
    component = upload(server, source, "application/octet-stream", ftrack, version)
    job = wait_job(server, component)
    assert job["state"] == "done" and job["kind"] == "image", job
    assert [r["name"] for r in job["renditions"]] == ["ftrackreview-image", "thumbnail"]
    image = job["renditions"][0]
    path, response = fetch(server, image["componentID"], tmp_path, ".jpg")
    assert response.headers["Content-Type"] == "image/jpeg"
    assert image_size(path.read_bytes()) == (1920, 1080)
    (entity, _, meta), = registered(ftrack, version)["ftrackreview-image"]
    assert json.loads(meta[0]["value"]) == {"format": "image", "width": 1920, "height": 1080}
    # The colours are FFmpeg's own reading of the file (sRGB for the DPX; the EXR's linear light encoded as sRGB).
    reference = tmp_path / "reference.png"
    chain = ["-vf", "zscale=t=iec61966-2-1:tin=linear,format=rgb24"] if source.suffix == ".exr" else ["-pix_fmt", "rgb24"]
    made = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *chain, str(reference)], capture_output=True)
    assert made.returncode == 0, made.stderr
    assert mean_difference(path.read_bytes(), reference.read_bytes()) < 6


def test_without_ftrack_renditions_are_made_listed_and_the_log_says_not_registered(media_dir):
    server = review_server()
    try:
        component = upload(server, media.no_audio(media_dir), "video/quicktime")
        job = wait_job(server, component)
        assert job["state"] == "done" and job["registration"] == "not-configured"
        for rendition in job["renditions"]:
            assert requests.get(server.files_url("get", rendition["componentID"]), timeout=30).status_code == 200
        status = server.cli("encode", "status")
        line = next(l for l in status.stdout.splitlines() if component in l)
        assert "done" in line and "not registered (encode.ftrack_server is not set)" in line
        assert all(r["componentID"] in line for r in job["renditions"])
        assert "review renditions not registered: encode.ftrack_server is not set" in server.logs()
        metrics = server.get("/metrics").text
        assert "pinhole_encodes_total 2" in metrics
        assert "pinhole_encode_queue_length 0" in metrics
        assert "pinhole_encoded_media_seconds_total 1" in metrics
    finally:
        server.stop()


def test_a_corrupt_video_fails_once_with_its_reason_and_the_service_keeps_serving(registering, media_dir):
    server, ftrack = registering
    component = upload(server, media.corrupt_video(media_dir), "video/mp4", ftrack)
    job = wait_job(server, component)
    assert job["state"] == "failed" and job["attempts"] == 0
    assert "FFmpeg" in job["reason"], job["reason"]
    assert job["renditions"] == [] or not any(r["stored"] for r in job["renditions"])
    assert server.get("/healthcheck").status_code == 200
    status = server.cli("encode", "status")
    assert any(component in l and "failed" in l and "FFmpeg" in l for l in status.stdout.splitlines())
    failures = re.search(r'pinhole_encode_failures_total\{reason="media"\} (\d+)', server.get("/metrics").text)
    assert failures is not None and int(failures.group(1)) >= 1
    # It keeps encoding too.
    good = upload(server, media.no_audio(media_dir), "video/quicktime", ftrack)
    assert wait_job(server, good)["state"] == "done"


def test_api_failures_and_timeouts_are_retried_and_nothing_is_registered_twice(registering, media_dir):
    server, ftrack = registering
    ftrack.fail_next(503, count=2)
    # A call that outlives the client's timeout still lands on the server (as a slow real one would):
    # the retry must find the component there, not create it again.
    ftrack.delay_next(3, count=1)
    version = ftrack.add_version()
    component = upload(server, media.no_audio(media_dir), "video/quicktime", ftrack, version)
    job = wait_job(server, component)
    assert job["state"] == "done" and job["registration"] == "registered" and job["attempts"] >= 2
    found = registered(ftrack, version)
    assert sorted(found) == ["ftrackreview-mp4", "main", "thumbnail"]
    assert all(len(entries) == 1 for entries in found.values())
    logs = server.logs()
    assert "ftrack's API answered HTTP 503" in logs or "ftrack's API reported" in logs
    assert "ftrack's API did not answer" in logs


def test_a_refused_api_key_is_reported_and_the_renditions_are_kept(media_dir):
    with FtrackStandin(api_key="another-key") as ftrack:
        server = review_server(ftrack, max_attempts=2)
        try:
            component = upload(server, media.no_audio(media_dir), "video/quicktime", ftrack)
            job = wait_job(server, component)
            assert job["state"] == "failed"
            assert job["reason"] == "gave up after 2 attempts: ftrack refused the API user or key (401)"
            assert all(r["stored"] for r in job["renditions"])
            for rendition in job["renditions"]:
                assert requests.get(server.files_url("get", rendition["componentID"]), timeout=30).status_code == 200
            assert "test-api-key" not in server.logs()
            # The key mended: encoding the upload again registers what was stored, without encoding it again.
            server.stop()
            server = review_server(ftrack, workdir=server.workdir, api_key="another-key")
            assert server.cli("encode", component).returncode == 0
            again = job_of(server, component)
            assert again["state"] == "done" and again["registration"] == "registered"
            assert [r["componentID"] for r in again["renditions"]] == [r["componentID"] for r in job["renditions"]]
            assert "pinhole_encodes_total 0" in server.get("/metrics").text
            assert sorted(registered(ftrack, again["versionID"])) == ["ftrackreview-mp4", "main", "thumbnail"]
        finally:
            server.stop()


def test_a_component_not_yet_in_ftrack_is_registered_once_it_is(registering, media_dir):
    """ftrack-python-api uploads the bytes before it commits the component: registration waits for it."""
    server, ftrack = registering
    component = upload(server, media.no_audio(media_dir), "video/quicktime")
    wait_job(server, component, until=lambda job: job["attempts"] >= 1)
    version = ftrack.add_version()
    ftrack.add_component(component, version)
    job = wait_job(server, component)
    assert job["state"] == "done" and job["versionID"] == version
    assert sorted(registered(ftrack, version)) == ["ftrackreview-mp4", "main", "thumbnail"]


def encoder_processes(workdir):
    """FFmpeg processes working in this server's review directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "ffmpeg" in command and str(workdir) in command:
                found.append(int(proc.name))
    return found


def test_sigkill_mid_encode_then_restart_completes_the_job_once(media_dir):
    with FtrackStandin() as ftrack:
        server = review_server(ftrack, sizes="1080")
        try:
            version = ftrack.add_version()
            component = upload(server, media.uhd_30s(media_dir), "video/mp4", ftrack, version)
            running = wait_job(server, component, until=lambda job: job["state"] == "running" and (job.get("progress") or 0) > 0.05)
            assert running["step"].startswith("making ftrackreview-mp4")
            assert encoder_processes(server.workdir)
            server.kill()
            time.sleep(0.5)
            assert encoder_processes(server.workdir) == [], "FFmpeg died with its server"
            assert job_of(server, component)["state"] == "running"
            server.start()
            # A graceful stop (SIGTERM) mid-encode: FFmpeg is stopped and the job queued again at once.
            wait_job(server, component, until=lambda job: job["state"] == "running" and (job.get("progress") or 0) > 0.02)
            server.stop()
            assert server.process.returncode == 0
            stopped = job_of(server, component)
            assert stopped["state"] == "queued" and stopped["reason"] == "interrupted by a stop; runs again at the next start"
            assert encoder_processes(server.workdir) == []
            server.start()
            job = wait_job(server, component, timeout=600)
            assert job["state"] == "done" and job["registration"] == "registered"
            assert "interrupted" in server.logs()
            found = registered(ftrack, version)
            assert sorted(found) == ["ftrackreview-mp4", "ftrackreview-mp4-1080", "main", "thumbnail"]
            assert all(len(entries) == 1 for entries in found.values())
            assert not any((server.workdir / "data" / "review" / "work").iterdir())
        finally:
            server.stop()


def test_a_removed_video_cancels_its_jobs_and_removes_their_renditions(media_dir):
    with FtrackStandin() as ftrack:
        server = review_server(ftrack, sizes="")
        try:
            long_one = upload(server, media.uhd_30s(media_dir), "video/mp4", ftrack)
            waiting = upload(server, media.no_audio(media_dir), "video/quicktime", ftrack)
            wait_job(server, long_one, until=lambda job: job["state"] == "running")
            assert job_of(server, waiting)["state"] == "queued"
            # Removed while queued: cancelled, never encoded.
            assert requests.get(server.files_url("remove", waiting), timeout=30).status_code == 200
            job = wait_job(server, waiting)
            assert job["state"] == "cancelled" and job["reason"] == "the source component was removed"
            assert job["renditions"] == []
            # Removed while encoding: FFmpeg is stopped, what was stored is removed, nothing is registered.
            wait_job(server, long_one, until=lambda job: (job.get("progress") or 0) > 0.02)
            assert requests.get(server.files_url("remove", long_one), timeout=30).status_code == 200
            job = wait_job(server, long_one, timeout=60)
            assert job["state"] == "cancelled"
            assert not any(r["stored"] for r in job["renditions"])
            for rendition in job["renditions"]:
                assert requests.get(server.files_url("get", rendition["componentID"]), timeout=30).status_code == 404
            time.sleep(0.5)
            assert encoder_processes(server.workdir) == []
            names = {c["name"] for c in ftrack.entities("FileComponent")}
            assert names == {"main"}
        finally:
            server.stop()


def test_an_encode_slower_than_its_timeout_fails_with_the_reason(media_dir):
    server = review_server(minimum_timeout=1, timeout_factor=0.001, sizes="")
    try:
        component = upload(server, media.uhd_30s(media_dir), "video/mp4")
        job = wait_job(server, component)
        assert job["state"] == "failed" and job["reason"] == "encoding ftrackreview-mp4 took longer than 1 s"
        time.sleep(0.5)
        assert encoder_processes(server.workdir) == []
    finally:
        server.stop()


def test_encode_command_draws_a_progress_bar_on_a_terminal(media_dir):
    import pty
    import select
    server = review_server(enabled="false", sizes="")
    try:
        component = upload(server, media.uhd_30s(media_dir), "video/mp4")
        leader, follower = pty.openpty()
        process = subprocess.Popen([server.cli_binary, "encode", component], env=server.env, cwd=server.workdir,
                                   stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        output = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        process.wait(600)
        os.close(leader)
        text = output.decode(errors="replace")
        assert process.returncode == 0, text[-2000:]
        bars = re.findall(r"\r\x1b\[2K\[([#.]{30})\] (\d+)% making ftrackreview-mp4", text)
        assert len(bars) >= 2 and any(0 < int(percent) < 100 for _, percent in bars), text[-2000:]
        assert " done " in text.splitlines()[-1]
    finally:
        server.stop()


def test_encode_command_queues_follows_and_refuses_unknown_components(media_dir):
    server = review_server(enabled="false")
    try:
        component = upload(server, media.no_audio(media_dir), "video/quicktime")
        assert jobs(server) == []   # encode.enabled false: uploads are not encoded
        result = server.cli("encode", component)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"{component}: queued as job ")
        assert any("making ftrackreview-mp4" in l for l in lines)
        assert " done " in lines[-1] and "ftrackreview-mp4=" in lines[-1]
        # Encoding it again refreshes the same components (nothing new for ftrack to list twice).
        first = job_of(server, component)
        again = server.cli("encode", component)
        assert again.returncode == 0, again.stderr
        second = job_of(server, component)
        assert second["id"] != first["id"] and second["state"] == "done"
        assert [(r["name"], r["componentID"]) for r in second["renditions"]] == [(r["name"], r["componentID"]) for r in first["renditions"]]
        missing = server.cli("encode", str(uuid.uuid4()))
        assert missing.returncode == 1 and "no component" in missing.stderr
    finally:
        server.stop()


VIDEO_PAGE = """<!doctype html>
<html><body style="margin:0;background:#808080"><canvas id="c" width="640" height="360" style="display:block"></canvas>
<div id="status">pending</div>
<video id="v" muted playsinline crossorigin="anonymous" width="640" height="360"></video>
<script>
const video = document.getElementById('v'), status = document.getElementById('status');
video.onerror = () => { status.textContent = 'error ' + (video.error && video.error.code); };
let playable = '', drawn = false;
function update() { if (playable && drawn) status.textContent = playable + ', frame drawn'; }
// The first decoded frame is drawn on the canvas (reading it back throws unless CORS allows it).
video.requestVideoFrameCallback(() => {
  const canvas = document.getElementById('c').getContext('2d');
  canvas.drawImage(video, 0, 0, 640, 360);
  canvas.getImageData(0, 0, 1, 1);
  drawn = true;
  update();
});
video.addEventListener('canplay', () => {
  playable = 'playable ' + video.videoWidth + 'x' + video.videoHeight + ' ' + video.duration.toFixed(2) +
    ' s, seekable ' + video.seekable.length + ' ' + video.seekable.end(0).toFixed(2);
  update();
}, {once: true});
video.src = VIDEO_URL;
</script></body></html>
"""


def test_browser_plays_the_review_mp4_from_the_file_server(media_dir, tmp_path):
    """Headless Chromium loads ftrackreview-mp4 straight from the file server into a <video> on another
    origin until it can play: that needs the type, CORS (crossorigin="anonymous"), a stream Chromium
    decodes, and range requests (the whole length is seekable only when the server answers ranges).
    A screenshot shows the first frame Chromium decoded: the canvas it is drawn on (at the top, a fixed
    place) is compared with FFmpeg's decoding of the same file. (A <video> outside the window is never
    decoded by headless Chromium, so the element stays in view.)"""
    from test_browser import PageServer, chromium
    server = review_server()
    try:
        component = upload(server, media.surround_51(media_dir), "video/mp4")
        job = wait_job(server, component)
        mp4 = next(r for r in job["renditions"] if r["name"] == "ftrackreview-mp4")
        url = server.files_url("get", mp4["componentID"])
        ranged = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
        assert ranged.status_code == 206 and ranged.headers["Content-Type"] == "video/mp4" and len(ranged.content) == 100
        page = VIDEO_PAGE.replace("VIDEO_URL", repr(url))

        # The page comes from "localhost", the file server is "127.0.0.1" on another port: another origin.
        page_server = PageServer({"/page.html": (page.encode(), "text/html")})
        profile = tempfile.mkdtemp(prefix="pinhole-chromium-")
        screenshot = tmp_path / "shot.png"
        page_url = page_server.base + "/page.html"
        browser = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}", "--timeout=8000",
                   "--window-size=640,800"]
        try:
            dom = subprocess.run(browser + ["--dump-dom", page_url], capture_output=True, text=True, timeout=120)
            subprocess.run(browser + [f"--screenshot={screenshot}", page_url], capture_output=True, text=True, timeout=120)
        finally:
            page_server.shutdown()
            shutil.rmtree(profile, ignore_errors=True)
        shown = re.search(r'id="status">([^<]*)<', dom.stdout)
        assert shown is not None and shown.group(1) == "playable 1280x720 2.00 s, seekable 1 2.00, frame drawn", (dom.stdout[-600:], dom.stderr[-1500:])
        path, _ = fetch(server, mp4["componentID"], tmp_path, ".mp4")
        frame = tmp_path / "frame.png"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-frames:v", "1", "-vf", "scale=640:360", str(frame)], check=True)
        from PIL import Image
        with Image.open(screenshot) as shot:
            region = io.BytesIO()
            shot.convert("RGB").crop((0, 0, 640, 360)).save(region, "PNG")
        assert mean_difference(region.getvalue(), frame.read_bytes()) < 8
    finally:
        server.stop()
