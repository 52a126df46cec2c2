#!/usr/bin/env python3
"""A 2 GB ProRes master thumbnailed without being downloaded (issue 12): bytes read and time taken for
its first frame, a frame in the middle and one near the end, through Pinhole's own file server (the
production path: HTTP Range requests) and from a file root; against the anchor of the same run, FFmpeg
itself taking the same frame from the local file (the floor: no fetch at all).

The master: 1920x1080 ProRes 422 HQ made from the corpus photo (48 frames, panning), stream-copied in a
loop to 2 GB with the index (`moov`) at the end, as a camera or an edit suite writes it.

Usage: benchmarks/video_ranges.py [--size-gb 2] [--keep DIR] [--binary PATH]. Traffic goes to 127.0.0.1 only."""
import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "python"))

from conftest import CORPUS, PinholeServer, file_signature, sign  # noqa: E402

FFMPEG = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]


def make_master(directory, size_gb):
    clip, master = directory / "clip.mov", directory / "master.mov"
    if master.exists():
        return master
    subprocess.run(FFMPEG + ["-loop", "1", "-framerate", "24", "-i", str(CORPUS / "photo-eveningglow-2560x1600.jpg"),
                             "-frames:v", "48", "-vf", "crop=2400:1350:x=n*3:y=n*2,scale=1920:1080",
                             "-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le", str(clip)], check=True)
    loops = max(1, int(size_gb * 1e9 / clip.stat().st_size))
    subprocess.run(FFMPEG + ["-stream_loop", str(loops - 1), "-i", str(clip), "-c", "copy", str(master)], check=True)
    return master


def ranged_bytes(server):
    match = re.search(r"^pinhole_ranged_source_bytes_total ([0-9.]+)$", requests.get(server.base + "/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--keep", help="directory to make (and keep) the master in")
    parser.add_argument("--binary", help="pinhole binary (default: PINHOLE_BINARY or the debug build)")
    arguments = parser.parse_args()
    if arguments.binary:
        import conftest
        conftest.BINARY = arguments.binary
    directory = Path(arguments.keep or tempfile.mkdtemp(prefix="pinhole-master-"))
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    master = make_master(directory, arguments.size_gb)
    length = master.stat().st_size
    duration = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(master)],
                                    capture_output=True, text=True, check=True).stdout)
    print(f"master: {length / 1e9:.2f} GB, {duration:.0f} s of 1920x1080 ProRes 422 HQ (made in {time.perf_counter() - started:.0f} s)")
    frames = [("first frame", ""), ("middle", f"filters:still({duration / 2:.2f})/"), ("near the end", "filters:still(-1)/")]

    # The anchor: FFmpeg on the local file, the same seek and output as a worker's (one thread, raw TIFF), nothing fetched.
    print("\nanchor: ffmpeg on the local file (no fetch)")
    anchors = {}
    for label, f in frames:
        seek = [] if not f else (["-sseof", "-1"] if "-1" in f else ["-ss", f"{duration / 2:.2f}"])
        t = time.perf_counter()
        subprocess.run(FFMPEG + seek + ["-threads", "1", "-i", str(master), "-frames:v", "1", "-pix_fmt", "rgb24", "-f", "image2pipe", "-c:v", "tiff", "-compression_algo", "raw", "-"],
                       check=True, capture_output=True)
        anchors[label] = time.perf_counter() - t
        print(f"  {label:13} {anchors[label] * 1000:7.0f} ms")

    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1")   # its file server stores under its own ./data
    try:
        cid = str(uuid.uuid4())
        files = f"http://127.0.0.1:{server.files_port}"
        with master.open("rb") as body:
            put = requests.put(f"{files}/put?id={cid}&signature={file_signature({'id': cid})}", data=body,
                               headers={"Content-Type": "video/quicktime"}, timeout=600)
        assert put.status_code == 200, put.text
        source = urllib.parse.quote(f"{files}/get?id={cid}&signature={file_signature({'id': cid})}", safe="")
        print("\nPinhole, from its file server (HTTP Range), result cache off")
        for round_ in range(2):
            for label, f in frames:
                before = ranged_bytes(server)
                t = time.perf_counter()
                response = server.get(sign(f"fit-in/{320 + round_}x{320 + round_}/{f}{source}"))
                elapsed = time.perf_counter() - t
                assert response.status_code == 200, response.text
                read = ranged_bytes(server) - before
                print(f"  {label:13} {elapsed * 1000:7.0f} ms ({elapsed / anchors[label]:.2f}x the anchor), "
                      f"{read / 1e6:6.2f} MB read of {length / 1e9:.2f} GB ({read / length * 100:.4f} %)"
                      + ("  [cold]" if round_ == 0 else ""))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
