"""Mutation fuzzing through the service (issue 12): 2 000 mutated studio files (PSD, DPX, EXR, PDF, SVG,
and the corpus video files, which no decoder claims yet) are rendered by a real `pinhole serve` with
decode workers. Zero 5xx, the server never dies, and the worker pool is back to its size afterwards."""
import concurrent.futures
import random
import time

from conftest import CORPUS, PinholeServer, sign
from test_decoders import until, workers_of

SEEDS = ["vfx-1024x640.psd", "vfx-rgb10-1024x640.dpx", "vfx-rgba-half-1280x800.exr", "doc-1page-640x400.pdf",
         "vector-800x500.svg", "video-h264-640x400.mp4", "video-prores-640x400.mov"]
COUNT = 2000


def mutate(data, rng):
    """Byte flips, a run overwritten, a cut, or a copied block: near the start (headers) half the time."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if len(data) < 64:
            break
        kind = rng.random()
        where = rng.randrange(min(len(data), 4096)) if rng.random() < 0.5 else rng.randrange(len(data))
        if kind < 0.4:
            data[where] ^= 1 << rng.randrange(8)
        elif kind < 0.6:
            data[where:where + 8] = bytes(rng.choice([0, 0xFF, 0x7F, 0x80]) for _ in range(8))
        elif kind < 0.8:
            del data[rng.randrange(16, len(data)):]
        else:
            start = rng.randrange(len(data))
            data[where:where] = data[start:start + rng.randint(1, 512)]
    return bytes(data)


def test_mutated_studio_files_never_take_the_service_down(tmp_path):
    rng = random.Random(12)
    seeds = {name: (CORPUS / name).read_bytes() for name in SEEDS}
    names = []
    for n in range(COUNT):
        seed = SEEDS[n % len(SEEDS)]
        name = f"m{n:04d}-{seed}"
        (tmp_path / name).write_bytes(mutate(seeds[seed], rng))
        names.append(name)
    server = PinholeServer(file_root=str(tmp_path), decoder_workers="2", decoder_timeout="3", decoder_cpu_seconds="3",
                           render_queue="1000")
    try:
        assert until(lambda: len(workers_of(server)) == 2)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda name: server.get(sign(f"fit-in/128x128/{name}")).status_code, names))
        elapsed = time.monotonic() - started
        counts = {status: statuses.count(status) for status in set(statuses)}
        import requests
        failures = [line for line in requests.get(server.base + "/metrics", timeout=10).text.splitlines()
                    if line.startswith("pinhole_decoder_failures_total")]
        print(f"\nfuzz: {COUNT} mutated files in {elapsed:.0f} s: {counts}; {failures}")
        assert server.process.poll() is None
        assert all(status < 500 for status in statuses), counts
        assert counts.get(200, 0) > COUNT // 10        # most mutations still decode: the decoders were exercised
        assert server.get("/healthcheck").status_code == 200
        assert until(lambda: len(workers_of(server)) == 2)
        assert server.get(sign("fit-in/128x128/" + names[0])).status_code < 500
    finally:
        server.stop()
