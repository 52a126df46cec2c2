#!/usr/bin/env python3
"""Soak of one `pinhole serve` under mixed traffic (issue 15; see README.md in this directory).

    nice -n 10 .venv/bin/python benchmarks/soak/run.py [--minutes 30] [--concurrency 16] [--binary PATH]
    .venv/bin/python benchmarks/soak/run.py --rejudge benchmarks/soak/last-run.json [--write]

Starts a real `pinhole serve` (thumbnails and file server) with its data, caches and TMPDIR in a fresh
temporary directory, uploads the corpus as components, probes what Pinhole answers to each bad URL and
bad file, then runs --minutes of mixed traffic from --concurrency threads (keep-alive http.client
connections): new renders (cache misses) of corpus photos through the file server's components, the way
ftrack's thumbnail URLs work, and some through the file loader; repeats (cache hits); uploads of corpus
images and random bytes; ranged downloads; removes; bad URLs; bad files. Every answer is checked
(status, decoded image and its size, the bytes of a range against what was uploaded, time under 30 s).
Every 10 s it samples RSS, open file descriptors and threads of the server and of its children (the
decode workers). At the end the server gets SIGTERM, and the data, cache and temporary directories are
searched for temporary files left behind. Prints a report, writes benchmarks/soak/last-run.json, and
exits 1 if a target is missed (unexpected errors, RSS/fds/threads not flat within the tolerance after
warm-up, temporary files left, processes left, acknowledged uploads lost). Flat, by default: the means of
the three thirds of the post-warm-up samples within the tolerance of their mean, and the least-squares
trend over that period under it (see `steady` and `flat`). --rejudge judges a saved result again from its
samples, without a server.
"""
import argparse
import base64
import collections
import contextlib
import ctypes
import hashlib
import hmac
import http.client
import io
import json
import mimetypes
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORPUS = Path(os.environ.get("PINHOLE_CORPUS", REPO.parent / "shared" / "corpus")).resolve()

from libthumbor import CryptoURL  # noqa: E402
from PIL import Image  # noqa: E402

Image.MAX_IMAGE_PIXELS = None

KEY = "soak-security-key"
FILES_SECRET = "soak-files-secret-0123456789abcdef"
TIMEOUT = 30.0                       # an answer slower than this is an unexpected error
SAMPLE_EVERY = 10.0
KINDS = ["render", "hit", "upload", "range", "remove", "bad_url", "bad_file"]
WEIGHTS = {"render": 30, "hit": 30, "upload": 10, "range": 12, "remove": 8, "bad_url": 6, "bad_file": 4}
PHOTOS = sorted(p.name for p in CORPUS.glob("photo-*.jpg"))
OTHERS = ["format-rgb-1280x800.png", "format-rgba-1280x800.png", "format-rgb16-1280x800.tif", "format-1280x800.webp",
          "format-1280x800.avif", "format-1280x800.jxl", "format-gray-1280x800.jpg", "format-640x400.hdr",
          "palette-640x400.png", "cmyk-640x400.jpg", "exif-orientation6-640x400.jpg", "anim-320x200.gif",
          "vector-800x500.svg", "doc-1page-640x400.pdf", "vfx-1024x640.psd", "vfx-rgb10-1024x640.dpx",
          "vfx-rgba-half-1280x800.exr", "video-h264-640x400.mp4", "video-prores-640x400.mov"]
OTHERS = [name for name in OTHERS if (CORPUS / name).exists()]
BAD = sorted("bad/" + p.name for p in (CORPUS / "bad").iterdir()) if (CORPUS / "bad").is_dir() else []
RANDOM_MIN, RANDOM_MAX = 10 * 1024, 5 * 1024 * 1024
LIVE_MIN, LIVE_MAX = 20, 300          # uploaded components kept: removes below LIVE_MIN upload, uploads above LIVE_MAX remove


def log(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_signature(params, secret=FILES_SECRET):
    """Pinhole's canonical file-server signature (as conftest.file_signature)."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def files_path(operation, cid, secret=FILES_SECRET, **extra):
    params = {"id": cid, **extra}
    params["signature"] = file_signature(params, secret)
    return f"/{operation}?{urllib.parse.urlencode(params)}"


def thumbor_sign(path_after_signature, key=KEY):
    """libthumbor's signer (as conftest.sign)."""
    from libthumbor.url_signers.base64_hmac_sha1 import UrlSigner
    return "/" + UrlSigner(key).signature(path_after_signature).decode() + "/" + path_after_signature


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def ms(value):
    return None if value is None else round(value * 1000, 1)


def displayed_size(name):
    match = re.search(r"(\d+)x(\d+)", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def die_with_parent():
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG


# ----------------------------------------------------------------------------------------------- /proc

def proc_tree(root):
    """{pid: ppid} of `root` and all its descendants."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    children = collections.defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    seen, stack = {}, [root] if root in parents else []
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen[pid] = parents[pid]
            stack.extend(children.get(pid, ()))
    return seen


def proc_facts(pid):
    """(RSS KiB, threads, open fds, command name) of one process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
        name = re.search(r"^Name:\s+(.*)$", status, re.M).group(1)
        if re.search(r"^State:\s+Z", status, re.M):
            return None
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return (int(rss.group(1)) if rss else 0, threads, fds, name)
    except (OSError, AttributeError, ValueError):
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------- HTTP client

class Answer:
    __slots__ = ("status", "headers", "body", "seconds", "error")

    def __init__(self, status=None, headers=None, body=b"", seconds=0.0, error=None):
        self.status, self.headers, self.body, self.seconds, self.error = status, headers, body, seconds, error


class Client:
    """One thread's keep-alive connections, one per port (http.client sends paths byte for byte)."""

    def __init__(self):
        self.connections = {}

    def request(self, port, method, path, body=None, headers=None):
        connection, last = self.connections.pop(port, (None, 0.0))
        if connection is not None and time.monotonic() - last > 45:     # below any idle timeout of the server
            connection.close()
            connection = None
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT + 5)
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            answer = Answer(response.status, response.headers, data, time.monotonic() - started)
            if response.will_close:
                connection.close()
            else:
                self.connections[port] = (connection, time.monotonic())
            return answer
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return Answer(None, None, b"", time.monotonic() - started, f"{type(error).__name__}: {error}"[:300])

    def close(self):
        for connection, _ in self.connections.values():
            connection.close()
        self.connections.clear()


# ----------------------------------------------------------------------------------------------- server

class Server:
    def __init__(self, binary, work, encode):
        self.work = work
        self.port, self.files_port = free_port(), free_port()
        self.data = work / "data"
        self.dirs = {"files": self.data / "files", "cache": self.data / "cache", "sources": self.data / "sources",
                     "review": self.data / "review", "tmp": work / "tmp"}
        for path in self.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        (work / "bin").mkdir()
        self.binary = work / "bin" / "pinhole"
        shutil.copy2(binary, self.binary)            # a rebuild during the run changes nothing
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
        env.update({
            "TMPDIR": str(self.dirs["tmp"]),
            "PINHOLE_THUMBNAILS_HOST": "127.0.0.1",
            "PINHOLE_THUMBNAILS_PORT": str(self.port),
            "PINHOLE_THUMBNAILS_SECURITY_KEYS": KEY,
            "PINHOLE_THUMBNAILS_LOADER": "file_then_http",
            "PINHOLE_THUMBNAILS_FILE_ROOT": str(CORPUS),
            "PINHOLE_THUMBNAILS_ALLOWED_HOSTS": "127.0.0.1",
            "PINHOLE_THUMBNAILS_RESULT_CACHE": "true",
            "PINHOLE_THUMBNAILS_CACHE_ROOT": str(self.dirs["cache"]),
            "PINHOLE_THUMBNAILS_SOURCE_CACHE": "true",
            "PINHOLE_THUMBNAILS_SOURCE_CACHE_ROOT": str(self.dirs["sources"]),
            "PINHOLE_FILES_HOST": "127.0.0.1",
            "PINHOLE_FILES_PORT": str(self.files_port),
            "PINHOLE_FILES_SECRETS": FILES_SECRET,
            "PINHOLE_FILES_ROOT": str(self.dirs["files"]),
            "PINHOLE_ENCODE_ENABLED": "true" if encode else "false",
            "PINHOLE_ENCODE_DIRECTORY": str(self.dirs["review"]),
        })
        self.env = env
        self.log_path = work / "pinhole.log"
        self.process = None

    def start(self, timeout=120):
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen([str(self.binary), "serve"], env=self.env, cwd=self.work,
                                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=die_with_parent)
        began = time.monotonic()
        client = Client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"pinhole exited with {self.process.returncode}:\n{self.log_tail()}")
                if client.request(self.port, "GET", "/healthcheck").status == 200:
                    with contextlib.suppress(OSError):
                        socket.create_connection(("127.0.0.1", self.files_port), timeout=1).close()
                        return time.monotonic() - began
                if time.monotonic() - began > timeout:
                    raise RuntimeError(f"pinhole not healthy after {timeout} s:\n{self.log_tail()}")
                time.sleep(0.1)
        finally:
            client.close()

    def running(self):
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout):
        """SIGTERM; (exit status, seconds to exit, whether it had to be SIGKILLed)."""
        if not self.running():
            return self.process.returncode if self.process else None, 0.0, False
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
            return self.process.returncode, round(time.monotonic() - began, 2), False
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return self.process.returncode, round(time.monotonic() - began, 2), True

    def log_tail(self, lines=30):
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


# ----------------------------------------------------------------------------------------------- sampler

class Sampler(threading.Thread):
    """Every SAMPLE_EVERY s: RSS, threads and fds of the server and (summed) of its descendants, and a few
    /metrics values. Stops the run if the server exits."""

    METRICS = ["pinhole_renders_total", "pinhole_cache_hits_total", "pinhole_cache_fast_path_hits_total",
               "pinhole_cache_misses_total", "pinhole_renders_rejected_total", "pinhole_deadlines_exceeded_total",
               "pinhole_source_fetches_total", "pinhole_decoder_failures_total", "pinhole_cache_degraded",
               "pinhole_http_connections", "pinhole_render_queue_depth", "pinhole_encode_queue_length"]

    def __init__(self, server, t0, stop_event):
        super().__init__(daemon=True)
        self.server, self.t0, self.stop_event = server, t0, stop_event
        self.samples = []
        self.children_seen = {}
        self.server_exit = None
        self.client = Client()

    def metrics(self):
        answer = self.client.request(self.server.port, "GET", "/metrics")
        if answer.status != 200:
            return {}
        totals = {}
        for line in answer.body.decode(errors="replace").splitlines():
            if not line or line.startswith("#"):
                continue
            name_part, _, value = line.rpartition(" ")
            name = name_part.split("{", 1)[0].strip()
            if name in self.METRICS:
                with contextlib.suppress(ValueError):
                    totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def sample(self):
        pid = self.server.process.pid
        tree = proc_tree(pid)
        server = proc_facts(pid)
        if server is None:
            return None
        children = {"rss_kib": 0, "threads": 0, "fds": 0, "processes": 0}
        for child in tree:
            if child == pid:
                continue
            facts = proc_facts(child)
            if facts is None:
                continue
            self.children_seen[child] = facts[3]
            children["rss_kib"] += facts[0]
            children["threads"] += facts[1]
            children["fds"] += facts[2]
            children["processes"] += 1
        sample = {"t": round(time.monotonic() - self.t0, 1),
                  "server": {"rss_kib": server[0], "threads": server[1], "fds": server[2]},
                  "children": children,
                  "total": {"rss_kib": server[0] + children["rss_kib"], "threads": server[1] + children["threads"],
                            "fds": server[2] + children["fds"]}}
        with contextlib.suppress(Exception):
            sample["metrics"] = self.metrics()
        self.samples.append(sample)
        return sample

    def run(self):
        """The first sample (t = 0) is taken before the traffic starts, by the caller."""
        while not self.stop_event.wait(1.0):
            if not self.server.running():
                self.server_exit = (round(time.monotonic() - self.t0, 1), self.server.process.returncode)
                log(f"pinhole exited with {self.server.process.returncode} during the run")
                self.stop_event.set()
                return
            if time.monotonic() - self.t0 >= SAMPLE_EVERY * len(self.samples):
                with contextlib.suppress(Exception):
                    self.sample()


# ----------------------------------------------------------------------------------------------- traffic

class Soak:
    def __init__(self, server, args):
        self.server, self.args = server, args
        self.crypto = CryptoURL(key=KEY)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.records = []            # (t, kind, seconds, expected)
        self.errors = []             # (t, kind, reason, detail)
        self.error_counts = collections.Counter()
        self.corpus = {name: (CORPUS / name).read_bytes() for name in PHOTOS + OTHERS + BAD}
        self.random = random.Random(args.seed).randbytes(RANDOM_MAX + 1024 * 1024)
        self.seeds = {}              # corpus name -> component id (never removed)
        self.live = {}               # cid -> {"source": ("corpus", name) | ("random", offset, length), "md5", "size", "readers"}
        self.removed = set()
        self.known = []              # (path, sha1) of 200 thumbnails that stay valid (seed and file-loader sources)
        self.counters = collections.Counter()
        self.hit_headers = collections.Counter()
        self.expected_bad_url = {}   # class -> set of statuses
        self.expected_bad_file = {}  # (file, route) -> set of statuses
        self.probe_notes = []
        self.active = True           # False outside the measured traffic (seeding, probes)

    # --- records
    def record(self, kind, answer, problem=None, detail=""):
        now = time.monotonic() - self.t0
        if problem is None and answer.seconds > TIMEOUT:
            problem = "slower than 30 s"
        if problem is None and answer.error:
            problem = "connection error" if "timed out" not in answer.error else "timeout"
        with self.lock:
            if self.active:          # bucketed by when the request was sent
                self.records.append((now - answer.seconds, kind, answer.seconds, problem is None))
            if problem is not None:
                self.error_counts[(kind, problem)] += 1
                if len(self.errors) < 200:
                    body = answer.body[:200].decode(errors="replace") if answer.body else ""
                    self.errors.append({"t": round(now, 1), "kind": kind, "problem": problem, "status": answer.status,
                                        "detail": detail[:300], "error": answer.error, "body": body,
                                        "measured": self.active})
        return problem is None

    def unexpected(self):
        with self.lock:
            return sum(1 for r in self.records if not r[3])

    # --- URLs
    def source_url(self, cid):
        return f"http://127.0.0.1:{self.server.files_port}{files_path('get', cid)}"

    def component_image(self, cid):
        return urllib.parse.quote(self.source_url(cid), safe="")

    def thumb(self, image, width, height, fit_in=True):
        return self.crypto.generate(width=width, height=height, fit_in=fit_in, image_url=image)

    # --- checks
    @staticmethod
    def check_image(body, box, source_size, fit_in, strict):
        """None if `body` decodes fully and has the size Thumbor's geometry gives; else what is wrong."""
        try:
            with Image.open(io.BytesIO(body)) as img:
                img.load()
                width, height = img.size
        except Exception as error:         # noqa: BLE001 - any decoder complaint is the finding
            return f"not a decodable image ({type(error).__name__}: {str(error)[:80]})"
        W, H = box
        if width < 1 or height < 1 or width > W or height > H:
            return f"size {width}x{height} outside the box {W}x{H}"
        if not strict or source_size is None:
            return None
        sw, sh = source_size
        if not fit_in:
            return None if (width, height) == (W, H) else f"size {width}x{height}, expected {W}x{H}"
        if W >= sw and H >= sh:
            return None if (width, height) == (sw, sh) else f"size {width}x{height}, expected {sw}x{sh} (no upscaling)"
        scale = min(W / sw, H / sh)
        if abs(width - sw * scale) <= 1.01 and abs(height - sh * scale) <= 1.01:
            return None
        return f"size {width}x{height}, expected about {sw * scale:.1f}x{sh * scale:.1f} in {W}x{H}"

    def get_thumbnail(self, client, kind, path, box, source_size, fit_in, strict):
        answer = client.request(self.server.port, "GET", path)
        problem = None
        if answer.error is None:
            if answer.status != 200:
                problem = f"status {answer.status}"
            else:
                problem = self.check_image(answer.body, box, source_size, fit_in, strict)
        self.record(kind, answer, problem, f"GET {path}")
        return answer, problem is None and answer.error is None

    # --- operations
    def next_size(self, rnd):
        with self.lock:
            k = self.counters["size"]
            self.counters["size"] += 1
        return 32 + k % 992, 32 + (k // 992 + 7 * k) % 992

    def op_render(self, client, rnd):
        roll = rnd.random()
        if roll < 0.15 and self.live:
            return self.op_first_view(client, rnd)
        name = rnd.choice(PHOTOS) if rnd.random() < 0.85 else rnd.choice(OTHERS)
        photo = name in PHOTOS
        width, height = self.next_size(rnd)
        fit_in = not photo or rnd.random() < 0.7
        image = self.component_image(self.seeds[name]) if rnd.random() < 0.75 else name
        path = self.thumb(image, width, height, fit_in)
        answer, ok = self.get_thumbnail(client, "render", path, (width, height), displayed_size(name), fit_in, photo)
        if ok:
            with self.lock:
                self.known.append((path, hashlib.sha1(answer.body).digest()))
                if len(self.known) > 20000:
                    del self.known[:5000]

    def borrow(self, rnd, predicate=lambda info: True):
        with self.lock:
            candidates = [cid for cid, info in self.live.items() if predicate(info)]
            if not candidates:
                return None, None
            cid = rnd.choice(candidates)
            self.live[cid]["readers"] += 1
            return cid, self.live[cid]

    def give_back(self, cid):
        with self.lock:
            self.live[cid]["readers"] -= 1

    def op_first_view(self, client, rnd):
        """A thumbnail of an uploaded corpus image, at a pre-warmed size (as ftrack's UI asks right after an upload)."""
        cid, info = self.borrow(rnd, lambda i: i["source"][0] == "corpus")
        if cid is None:
            return
        try:
            name = info["source"][1]
            size = rnd.choice([(300, 300), (150, 150), (1024, 1024)])
            path = self.thumb(self.component_image(cid), *size)
            self.get_thumbnail(client, "render", path, size, displayed_size(name), True, name in PHOTOS)
        finally:
            self.give_back(cid)

    def op_hit(self, client, rnd):
        with self.lock:
            if not self.known:
                entry = None
            else:
                entry = self.known[rnd.randrange(len(self.known))]
        if entry is None:
            return self.op_render(client, rnd)
        path, digest = entry
        answer = client.request(self.server.port, "GET", path)
        problem = None
        if answer.error is None:
            if answer.status != 200:
                problem = f"status {answer.status}"
            elif hashlib.sha1(answer.body).digest() != digest:
                problem = "bytes differ from the first answer"
            with self.lock:
                self.hit_headers[answer.headers.get("X-Pinhole-Cache", "-") if answer.headers else "-"] += 1
        self.record("hit", answer, problem, f"GET {path}")

    def put(self, client, kind, cid, data, name, content_type):
        md5 = hashlib.md5(data)
        headers = {"Content-Type": content_type, "Content-MD5": base64.b64encode(md5.digest()).decode(),
                   "Content-Disposition": f'attachment; filename="{name}"'}
        answer = client.request(self.server.files_port, "PUT", files_path("put", cid), body=data, headers=headers)
        problem = None
        if answer.error is None:
            if answer.status != 200:
                problem = f"status {answer.status}"
            else:
                try:
                    if json.loads(answer.body)["md5"] != md5.hexdigest():
                        problem = "md5 in the answer differs"
                except (ValueError, KeyError, TypeError):
                    problem = "answer is not the upload's JSON"
        return self.record(kind, answer, problem, f"PUT {cid} {name} {len(data)} B")

    def op_upload(self, client, rnd):
        with self.lock:
            count = len(self.live)
        if count >= LIVE_MAX:
            return self.op_remove(client, rnd)
        cid = str(uuid.uuid4())
        if rnd.random() < 0.6:
            name = rnd.choice(PHOTOS + OTHERS)
            data = self.corpus[name]
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            source = ("corpus", name)
        else:
            length = rnd.randint(RANDOM_MIN, RANDOM_MAX)
            offset = rnd.randrange(len(self.random) - length)
            data = self.random[offset:offset + length]
            name, content_type, source = f"random-{length}.bin", "application/octet-stream", ("random", offset, length)
        if self.put(client, "upload", cid, data, name, content_type):
            with self.lock:
                self.live[cid] = {"source": source, "md5": hashlib.md5(data).hexdigest(), "size": len(data), "readers": 0}

    def bytes_of(self, info):
        source = info["source"]
        if source[0] == "corpus":
            return self.corpus[source[1]]
        return self.random[source[1]:source[1] + source[2]]

    def op_range(self, client, rnd):
        cid, info = self.borrow(rnd)
        if cid is None:
            return self.op_upload(client, rnd)
        try:
            data = self.bytes_of(info)
            size = len(data)
            roll = rnd.random()
            if roll < 0.1:
                header, status, expected, content_range = None, 200, data, None
            elif roll < 0.25:
                n = rnd.randint(1, size)
                header, status, expected = f"bytes=-{n}", 206, data[-n:]
                content_range = f"bytes {size - n}-{size - 1}/{size}"
            elif roll < 0.4:
                a = rnd.randrange(size)
                header, status, expected, content_range = f"bytes={a}-", 206, data[a:], f"bytes {a}-{size - 1}/{size}"
            else:
                a = rnd.randrange(size)
                b = min(size - 1, a + rnd.randint(0, 1 << rnd.randint(8, 21)))
                header, status, expected, content_range = f"bytes={a}-{b}", 206, data[a:b + 1], f"bytes {a}-{b}/{size}"
            answer = client.request(self.server.files_port, "GET", files_path("get", cid),
                                    headers={"Range": header} if header else {})
            problem = None
            if answer.error is None:
                if answer.status != status:
                    problem = f"status {answer.status}"
                elif answer.body != expected:
                    problem = f"wrong bytes ({len(answer.body)} B, expected {len(expected)} B)"
                elif content_range and answer.headers.get("Content-Range") != content_range:
                    problem = f"Content-Range {answer.headers.get('Content-Range')!r}, expected {content_range!r}"
            self.record("range", answer, problem, f"GET {cid} Range: {header} (size {size})")
        finally:
            self.give_back(cid)

    def remove(self, client, kind, cid):
        answer = client.request(self.server.files_port, "DELETE", files_path("remove", cid))
        problem = None
        if answer.error is None:
            if answer.status != 200:
                problem = f"status {answer.status}"
            else:
                try:
                    if json.loads(answer.body).get("removed") is not True:
                        problem = f"answer {answer.body[:80]!r}, expected removed: true"
                except (ValueError, AttributeError):
                    problem = "answer is not JSON"
        ok = self.record(kind, answer, problem, f"DELETE {cid}")
        check = client.request(self.server.files_port, "GET", files_path("get", cid))
        self.record(kind, check, None if check.error or check.status == 404 else f"status {check.status} after remove",
                    f"GET {cid} after its remove")
        return ok

    def op_remove(self, client, rnd):
        with self.lock:
            candidates = [cid for cid, info in self.live.items() if info["readers"] == 0]
            if len(self.live) <= LIVE_MIN or not candidates:
                cid = None
            else:
                cid = rnd.choice(candidates)
                del self.live[cid]
        if cid is None:
            return self.op_upload(client, rnd)
        if self.remove(client, "remove", cid):
            with self.lock:
                self.removed.add(cid)             # acknowledged: must be gone from the store

    # bad URLs: class -> (port, method, path)
    def bad_url(self, klass, rnd):
        photo = rnd.choice(PHOTOS)
        width, height = rnd.randint(20, 900), rnd.randint(20, 900)
        fake = str(uuid.uuid4())
        seed = self.seeds[photo]
        t, f = self.server.port, self.server.files_port
        if klass == "thumb: wrong key":
            return t, "GET", CryptoURL(key="not-the-key").generate(width=width, height=height, image_url=photo)
        if klass == "thumb: signature of another URL":
            signature = thumbor_sign(f"{width}x{height}/{photo}").split("/")[1]
            return t, "GET", f"/{signature}/{width + 1}x{height}/{photo}"
        if klass == "thumb: truncated signature":
            signed = thumbor_sign(f"{width}x{height}/{photo}")
            return t, "GET", "/" + signed.split("/")[1][:-1] + "/" + signed.split("/", 2)[2]
        if klass == "thumb: no signature":
            return t, "GET", f"/fit-in/{width}x{height}/{photo}"
        if klass == "thumb: unsafe":
            return t, "GET", f"/unsafe/fit-in/{width}x{height}/{photo}"
        if klass == "thumb: invalid UTF-8":
            return t, "GET", thumbor_sign(f"fit-in/{width}x{height}/%FF{width}.jpg")
        if klass == "thumb: output over the pixel limit":
            return t, "GET", thumbor_sign(f"99999999{width}x{height}/{photo}")
        if klass == "thumb: no such file":
            return t, "GET", thumbor_sign(f"{width}x{height}/nosuchfile-{fake}.jpg")
        if klass == "thumb: dot-dot path":
            return t, "GET", thumbor_sign(f"{width}x{height}/../../etc/passwd")
        if klass == "thumb: encoded dot-dot path":
            return t, "GET", thumbor_sign(f"{width}x{height}/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd")
        if klass == "thumb: garbage path":
            return t, "GET", "/" + "".join(rnd.choice("abc%$!~;:@&=+,") for _ in range(rnd.randint(1, 60)))
        if klass == "thumb: component with a bad file signature":
            url = f"http://127.0.0.1:{f}{files_path('get', seed, secret='not-the-secret')}"
            return t, "GET", self.thumb(urllib.parse.quote(url, safe=""), width, height)
        if klass == "thumb: component that does not exist":
            return t, "GET", self.thumb(self.component_image(fake), width, height)
        if klass == "files: get, bad signature":
            return f, "GET", files_path("get", seed, secret="not-the-secret")
        if klass == "files: get, no signature":
            return f, "GET", f"/get?id={seed}"
        if klass == "files: put, bad signature":
            return f, "PUT", files_path("put", fake, secret="not-the-secret")
        if klass == "files: remove, bad signature":
            return f, "DELETE", files_path("remove", seed, secret="not-the-secret")
        if klass == "files: implausible id":
            return f, "GET", files_path("get", "../" + fake)
        if klass == "files: unknown path":
            return f, "GET", f"/nothing/{fake}"
        raise ValueError(klass)

    BAD_URL_CLASSES = ["thumb: wrong key", "thumb: signature of another URL", "thumb: truncated signature",
                       "thumb: no signature", "thumb: unsafe", "thumb: invalid UTF-8", "thumb: output over the pixel limit",
                       "thumb: no such file", "thumb: dot-dot path", "thumb: encoded dot-dot path", "thumb: garbage path",
                       "thumb: component with a bad file signature", "thumb: component that does not exist",
                       "files: get, bad signature", "files: get, no signature", "files: put, bad signature",
                       "files: remove, bad signature", "files: implausible id", "files: unknown path"]

    def send_bad_url(self, client, klass, rnd):
        port, method, path = self.bad_url(klass, rnd)
        body = b"should not be stored" if method == "PUT" else None
        return client.request(port, method, path, body=body), f"{method} {path}"

    def op_bad_url(self, client, rnd):
        klass = rnd.choice(self.BAD_URL_CLASSES)
        answer, detail = self.send_bad_url(client, klass, rnd)
        expected = self.expected_bad_url[klass]
        problem = None if answer.error or answer.status in expected else \
            f"{klass}: status {answer.status}, probe gave {sorted(expected)}"
        self.record("bad_url", answer, problem, detail)

    def bad_file_request(self, client, name, route, rnd, kind):
        """route 'component': upload it, thumbnail it through its component URL, remove it; 'file': file loader."""
        size = (rnd.randint(40, 800), rnd.randint(40, 800))
        if route == "file":
            path = self.thumb(name, *size)
            return client.request(self.server.port, "GET", path), f"GET {path}"
        cid = str(uuid.uuid4())
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if not self.put(client, kind, cid, self.corpus[name], name.split("/")[-1], content_type):
            return None, None
        path = self.thumb(self.component_image(cid), *size)
        answer = client.request(self.server.port, "GET", path)
        self.remove(client, kind, cid)
        return answer, f"GET {path} ({name} uploaded as {cid})"

    def op_bad_file(self, client, rnd):
        if not BAD:
            return self.op_bad_url(client, rnd)
        name, route = rnd.choice(BAD), rnd.choice(["component", "component", "file"])
        answer, detail = self.bad_file_request(client, name, route, rnd, "bad_file")
        if answer is None:
            return
        expected = self.expected_bad_file[(name, route)]
        problem = None if answer.error or answer.status in expected else \
            f"{name} ({route}): status {answer.status}, probe gave {sorted(expected)}"
        self.record("bad_file", answer, problem, detail)

    # --- phases
    def seed(self):
        """Every corpus source rendered from is uploaded once, as a component that stays."""
        client = Client()
        try:
            for name in PHOTOS + OTHERS:
                cid = str(uuid.uuid4())
                content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if not self.put(client, "upload", cid, self.corpus[name], name, content_type):
                    raise RuntimeError(f"seeding: upload of {name} failed: {self.errors[-1]}")
                self.seeds[name] = cid
            for name, cid in self.seeds.items():
                answer = client.request(self.server.port, "GET", self.thumb(self.component_image(cid), 200, 200))
                if answer.status != 200:
                    raise RuntimeError(f"seeding: thumbnail of {name} answered {answer.status} {answer.error or ''} "
                                       f"{answer.body[:200]!r}")
        finally:
            client.close()

    def probe(self):
        """What Pinhole answers to each bad URL class and each bad file (each asked twice, with fresh URLs and
        components): those statuses are the expected ones from now on."""
        rnd = random.Random(self.args.seed + 1)
        client = Client()
        try:
            for klass in self.BAD_URL_CLASSES:
                statuses = set()
                for _ in range(2):
                    answer, detail = self.send_bad_url(client, klass, rnd)
                    if answer.error:
                        raise RuntimeError(f"probe {klass}: {answer.error} ({detail})")
                    statuses.add(answer.status)
                self.expected_bad_url[klass] = statuses
                if not all(400 <= s < 500 for s in statuses):
                    self.probe_notes.append(f"bad URL '{klass}' answered {sorted(statuses)} (README: a 4xx)")
            for name in BAD:
                for route in ("component", "file"):
                    statuses = set()
                    for _ in range(2):
                        answer, detail = self.bad_file_request(client, name, route, rnd, "probe")
                        if answer is None or answer.error:
                            raise RuntimeError(f"probe {name} {route}: {answer.error if answer else 'upload failed'}")
                        statuses.add(answer.status)
                    self.expected_bad_file[(name, route)] = statuses
                    if not all(400 <= s < 600 for s in statuses):
                        self.probe_notes.append(f"bad file {name} ({route}) answered {sorted(statuses)} (README: 4xx/5xx)")
        finally:
            client.close()

    def worker(self, index):
        rnd = random.Random(self.args.seed * 1000 + index)
        client = Client()
        operations = {"render": self.op_render, "hit": self.op_hit, "upload": self.op_upload, "range": self.op_range,
                      "remove": self.op_remove, "bad_url": self.op_bad_url, "bad_file": self.op_bad_file}
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        try:
            while not self.stop.is_set():
                kind = rnd.choices(kinds, weights)[0]
                try:
                    operations[kind](client, rnd)
                except Exception:          # noqa: BLE001 - a bug here must not end the soak silently
                    self.record(kind, Answer(error="client exception"), "client exception", traceback.format_exc()[-300:])
        finally:
            client.close()

    def final_check(self):
        """HEAD of every live upload and seed: present, with its size and MD5 (ETag)."""
        client = Client()
        missing = []
        try:
            expected = dict((cid, (info["size"], info["md5"])) for cid, info in self.live.items())
            for name, cid in self.seeds.items():
                data = self.corpus[name]
                expected[cid] = (len(data), hashlib.md5(data).hexdigest())
            for cid, (size, md5) in expected.items():
                answer = client.request(self.server.files_port, "HEAD", files_path("get", cid))
                if answer.status != 200 or answer.headers.get("ETag") != f'"{md5}"' \
                        or answer.headers.get("Content-Length") != str(size):
                    missing.append({"id": cid, "status": answer.status, "error": answer.error,
                                    "etag": answer.headers.get("ETag") if answer.headers else None})
        finally:
            client.close()
        return len(expected), missing


# ----------------------------------------------------------------------------------------------- leftovers

def leftovers(server, soak, encode):
    """Temporary files after the stop, by where they were found; and the store's components against what
    was acknowledged."""
    found = collections.defaultdict(list)
    files_root = server.dirs["files"]
    incoming = files_root / ".incoming"
    if incoming.exists():
        found["files/.incoming"] = [str(p) for p in incoming.rglob("*")]
    records, data_files = {}, []
    for path in files_root.rglob("*"):
        if not path.is_file() or incoming in path.parents or ".removals" in path.parts:
            continue
        if path.name.endswith(".pending"):
            found["files: *.pending"].append(str(path))
        elif path.name.endswith(".json") and len(path.parts) - len(files_root.parts) == 3:
            with contextlib.suppress(ValueError, OSError):
                records[path.name[:-5]] = (path.parent, json.loads(path.read_text()))
        elif path.name.endswith(".data"):
            data_files.append(path)
        elif re.search(r"\.(tmp|part|partial|temp)$|^\.", path.name):
            found["files: other temporary"].append(str(path))
    named = {shard / record.get("blob", "") for shard, record in records.values()}
    found["files: data files no record names"] = [str(p) for p in data_files if p not in named]
    for name in ("cache", "sources"):
        tmp = server.dirs[name] / ".tmp"
        if tmp.exists():
            found[f"{name}/.tmp"] = [str(p) for p in tmp.rglob("*")]
        found[f"{name}: other temporary"] = [str(p) for p in server.dirs[name].rglob("*")
                                             if p.is_file() and tmp not in p.parents
                                             and re.search(r"\.(tmp|part|partial|temp)$", p.name)]
    if server.dirs["review"].exists():
        found["review: *.tmp"] = [str(p) for p in server.dirs["review"].rglob("*.tmp")]
    found["TMPDIR"] = [str(p) for p in server.dirs["tmp"].rglob("*")]
    found = {k: v for k, v in found.items() if v}

    expected = set(soak.live) | set(soak.seeds.values())
    stored = set(records)
    store = {"records": len(stored), "expected": len(expected),
             "acknowledged_but_absent": sorted(expected - stored)[:20],
             "removed_but_present": sorted(stored & soak.removed)[:20],
             "unknown_present": len(stored - expected) if not encode else None}
    return found, store


# ----------------------------------------------------------------------------------------------- report

def steady(samples, since, window=6):
    """Per series, over the samples after warm-up (t >= `since`, not the one at rest): the mean; the means of
    the first, second and last third of the samples and the largest deviation of one from the mean (%); the
    least-squares slope per hour and the change it makes over the post-warm-up period, relative to the mean
    (trend %, signed). These judge flatness (see `flat`). As information: min, max and the largest deviation
    of a raw sample from the mean, and the same of the rolling medians over `window` samples (a minute) -
    what is in flight at the instant of a sample (uploads' temporary files, a 14.7 MP decode) moves the
    raw numbers and the medians by itself; a leak moves the thirds and the trend."""
    points = [s for s in samples if s["t"] >= since and not s.get("at_rest")]
    out = {}
    for group in ("server", "children", "total"):
        for field in ("rss_kib", "fds", "threads"):
            values = [s[group][field] for s in points]
            if not values:
                continue
            scale = 1024 if field == "rss_kib" else 1
            mean = sum(values) / len(values)
            times = [s["t"] for s in points]
            tm = sum(times) / len(times)
            var = sum((t - tm) ** 2 for t in times)
            slope = sum((t - tm) * (v - mean) for t, v in zip(times, values)) / var if var else 0.0
            span = times[-1] - times[0]
            count = len(values)
            thirds = [values[i * count // 3:(i + 1) * count // 3] or values for i in range(3)]   # (all, under 3)
            third_means = [sum(part) / len(part) for part in thirds]
            width = min(window, len(values))
            medians = [sorted(values[i:i + width])[width // 2] for i in range(len(values) - width + 1)]
            median_mean = sum(medians) / len(medians)

            def deviation(vs, m):
                return round(100 * max(max(vs) - m, m - min(vs)) / m, 1) if m else 0.0
            out[f"{group}_{field.replace('_kib', '_mib')}"] = {
                "mean": round(mean / scale, 1),
                "thirds_means": [round(m / scale, 1) for m in third_means],
                "thirds_deviation_pct": deviation(third_means, mean),
                "slope_per_hour": round(slope * 3600 / scale, 1), "steady_s": round(span, 1),
                "trend_pct": round(100 * slope * span / mean, 1) if mean else 0.0,
                "min": round(min(values) / scale, 1), "max": round(max(values) / scale, 1),
                "deviation_pct": deviation(values, mean),
                "minute_medians_min": round(min(medians) / scale, 1), "minute_medians_max": round(max(medians) / scale, 1),
                "minute_medians_deviation_pct": deviation(medians, median_mean),
                "samples": len(values)}
    return out


JUDGES = {
    "thirds": "the means of the first, second and last third of the samples each within ±{p:g} % of the mean of "
              "all, and the least-squares trend changing the series by less than {p:g} % of its mean over the period",
    "medians": "rolling 1-minute medians within ±{p:g} % of their mean",
    "raw": "every sample within ±{p:g} % of the mean",
}


def flat(series, judge, flat_pct):
    """Whether one series of `steady` is flat by `judge` (one of JUDGES)."""
    if judge == "thirds":
        return series["thirds_deviation_pct"] <= flat_pct and abs(series["trend_pct"]) < flat_pct
    if judge == "medians":
        return series["minute_medians_deviation_pct"] <= flat_pct
    return series["deviation_pct"] <= flat_pct


def flatness(steady_state, judge, flat_pct):
    """The "<series> flat" targets: the server's and the total's series (the children's are shown, not judged:
    workers are replaced after `decoder_recycle_after` jobs)."""
    return {f"{name} flat": flat(s, judge, flat_pct) for name, s in steady_state.items()
            if name.startswith(("server_", "total_"))}


def rejudged(targets, judged):
    """`targets` with its "<series> flat" entries replaced by `judged`, in the same place."""
    out = {}
    for key, ok in targets.items():
        if key.endswith(" flat"):
            out.update(judged)
            judged = {}
        else:
            out[key] = ok
    out.update(judged)
    return out


def rejudge(args):
    """--rejudge PATH: a saved result judged again with the current rules (its samples, its warm-up unless
    --warm-up is given, this run's --judge and --flat-pct); printed, and written back with --write.
    No server is started. 0 when every target is met, 1 when one is missed."""
    path = Path(args.rejudge)
    report = json.loads(path.read_text())
    if args.warm_up is not None:
        report["warm_up_s"] = round(args.warm_up * report["measured_s"], 1)
        report["config"]["warm_up"] = args.warm_up
    report["steady_state"] = steady(report["samples"], report["warm_up_s"])
    report["config"]["judge"], report["config"]["flat_pct"] = args.judge, args.flat_pct
    report["targets"] = rejudged(report["targets"], flatness(report["steady_state"], args.judge, args.flat_pct))
    report["rejudged"] = {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "judge": args.judge, "flat_pct": args.flat_pct}
    print_report(report)
    if args.write:
        path.write_text(json.dumps(report, indent=1, default=str) + "\n")
        log(f"wrote {path}")
    return 0 if all(report["targets"].values()) else 1


def per_minute(records, duration):
    """Rows by the minute a request was sent in (the last minute also holds what was sent in its last seconds)."""
    minutes = []
    count = max(1, int((duration + 59) // 60))
    for m in range(count):
        window = [r for r in records if m * 60 <= r[0] < (m + 1) * 60 or (m == count - 1 and r[0] >= count * 60)]
        row = {"minute": m + 1, "requests": len(window), "unexpected": sum(1 for r in window if not r[3]), "kinds": {}}
        for kind in KINDS:
            lat = [r[2] for r in window if r[1] == kind]
            row["kinds"][kind] = {"n": len(lat), "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99))}
        minutes.append(row)
    return minutes


def print_report(report):
    r = report
    print()
    rows = [
        ("binary", f"{r['binary']['source']} ({r['binary']['kind']}, {r['binary']['mtime']})"),
        ("traffic", f"{r['config']['minutes']} min at concurrency {r['config']['concurrency']}: {r['totals']['requests']} "
                    f"requests ({r['totals']['per_second']}/s)"),
        ("unexpected errors", f"{r['totals']['unexpected']} (target 0)" +
         (f"; by kind and problem: {r['unexpected_by_problem']}" if r['unexpected_by_problem'] else "")),
        ("hits", f"X-Pinhole-Cache of repeats: {r['hit_headers']}"),
        ("temp files left", f"{r['leftovers']['count']} (target 0)" +
         (f": { {k: len(v) for k, v in r['leftovers']['found'].items()} }" if r['leftovers']['count'] else "")),
        ("store", f"{r['store']['records']} components stored, {r['store']['expected']} expected; acknowledged but absent "
                  f"{len(r['store']['acknowledged_but_absent'])}, removed but present {len(r['store']['removed_but_present'])}; "
                  f"final HEAD check: {len(r['final_check']['mismatches'])} of {r['final_check']['checked']} wrong"),
        ("shutdown", (f"pinhole had exited during the run (t, status): {r['server_exit_during_run']}"
                      if r["server_exit_during_run"] else
                      f"SIGTERM -> exit status {r['shutdown']['exit_status']} after {r['shutdown']['seconds']} s"
                      f"{' (had to SIGKILL)' if r['shutdown']['killed'] else ''}")
                     + f"; processes left {r['shutdown']['left_running']}"),
        ("server log", f"{r['server_log']['lines']} lines by level {r['server_log']['levels']} ({r['server_log']['path']})"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for message, count in list(r["server_log"]["by_message"].items())[:8]:
        print(f"{'':<{width}}  {count:>6} x {message}")
    print()
    judge = {"minute": "medians"}.get(r["config"]["judge"], r["config"]["judge"])
    print(f"after warm-up (t >= {r['warm_up_s']} s), every {SAMPLE_EVERY:g} s; target for server and total: "
          + JUDGES[judge].format(p=r["config"]["flat_pct"]))
    print(f"  {'series':<18} {'mean':>8} {'thirds (means)':>22} {'dev %':>6} {'slope/h':>8} {'trend %':>7}   "
          f"{'min':>8} {'max':>8} {'dev %':>6} {'med min':>8} {'med max':>8} {'dev %':>6} {'n':>4}")
    for name, s in r["steady_state"].items():
        thirds = " ".join(str(m) for m in s.get("thirds_means", []))
        print(f"  {name:<18} {s['mean']:>8} {thirds:>22} {s.get('thirds_deviation_pct', '-'):>6} {s['slope_per_hour']:>8} "
              f"{s.get('trend_pct', '-'):>7}   {s['min']:>8} {s['max']:>8} {s['deviation_pct']:>6} "
              f"{s['minute_medians_min']:>8} {s['minute_medians_max']:>8} {s['minute_medians_deviation_pct']:>6} {s['samples']:>4}")
    if r.get("at_rest"):
        a = r["at_rest"]
        print(f"  at rest after the traffic: server RSS {a['server']['rss_kib'] // 1024} MiB, fds {a['server']['fds']}, "
              f"threads {a['server']['threads']}; children RSS {a['children']['rss_kib'] // 1024} MiB, "
              f"fds {a['children']['fds']}, threads {a['children']['threads']} ({a['children']['processes']} processes)")
    print()
    print("per minute: requests, unexpected, p50/p99 ms per kind")
    print(f"  {'min':>3} {'req':>6} {'unexp':>5}  " + "  ".join(f"{k:>14}" for k in KINDS))
    for row in r["per_minute"]:
        cells = []
        for kind in KINDS:
            k = row["kinds"][kind]
            cells.append(f"{k['p50_ms']}/{k['p99_ms']}" if k["n"] else "-")
        print(f"  {row['minute']:>3} {row['requests']:>6} {row['unexpected']:>5}  " + "  ".join(f"{c:>14}" for c in cells))
    print()
    print("totals per kind: " + ", ".join(f"{k} {v['n']} (p50 {v['p50_ms']}, p99 {v['p99_ms']} ms, {v['unexpected']} unexpected)"
                                          for k, v in r["kinds"].items()))
    for note in r["notes"]:
        print("NOTE:", note)
    print()
    print("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["targets"].items()))


def server_log_summary(path):
    """Lines of the server's log by level, and the warning-or-worse messages (numbers and ids blanked)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    levels, messages = collections.Counter(), collections.Counter()
    for line in lines:
        level, message = None, line
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                level, message = entry.get("level"), f"[{entry.get('label')}] {entry.get('message')}"
        else:
            match = re.match(r"^\S+ (trace|debug|info|notice|warning|error|critical) \S+: (.*)$", line)
            if match:
                level = match.group(1)
                tail = re.search(r"(\[\w+\] .*)$", match.group(2))
                error = re.search(r"error=(.*?) (?:path|status|\w+=|\[)", match.group(2))
                message = (tail.group(1) if tail else match.group(2)) + (f" ({error.group(1)})" if error else "")
        levels[level or "other"] += 1
        if level in ("warning", "error", "critical"):
            messages[f"{level}: " + re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "#", message)[:160]] += 1
    return {"path": str(path), "lines": len(lines), "levels": dict(levels),
            "warning_or_error": sum(levels[k] for k in ("warning", "error", "critical")),
            "by_message": dict(messages.most_common(20))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    default_binary = Path("/work/release-build/release/pinhole")
    parser.add_argument("--binary", default=str(default_binary if default_binary.exists()
                                                else REPO / ".build" / "debug" / "pinhole"))
    parser.add_argument("--warm-up", type=float, default=None,
                        help="fraction of the run before RSS/fds/threads are judged (0.2; with --rejudge, the saved run's)")
    parser.add_argument("--flat-pct", type=float, default=10.0, help="allowed deviation from the post-warm-up mean")
    parser.add_argument("--judge", choices=list(JUDGES), default="thirds",
                        help="flatness after warm-up: means of the three thirds and the least-squares trend (default), "
                             "rolling 1-minute medians, or every raw sample, within --flat-pct of the mean")
    parser.add_argument("--rejudge", metavar="PATH", help="judge a saved result (its samples) with the current rules, "
                                                          "print the report and exit 0/1; starts no server")
    parser.add_argument("--write", action="store_true", help="with --rejudge: write the rejudged result back to PATH")
    parser.add_argument("--encode", action="store_true", help="leave review encoding on (off by default, as in the cluster "
                                                              "benchmark: an idle-class encoder under full load only queues)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the work directory's data (the log is always kept)")
    parser.add_argument("--output", default=str(HERE / "last-run.json"))
    args = parser.parse_args()
    if args.write and not args.rejudge:
        parser.error("--write goes with --rejudge")
    if args.rejudge:
        return rejudge(args)
    if args.warm_up is None:
        args.warm_up = 0.2
    duration = args.minutes * 60

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminate)

    binary = Path(args.binary)
    stat = binary.stat()
    work = Path(tempfile.mkdtemp(prefix=f"pinhole-soak-{time.strftime('%H%M%S')}-", dir="/tmp"))
    log(f"work directory {work}; binary {binary}")
    server = Server(binary, work, args.encode)
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "work": str(work), "notes": [],
              "binary": {"source": str(binary), "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime)),
                         "kind": "debug" if "debug" in str(binary) or str(binary) == "/work/bin/pinhole" else "release"},
              "config": {"minutes": args.minutes, "concurrency": args.concurrency, "weights": WEIGHTS, "warm_up": args.warm_up,
                         "flat_pct": args.flat_pct, "judge": args.judge, "encode": args.encode, "seed": args.seed, "timeout_s": TIMEOUT,
                         "sample_every_s": SAMPLE_EVERY, "live_uploads": [LIVE_MIN, LIVE_MAX],
                         "machine_cores": os.cpu_count(), "niceness": os.nice(0)}}
    features = Path(args.binary).parent / "FEATURES"
    if features.exists():
        report["features"] = features.read_text().split()
    exit_code = 0
    sampler = None
    soak = None
    try:
        log(f"starting pinhole serve (thumbnails :{server.port}, files :{server.files_port}) ...")
        report["startup_s"] = round(server.start(), 2)
        soak = Soak(server, args)
        soak.active = False
        log(f"healthy after {report['startup_s']} s; seeding {len(PHOTOS) + len(OTHERS)} components, probing "
            f"{len(Soak.BAD_URL_CLASSES)} bad URL classes and {len(BAD)} bad files ...")
        soak.seed()
        soak.probe()
        report["probe"] = {"bad_urls": {k: sorted(v) for k, v in soak.expected_bad_url.items()},
                           "bad_files": {f"{n} ({r})": sorted(v) for (n, r), v in soak.expected_bad_file.items()},
                           "notes": soak.probe_notes}
        for note in soak.probe_notes:
            report["notes"].append("probe: " + note)
        pre_errors = list(soak.errors)
        if pre_errors:
            raise RuntimeError(f"errors while seeding and probing: {pre_errors[:3]}")
        log("probe: " + "; ".join(f"{k} {sorted(v)}" for k, v in soak.expected_bad_url.items()))
        log("probe: " + "; ".join(f"{n} ({r}) {sorted(v)}" for (n, r), v in soak.expected_bad_file.items()))

        soak.t0 = time.monotonic()
        soak.active = True
        sampler = Sampler(server, soak.t0, soak.stop)
        sampler.sample()                             # t = 0, before the traffic
        sampler.start()
        log(f"traffic for {args.minutes:g} min at concurrency {args.concurrency} ...")
        workers = [threading.Thread(target=soak.worker, args=(i,), daemon=True) for i in range(args.concurrency)]
        for worker in workers:
            worker.start()
        next_minute = 60
        while not soak.stop.is_set() and time.monotonic() - soak.t0 < duration:
            soak.stop.wait(min(1.0, max(0.0, duration - (time.monotonic() - soak.t0))))
            elapsed = time.monotonic() - soak.t0
            if elapsed >= next_minute:
                with soak.lock:
                    window = [rec for rec in soak.records if next_minute - 60 <= rec[0] < next_minute]
                last = sampler.samples[-1] if sampler.samples else None
                log(f"  minute {next_minute // 60}: {len(window)} requests, {sum(1 for x in window if not x[3])} unexpected"
                    + (f"; RSS {last['server']['rss_kib'] // 1024} MB (+{last['children']['rss_kib'] // 1024} MB children), "
                       f"fds {last['server']['fds']}, threads {last['server']['threads']}" if last else ""))
                next_minute += 60
        soak.stop.set()
        for worker in workers:
            worker.join(TIMEOUT + 10)
        sampler.join(SAMPLE_EVERY + 5)
        measured = time.monotonic() - soak.t0
        if sampler.server_exit is None:
            time.sleep(2.5)                         # at rest: in-flight work done, free heap pages handed back
            final = sampler.sample()
            if final is not None:
                final["at_rest"] = True
        report["measured_s"] = round(measured, 1)
        soak.active = False
        if server.running():
            checked, mismatches = soak.final_check()
        else:
            checked, mismatches = 0, [{"error": "server not running"}]
        report["final_check"] = {"checked": checked, "mismatches": mismatches[:20]}
    except KeyboardInterrupt as interrupt:
        log(f"interrupted ({interrupt})")
        exit_code = 130
    except Exception:          # noqa: BLE001 - reported, then the server is stopped
        traceback.print_exc()
        exit_code = 2
    finally:
        if soak is not None:
            soak.stop.set()
        children = dict(sampler.children_seen) if sampler else {}
        if server.running():
            children.update({pid: "?" for pid in proc_tree(server.process.pid) if pid != server.process.pid})
        log("SIGTERM to pinhole ...")
        status, seconds, killed = server.terminate(75)
        time.sleep(0.5)
        left = sorted(pid for pid in children if alive(pid))
        for pid in left:                              # only processes this server started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        report["shutdown"] = {"exit_status": status, "seconds": seconds, "killed": killed,
                              "left_running": [f"{pid} {children[pid]}" for pid in left]}
        log(f"  exit status {status} after {seconds} s{' (SIGKILL)' if killed else ''}; left running: {left}")

    if exit_code:
        log(f"work directory kept: {work}")
        return exit_code

    found, store = leftovers(server, soak, args.encode)
    report["leftovers"] = {"count": sum(len(v) for v in found.values()), "found": {k: v[:20] for k, v in found.items()}}
    report["store"] = store
    records = soak.records
    report["totals"] = {"requests": len(records), "unexpected": sum(1 for r in records if not r[3]),
                        "per_second": round(len(records) / max(1.0, report["measured_s"]), 1)}
    report["kinds"] = {kind: {"n": len(lat), "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)),
                              "unexpected": sum(1 for r in records if r[1] == kind and not r[3])}
                       for kind in KINDS for lat in [[r[2] for r in records if r[1] == kind]]}
    report["unexpected_by_problem"] = {f"{k}: {p}": n for (k, p), n in sorted(soak.error_counts.items())}
    report["unexpected_examples"] = soak.errors[:50]
    report["hit_headers"] = dict(soak.hit_headers)
    report["per_minute"] = per_minute(records, duration)
    report["warm_up_s"] = round(args.warm_up * report["measured_s"], 1)
    report["steady_state"] = steady(sampler.samples, report["warm_up_s"])
    report["samples"] = sampler.samples
    report["server_exit_during_run"] = sampler.server_exit
    report["server_log"] = server_log_summary(server.log_path)
    report["at_rest"] = next((s for s in sampler.samples if s.get("at_rest")), None)
    report["targets"] = {
        "no unexpected errors": report["totals"]["unexpected"] == 0 and not soak.error_counts,
        **flatness(report["steady_state"], args.judge, args.flat_pct),
        "no temp files left": report["leftovers"]["count"] == 0,
        "no processes left": not report["shutdown"]["left_running"],
        "store as acknowledged": not store["acknowledged_but_absent"] and not store["removed_but_present"]
                                 and not report["final_check"]["mismatches"],
        "server ran to the end": sampler.server_exit is None,
    }
    if "shutdown" in report.get("features", []):
        report["targets"]["SIGTERM exits 0"] = report["shutdown"]["exit_status"] == 0 and not report["shutdown"]["killed"]
    elif report["shutdown"]["exit_status"] != 0 and sampler.server_exit is None:
        report["notes"].append(f"pinhole exited {report['shutdown']['exit_status']} on SIGTERM (exit 0 on SIGTERM is "
                               f"the 'shutdown' feature of issue 15: not a target of this soak until it has landed)")
    if not args.keep:
        shutil.rmtree(server.data, ignore_errors=True)
        shutil.rmtree(server.dirs["tmp"], ignore_errors=True)
        shutil.rmtree(work / "bin", ignore_errors=True)
    Path(args.output).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print_report(report)
    log(f"wrote {args.output}; server log {server.log_path}")
    return 0 if all(report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
