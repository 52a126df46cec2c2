#!/usr/bin/env python3
"""The cost of decode isolation (issue 12): renders of the studio formats (PSD, DPX, EXR, PDF, SVG) on a
warm decode-worker pool against the same renders decoded in the server (`decoder_isolation: false`),
one client at a time (latency per render) and four at once (requests per second for the mixed set);
and the memory the pool adds (RSS of the workers). Video has no in-process decoder (FFmpeg is only
ever a separate program): its renders are set against FFmpeg alone taking the same frame (the floor).

Usage: benchmarks/decoders.py [--binary PATH] [--rounds N]. Sends traffic to 127.0.0.1 only; every
server it starts is stopped at the end. The result cache is off, so every request renders."""
import argparse
import concurrent.futures
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "python"))

from conftest import CORPUS, PinholeServer, sign  # noqa: E402
from test_decoders import until, workers_of  # noqa: E402

VIDEO = ["video-h264-640x400.mp4", "video-prores-640x400.mov"]
STUDIO = ["vfx-1024x640.psd", "vfx-rgb10-1024x640.dpx", "vfx-rgba-half-1280x800.exr", "doc-1page-640x400.pdf",
          "vector-800x500.svg"]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(isolated, rounds):
    server = PinholeServer(file_root=str(CORPUS), decoder_isolation="true" if isolated else "false")
    try:
        if isolated:
            assert until(lambda: len(workers_of(server)) == 2)
        for name in STUDIO:                                    # warm: pool, page cache, libraries
            assert server.get(sign(f"fit-in/256x256/{name}")).status_code == 200
        latency = {}
        for name in STUDIO:
            times = []
            for n in range(rounds):
                started = time.perf_counter()
                response = server.get(sign(f"fit-in/{200 + n}x{200 + n}/{name}"))
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            latency[name] = statistics.median(times)
        paths = [sign(f"fit-in/{300 + n}x{300 + n}/{STUDIO[n % len(STUDIO)]}") for n in range(rounds * len(STUDIO))]
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda path: server.get(path).status_code, paths))
        rate = len(paths) / (time.perf_counter() - started)
        assert set(statuses) == {200}
        workers_rss = sum(rss_kib(pid) for pid in workers_of(server)) if isolated else 0
        return latency, rate, rss_kib(server.process.pid), workers_rss
    finally:
        server.stop()


def measure_video(rounds):
    """Median ms of a worker render of each corpus video, and of FFmpeg alone writing the frame."""
    import subprocess
    server = PinholeServer(file_root=str(CORPUS))
    try:
        assert until(lambda: len(workers_of(server)) == 2)
        rows = {}
        for name in VIDEO:
            assert server.get(sign(f"fit-in/256x256/{name}")).status_code == 200
            renders, floors = [], []
            for n in range(rounds):
                started = time.perf_counter()
                assert server.get(sign(f"fit-in/{200 + n}x{200 + n}/{name}")).status_code == 200
                renders.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", str(CORPUS / name),
                                "-frames:v", "1", "-f", "image2pipe", "-c:v", "tiff", "-compression_algo", "raw", "-"],
                               check=True, capture_output=True)
                floors.append((time.perf_counter() - started) * 1000)
            rows[name] = (statistics.median(floors), statistics.median(renders))
        return rows
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", help="pinhole binary (default: PINHOLE_BINARY or the debug build)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.binary:
        import conftest
        conftest.BINARY = args.binary
    in_process = measure(False, args.rounds)
    isolated = measure(True, args.rounds)
    print(f"\nDecode isolation cost ({args.rounds} renders per format, fit-in/200..., result cache off)")
    print(f"{'format':32} {'in-process ms':>14} {'workers ms':>11} {'ratio':>6} {'extra ms':>9}")
    for name in STUDIO:
        a, b = in_process[0][name], isolated[0][name]
        print(f"{name:32} {a:14.1f} {b:11.1f} {b / a:6.2f} {b - a:9.1f}")
    print(f"mixed studio set, 4 clients: {in_process[1]:.1f} req/s in-process, {isolated[1]:.1f} with workers "
          f"({isolated[1] / in_process[1]:.2f}x)")
    print(f"RSS: server {in_process[2] // 1024} MB in-process; server {isolated[2] // 1024} MB + workers "
          f"{isolated[3] // 1024} MB with isolation")
    print(f"\n{'video':32} {'ffmpeg alone ms':>15} {'render ms':>10} {'ratio':>6} {'extra ms':>9}")
    for name, (floor, render) in measure_video(args.rounds).items():
        print(f"{name:32} {floor:15.1f} {render:10.1f} {render / floor:6.2f} {render - floor:9.1f}")


if __name__ == "__main__":
    main()
