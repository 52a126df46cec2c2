"""Load benchmark driver (see run.sh). Everything listens on 127.0.0.1 and is stopped at the end."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("PINHOLE_CORPUS", REPO.parent / "shared" / "corpus")).resolve()
PINHOLE = os.environ["PINHOLE_RELEASE"]
SECONDS = next((int(a) for a in sys.argv[1:] if a.isdigit()), 10)
KEY = "benchmark-key"
PHOTOS = sorted(p.name for p in CORPUS.glob("photo-*-2560x1600.jpg"))
BIG = "photo-beach-5120x2880.jpg"
SCENARIOS = [
    ("fit-in/512x512 photos", "fit-in/512x512", PHOTOS),
    ("300x200 photos", "300x200", PHOTOS),
    ("300x200/smart photos", "300x200/smart", PHOTOS),
    ("fit-in/512x512 14.7 MP", "fit-in/512x512", [BIG]),
]
work = Path(tempfile.mkdtemp(prefix="pinhole-load-"))
processes = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(path):
    digest = hmac.new(KEY.encode(), path.encode(), hashlib.sha1).digest()
    return "/" + base64.urlsafe_b64encode(digest).decode() + "/" + path


def start(args, env=None, **kwargs):
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kwargs)
    processes.append(process)
    return process


def wait(url):
    for _ in range(300):
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def tree_rss_kib(pid):
    """Peak RSS (VmHWM) of a process and its children, summed."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        ppid = int(re.search(r"PPid:\s+(\d+)", text).group(1))
        me = int(status.parent.name)
        if me == pid or ppid == pid:
            match = re.search(r"VmHWM:\s+(\d+)", text)
            total += int(match.group(1)) if match else 0
    return total


def wrk(bases, paths, connections, seconds=SECONDS):
    """wrk against one server, or against several at once with the connections split between them
    (Thumbor: one single-process server per core, as a load balancer would feed them)."""
    bases = bases if isinstance(bases, list) else [bases]
    share = max(1, connections // len(bases))
    script = work / f"paths-{abs(hash(tuple(paths)))}.lua"
    script.write_text("local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\nlocal i = 0\n"
                      "request = function() i = i + 1; return wrk.format('GET', paths[(i % #paths) + 1]) end\n")
    threads = min(2 if len(bases) == 1 else 1, share)
    def run(duration):
        runs = [subprocess.Popen(["wrk", f"-t{threads}", f"-c{share}", f"-d{duration}s", "--latency", "-s", str(script), base],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for base in bases]
        return [r.communicate()[0] for r in runs]
    run(2)   # warm-up
    results = [parse_wrk(out) for out in run(seconds)]
    return {"rps": sum(r["rps"] for r in results), "p50": sum(r["p50"] for r in results) / len(results),
            "p99": max(r["p99"] for r in results), "non2xx": sum(r["non2xx"] for r in results)}


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency(50), "p99": latency(99), "non2xx": int(errors.group(1)) if errors else 0}


def start_thumbors(conf, count):
    """One single-process Thumbor per core, each on its own port (`--processes 0` would share one
    socket, and wrk's connections, opened at once, often all land on one of its workers)."""
    thumbor_bin = str(Path(sys.executable).parent / "thumbor")
    bases, servers = [], []
    for _ in range(count):
        port = free_port()
        servers.append(start([thumbor_bin, "-p", str(port), "-i", "127.0.0.1", "-c", str(conf), "-l", "error", "--processes", "1"]))
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        wait(base + "/healthcheck")
    return bases, servers


def output_bytes(base, path):
    response = requests.get(base + path, timeout=60)
    return len(response.content) if response.status_code == 200 else -response.status_code


def pyvips_reference(option, images, seconds=SECONDS):
    """In-process libvips: thumbnail_buffer + JPEG save (Q80, progressive) over the same bytes, 2 threads."""
    import pyvips
    pyvips.cache_set_max(0)
    data = [(CORPUS / name).read_bytes() for name in images]
    size = 512 if "512" in option else 300
    crop = "none" if "fit-in" in option else "centre"
    height = 512 if "512" in option else 200
    count = [0, 0]
    stop = time.time() + seconds
    def loop(n):
        i = n
        while time.time() < stop:
            image = pyvips.Image.thumbnail_buffer(data[i % len(data)], size, height=height, crop=crop)
            image.jpegsave_buffer(Q=80, interlace=True, strip=True)
            count[n] += 1
            i += 1
    threads = [threading.Thread(target=loop, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


def vm_rss_kib(pid):
    match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def start_pinhole(name, **settings):
    """A release `pinhole serve` on a free port, file loader on the corpus, its own data under `work/name`;
    `settings` are thumbnails.* keys (`result_cache="false"`)."""
    port = free_port()
    env = dict(os.environ, PINHOLE_THUMBNAILS_PORT=str(port), PINHOLE_THUMBNAILS_SECURITY_KEYS=KEY,
               PINHOLE_THUMBNAILS_LOADER="file", PINHOLE_THUMBNAILS_FILE_ROOT=str(CORPUS),
               PINHOLE_THUMBNAILS_CACHE_ROOT=str(work / name / "cache"), PINHOLE_FILES_PORT=str(free_port()),
               PINHOLE_FILES_SECRETS="benchmark", PINHOLE_FILES_ROOT=str(work / name / "files"))
    env.update({"PINHOLE_THUMBNAILS_" + key.upper(): value for key, value in settings.items()})
    process = start([PINHOLE, "serve", "--log-level", "error"], env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    wait(base + "/healthcheck")
    return process, base


def soak(total=10_000):
    """RSS after `total` mixed requests (a new render every third request, cache hits otherwise,
    8 clients) against RSS after the first 1 000: memory must level off, not grow. Both are read two
    seconds after their batch, at rest: what renders in flight and freed-but-kept heap pages add at an
    arbitrary instant moved single readings by ±5 MB."""
    import concurrent.futures
    server, base = start_pinhole("soak")
    hits = [sign(f"fit-in/512x512/{image}") for image in PHOTOS]
    def path(n):
        # A stationary mix: two hits on the photos' fit-in/512 for every new render; the new renders
        # cycle through sizes 100…599 (every one distinct: the photo changes with each pass).
        if n % 3:
            return hits[n % len(hits)]
        k = n // 3
        size = 100 + k % 500
        return sign(f"fit-in/{size}x{size}/{PHOTOS[(k // 500 + k) % len(PHOTOS)]}")
    session = requests.Session()
    def fetch(n):
        return session.get(base + path(n), timeout=120).status_code
    statuses = {}
    marks = {}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for start_at, end_at in [(0, 1000), (1000, total)]:
            for status in pool.map(fetch, range(start_at, end_at)):
                statuses[status] = statuses.get(status, 0) + 1
            time.sleep(2)   # both marks read at rest, after Pinhole's once-a-second return of free heap pages
            marks[end_at] = vm_rss_kib(server.pid)
    first, last = marks[1000], marks[total]
    print(f"\nRSS soak ({total} mixed requests, 8 clients, statuses {statuses}): after 1 000 {first // 1024} MB, "
          f"after {total} {last // 1024} MB, growth {100 * (last - first) / first:+.1f} %")


def main():
    try:
        if "--soak-only" in sys.argv:
            soak()
            return
        if "--hits-only" in sys.argv:
            hits()
            return
        run()
        hits()
        soak()
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def run():
    cores = os.cpu_count()
    # Pinhole with the result cache and coalescing off: every request renders.
    pinhole, pinhole_base = start_pinhole("renders", result_cache="false", coalesce="false")
    # Thumbor 7.8.0, one process per core, file loader, no storage, no result storage.
    conf = work / "thumbor.conf"
    conf.write_text(f"LOADER = 'thumbor.loaders.file_loader'\nFILE_LOADER_ROOT_PATH = {str(CORPUS)!r}\n"
                    f"STORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\nSECURITY_KEY = {KEY!r}\nQUALITY = 80\n")
    thumbor_bases, thumbors = start_thumbors(conf, cores)

    print(f"Pinhole load benchmark — {cores} cores, {SECONDS}s per run, wrk on the same machine")
    print(f"{'scenario':28} {'c':>3} {'Pinhole req/s':>14} {'p50/p99 ms':>16} {'Thumbor req/s':>14} {'p50/p99 ms':>16} {'ratio':>6}")
    results = {}
    for name, option, images in SCENARIOS:
        paths = [sign(f"{option}/{image}") for image in images]
        for connections in (2, 8):
            ours = wrk(pinhole_base, paths, connections)
            theirs = wrk(thumbor_bases, paths, connections)   # connections split over the processes
            results[(name, connections)] = (ours, theirs)
            print(f"{name:28} {connections:>3} {ours['rps']:>14.1f} {ours['p50']:>7.1f}/{ours['p99']:<8.1f} "
                  f"{theirs['rps']:>14.1f} {theirs['p50']:>7.1f}/{theirs['p99']:<8.1f} {ours['rps'] / theirs['rps']:>6.2f}"
                  + (f"  (Pinhole non-2xx: {ours['non2xx']})" if ours["non2xx"] else ""))
        ours_bytes = sum(output_bytes(pinhole_base, p) for p in paths) // len(paths)
        theirs_bytes = sum(output_bytes(thumbor_bases[0], p) for p in paths) // len(paths)
        print(f"{'':28}     mean output bytes: Pinhole {ours_bytes}, Thumbor {theirs_bytes} (both quality 80, progressive)")
    pinhole_rss = tree_rss_kib(pinhole.pid) // 1024
    thumbor_rss = sum(tree_rss_kib(t.pid) for t in thumbors) // 1024
    print(f"peak RSS during renders: Pinhole {pinhole_rss} MB, Thumbor (all processes) {thumbor_rss} MB")

    print("\nin-process libvips reference (pyvips thumbnail_buffer + jpegsave, 2 threads):")
    for name, option, images in SCENARIOS:
        reference = pyvips_reference(option, images)
        ours = results[(name, 8)][0]["rps"]
        print(f"  {name:28} {reference:>8.1f}/s   Pinhole c=8 {ours:.1f}/s   ratio {ours / reference:.2f}")

    for process in [pinhole] + thumbors:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def hits():
    """Cache hits at c=64: Pinhole with its result cache, Thumbor with file result storage, nginx on a file."""
    pinhole, pinhole_base = start_pinhole("hits")
    conf = work / "thumbor-hits.conf"
    conf.write_text(f"LOADER = 'thumbor.loaders.file_loader'\nFILE_LOADER_ROOT_PATH = {str(CORPUS)!r}\n"
                    f"STORAGE = 'thumbor.storages.no_storage'\nSECURITY_KEY = {KEY!r}\nQUALITY = 80\n"
                    f"RESULT_STORAGE = 'thumbor.result_storages.file_storage'\n"
                    f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(work / 'thumbor-results')!r}\n")
    thumbor_bases, thumbors = start_thumbors(conf, os.cpu_count())
    hit_paths = [sign(f"fit-in/512x512/{image}") for image in PHOTOS]
    for path in hit_paths:
        requests.get(pinhole_base + path, timeout=60)
        for base in thumbor_bases:
            requests.get(base + path, timeout=60)
    static = work / "static"
    static.mkdir()
    sample = requests.get(pinhole_base + hit_paths[0], timeout=60).content
    (static / "thumb.jpg").write_bytes(sample)
    nginx_port = free_port()
    (work / "nginx.conf").write_text(f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes auto; daemon off; pid {work}/nginx.pid; error_log {work}/nginx-error.log error;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nginx_port}; location / {{ root {static}; }} }} }}
""")
    start([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(work / "nginx.conf"), "-p", str(work)])
    wait(f"http://127.0.0.1:{nginx_port}/thumb.jpg")
    ours = wrk(pinhole_base, hit_paths, 64)
    theirs = wrk(thumbor_bases, hit_paths, 64)
    nginx = wrk(f"http://127.0.0.1:{nginx_port}", ["/thumb.jpg"], 64)
    print(f"\ncache hits, c=64 ({len(sample)}-byte thumbnails):")
    print(f"  Pinhole result cache   {ours['rps']:>9.0f} req/s  p50 {ours['p50']:.2f} ms  p99 {ours['p99']:.2f} ms")
    print(f"  Thumbor result storage {theirs['rps']:>9.0f} req/s  p50 {theirs['p50']:.2f} ms  p99 {theirs['p99']:.2f} ms")
    print(f"  nginx, same bytes      {nginx['rps']:>9.0f} req/s  p50 {nginx['p50']:.2f} ms  p99 {nginx['p99']:.2f} ms")
    print(f"  ratios: Pinhole/Thumbor {ours['rps'] / theirs['rps']:.1f}x, Pinhole/nginx {ours['rps'] / nginx['rps']:.2f}")
    for process in [pinhole] + thumbors:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


if __name__ == "__main__":
    main()
