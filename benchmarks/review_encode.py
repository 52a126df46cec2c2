#!/usr/bin/env python3
"""Review encoding (issue 13) beside thumbnails.

1. Thumbnail latency with and without an encode running: two clients render corpus photos (result cache
   off, so every request renders) for a fixed time on an idle server, then again while the server encodes
   a 1080p ProRes master (the default preset, one encode at a time, idle scheduling class, nice 19).
   Target: p99 with the encode at most 1.5x p99 without.
2. Encode speed as a multiple of real time: Pinhole's job for that master (probe, ftrackreview-mp4 at 720p,
   a thumbnail, storing) against plain `ffmpeg` with the same settings, run alone in the same run (the
   anchor). Target: at most 5 % overhead.

Usage: benchmarks/review_encode.py [--binary PATH] [--seconds N] [--duration S]. Traffic goes to 127.0.0.1 only."""
import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "python"))

import requests  # noqa: E402

from conftest import CORPUS, PHOTOS, PinholeServer, sign  # noqa: E402


def make_master(directory, duration):
    """A 1920x1080 ProRes 422 HQ master with stereo audio, `duration` seconds at 25 fps."""
    path = Path(directory) / f"master-{duration}s.mov"
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={duration}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}",
                        "-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s16le", str(path)], check=True)
    return path


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def thumbnail_load(server, seconds, clients=2):
    """Latencies (ms) of uncached renders by `clients` clients for `seconds`."""
    stop = time.time() + seconds
    latencies = []
    lock = threading.Lock()

    def client(n):
        count = 0
        while time.time() < stop:
            size = 200 + (count * clients + n) % 300
            path = sign(f"fit-in/{size}x{size}/{PHOTOS[count % len(PHOTOS)]}")
            started = time.perf_counter()
            response = server.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200
            with lock:
                latencies.append(elapsed)
            count += 1

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies


def job_of(server, component):
    """The job's file read directly (running `pinhole encode status` this often would itself take CPU from the encode)."""
    found = []
    review = server.workdir / "data" / "review"
    for path in [*(review / "jobs").glob("*.json"), *(review / "finished").glob("*.json")]:
        try:
            job = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if job["source"] == component:
            found.append(job)
    return max(found, key=lambda job: job["created"]) if found else None


def upload(server, path):
    component = str(uuid.uuid4())
    response = requests.put(server.files_url("put", component), data=path.read_bytes(), headers={"Content-Type": "video/quicktime"}, timeout=120)
    assert response.status_code == 200
    return component


def plain_ffmpeg(master, output):
    """The same settings as Pinhole's ftrackreview-mp4 (FFmpegArguments.mp4), at normal priority, unconfined."""
    arguments = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(master),
                 "-filter_complex", "[0:v:0]split=1[s0];[s0]scale=1280:720:flags=bicubic:in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,setsar=1,format=yuv420p[v0]",
                 "-map", "[v0]", "-map", "0:a:0", "-fps_mode", "cfr", "-r", "25/1", "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-profile:v", "high",
                 "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                 "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-ar", "48000", "-movflags", "+faststart", "-map_metadata", "-1", str(output)]
    started = time.perf_counter()
    subprocess.run(arguments, check=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20, help="seconds of thumbnail load per phase")
    parser.add_argument("--duration", type=int, default=60, help="seconds of the master")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pinhole-review-bench-"))
    master = make_master(scratch, args.duration)
    server = PinholeServer(file_root=str(CORPUS), loader="file_then_http", env={"PINHOLE_ENCODE_SIZES": ""})
    try:
        thumbnail_load(server, 3)                                     # warm
        idle = thumbnail_load(server, args.seconds)
        component = upload(server, master)
        deadline = time.time() + 60
        while (job := job_of(server, component)) is None or job["state"] != "running" or not (job.get("step") or "").startswith("making ftrackreview-mp4"):
            assert time.time() < deadline
            time.sleep(0.2)
        busy = thumbnail_load(server, args.seconds)
        still_encoding = job_of(server, component)["state"] == "running"
        while (job := job_of(server, component))["state"] not in ("done", "failed"):
            time.sleep(1)
        assert job["state"] == "done", job
        loaded_job_seconds = job["updated"] - job["created"]
        # The encode again on an idle machine: Pinhole's whole job, then plain FFmpeg (the anchor).
        component = upload(server, master)
        while (job := job_of(server, component)) is None or job["state"] not in ("done", "failed"):
            time.sleep(1)
        assert job["state"] == "done", job
        pinhole_seconds = job["updated"] - job["created"]
    finally:
        server.stop()
    anchor_seconds = plain_ffmpeg(master, scratch / "anchor.mp4")
    for name, values in (("idle", idle), ("encoding", busy)):
        print(f"thumbnails {name:9s}: {len(values):5d} renders, p50 {statistics.median(values):6.1f} ms, p99 {percentile(values, 0.99):6.1f} ms")
    print(f"encode still running at the end of the loaded phase: {still_encoding}")
    print(f"p50 ratio {statistics.median(busy) / statistics.median(idle):.2f}x, p99 ratio {percentile(busy, 0.99) / percentile(idle, 0.99):.2f}x (target <= 1.5x)")
    print(f"encode of {args.duration} s 1080p ProRes while thumbnails ran: {loaded_job_seconds:.1f} s ({args.duration / loaded_job_seconds:.2f}x real time)")
    print(f"encode alone: Pinhole job {pinhole_seconds:.1f} s ({args.duration / pinhole_seconds:.2f}x real time), "
          f"plain ffmpeg {anchor_seconds:.1f} s ({args.duration / anchor_seconds:.2f}x real time): "
          f"overhead {(pinhole_seconds / anchor_seconds - 1) * 100:+.1f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
