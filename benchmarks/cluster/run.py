#!/usr/bin/env python3
"""A whole Pinhole cluster on one machine under mixed load (see README.md in this directory).

    .venv/bin/python benchmarks/cluster/run.py [--duration S] [--quick] [--binary PATH] [--upload-rate R]

Brings up SeaweedFS (1 master, 3 volume servers at replication 001, a filer with S3), three `pinhole serve`
nodes storing components in that bucket, and nginx with the shipped config/nginx/pinhole-cluster.conf in
front of them. Then: seed uploads, mixed load through nginx only (uploads, first views, repeat views; node 2
and volume server 1 are SIGKILLed at 40 % and restarted at 70 %), then short throughput phases with nginx
pointed at 1, 2 and 3 nodes. Prints a report and writes benchmarks/cluster/last-run.json. Everything listens
on 127.0.0.1; every process started here is stopped by its PID at the end, also on Ctrl-C or an error.
"""
import argparse
import base64
import collections
import contextlib
import ctypes
import hashlib
import hmac
import io
import json
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
sys.path.insert(0, str(REPO / "Tests" / "python"))

import requests  # noqa: E402
from libthumbor import CryptoURL  # noqa: E402
from PIL import Image  # noqa: E402

from seaweed import SeaweedFS  # noqa: E402

KEY = "cluster-benchmark-security-key"
FILES_SECRET = "cluster-benchmark-files-secret-0123456789abcdef"
PREWARM_SIZES = ["fit-in/100x100", "fit-in/300x300"]          # rendered on upload (thumbnails.prewarm_sizes)
VIEW_SIZES = PREWARM_SIZES + ["fit-in/600x600"]                # what the clients view; 600 only on demand
NODES = 3
KILLED_NODE = 2            # 1-based, as nginx's upstream lists number them (ports 1880N/1900N in the shipped file)
KILLED_VOLUME = 1          # 0-based, as the SeaweedFS harness numbers volume servers
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)


# ----------------------------------------------------------------------------------------------- helpers

_ports = set()


def free_port():
    """A free loopback port in 10000-14999: below the SeaweedFS harness's 15000-32767 pairs and below the
    kernel's ephemeral range, so an outgoing connection cannot take a dead node's port before it restarts."""
    for _ in range(5000):
        port = random.randrange(10000, 15000)
        if port in _ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports.add(port)
        return port
    raise RuntimeError("no free port")


def die_with_parent():
    """In the child before exec: SIGKILL it when the (main) thread that started it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG


def preexec():
    return die_with_parent if threading.current_thread() is threading.main_thread() else None


def file_signature(params, secret=FILES_SECRET):
    """Pinhole's canonical file-server signature (HMAC-SHA256 of the sorted k=v pairs, URL-safe base64)."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def ms(value):
    return None if value is None else round(value * 1000, 1)


def parse_metrics(text):
    totals = collections.Counter()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        with contextlib.suppress(ValueError):
            totals[name] += float(value)
    return totals


def proc_table():
    """{pid: (ppid, rss KiB, cpu ticks)} of every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, utime, stime, rss_pages = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
            table[int(entry.name)] = (ppid, rss_pages * os.sysconf("SC_PAGE_SIZE") // 1024, utime + stime)
        except (OSError, ValueError, IndexError):
            continue
    return table


def descendants(table, roots):
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    seen, stack = set(), [r for r in roots if r in table]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, ()))
    return seen


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------- sources

SOURCE_CLASSES = [(40, 640, 480, 6), (30, 1280, 960, 20), (20, 2048, 1536, 24), (10, 3072, 2048, 28)]


def make_sources(seed=20261130):
    """100 JPEGs, 25 KB to about 2.3 MB: gradients + coarse and fine noise (they compress like photos, not
    like flat colour or like pure noise), four sizes from 640x480 to 3072x2048."""
    rnd = random.Random(seed)
    out = []
    for count, w, h, sigma in SOURCE_CLASSES:
        fine = [Image.effect_noise((w + 64, h + 64), sigma) for _ in range(3)]
        for i in range(count):
            bands = []
            for c in range(3):
                gradient = Image.linear_gradient("L").rotate(rnd.uniform(0, 360)).resize((w, h), Image.BILINEAR)
                coarse = Image.effect_noise((max(8, w // 32), max(8, h // 32)), 60).resize((w, h), Image.BICUBIC)
                dx, dy = rnd.randrange(64), rnd.randrange(64)
                grain = fine[(c + i) % 3].crop((dx, dy, dx + w, dy + h))
                bands.append(Image.blend(Image.blend(gradient, coarse, 0.5), grain, 0.3))
            buffer = io.BytesIO()
            Image.merge("RGB", bands).save(buffer, "JPEG", quality=rnd.choice([85, 90, 92]))
            body = buffer.getvalue()
            out.append((body, base64.b64encode(hashlib.md5(body).digest()).decode()))
    return out


# ----------------------------------------------------------------------------------------------- Pinhole

class Node:
    """One `pinhole serve`: thumbnails and file server, components in the S3 bucket."""

    def __init__(self, index, binary, work, env):
        self.index, self.binary, self.env = index, binary, env
        self.port, self.files_port = int(env["PINHOLE_THUMBNAILS_PORT"]), int(env["PINHOLE_FILES_PORT"])
        self.dir = work / f"node{index}"
        self.log_path = work / "logs" / f"node{index}.log"
        self.process = None
        self.starts = 0
        self.pids = []

    def start(self, timeout=90):
        self.starts += 1
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"\n===== {time.strftime('%H:%M:%S')} start #{self.starts}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen([self.binary, "serve"], env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL,
                                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=preexec())
        self.pids.append(self.process.pid)
        began = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.index} exited with {self.process.returncode}; log {self.log_path}:\n"
                                   + self.log_tail())
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{self.port}/healthcheck", timeout=1).status_code == 200:
                    with contextlib.suppress(OSError):
                        socket.create_connection(("127.0.0.1", self.files_port), timeout=1).close()
                        return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"node {self.index} not healthy after {timeout} s; log {self.log_path}:\n" + self.log_tail())
            time.sleep(0.05)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def pid(self):
        return self.process.pid if self.running() else None

    def kill(self):
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout=15):
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"node {self.index} did not exit {timeout} s after SIGTERM: SIGKILL")
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines=30):
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


# ----------------------------------------------------------------------------------------------- nginx

def sockets_of(pids):
    """`ss -tanpo` lines of the given processes' TCP sockets, each with the line of its peer (which process
    holds the other end, when it is on this machine)."""
    lines = subprocess.run(["ss", "-tanpo"], capture_output=True, text=True).stdout.splitlines()
    out = []
    for line in lines:
        if any(f"pid={pid}," in line for pid in pids):
            fields = line.split()
            peer = fields[4] if len(fields) > 4 else ""
            owner = [other for other in lines if other.startswith("ESTAB") and other.split()[3:4] == [peer]
                     and other.split()[4:5] == fields[3:4]] if peer.startswith("127.") else []
            out.append(" ".join(line.split()) + "  <->  " + (" ".join(owner[0].split()) if owner else "?"))
    return out


class Nginx:
    """/usr/sbin/nginx, not a daemon, own prefix, the shipped cluster config with our ports."""

    def __init__(self, work, nodes, port, files_port, workers=1):
        self.work = work / "nginx"
        self.work.mkdir()
        self.nodes, self.workers = nodes, workers
        self.port, self.files_port = port, files_port
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.shipped = (REPO / "config" / "nginx" / "pinhole-cluster.conf").read_text()
        self.process = None
        self.count = NODES
        self.lingering = []

    def render(self, count, access_log=True):
        text = self.shipped
        for i in range(1, NODES + 1):
            for template, attribute in (("1880", "port"), ("1900", "files_port")):
                pattern = re.compile(rf"^(\s*server 127\.0\.0\.1:){template}{i}( .*\n)", re.M)
                assert len(pattern.findall(text)) == 1, (template, i)
                if i <= count:
                    text = pattern.sub(lambda m: f"{m.group(1)}{getattr(self.nodes[i - 1], attribute)}{m.group(2)}", text)
                else:
                    text = pattern.sub("", text)
        assert "127.0.0.1:1880" not in text and "127.0.0.1:1900" not in text
        assert "listen 8888;" in text and "listen 9000;" in text
        text = (text.replace("listen 8888;", f"listen 127.0.0.1:{self.port};")
                .replace("listen 9000;", f"listen 127.0.0.1:{self.files_port};"))
        # Outside the shipped text: which node answered (measurement only; the shipped blocks define no
        # add_header of their own, so they inherit this one).
        (self.work / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes {self.workers};
worker_shutdown_timeout 10s;
daemon off;
pid {self.work}/nginx.pid;
error_log {self.work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format bench '$msec $server_port $request_method $status $request_time "$upstream_response_time" '
                     '"$upstream_http_x_pinhole_cache" "$upstream_addr" "$http_user_agent"';
    {f"access_log {self.work}/access.log bench buffer=256k flush=1s;" if access_log else "access_log off;"}
    client_body_temp_path {self.work}/body;
    proxy_temp_path {self.work}/proxy;
    add_header X-Upstream-Addr $upstream_addr always;
{text}
}}
""")
        self.count = count

    def start(self):
        self.render(NODES)
        self.process = subprocess.Popen([self.binary, "-c", str(self.work / "nginx.conf"), "-p", str(self.work)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(self.work / "stderr.log", "ab"), start_new_session=True,
                                        preexec_fn=preexec())
        deadline = time.monotonic() + 20
        for port in (self.port, self.files_port):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited: {(self.work / 'stderr.log').read_text()}"
                                       f"{(self.work / 'error.log').read_text() if (self.work / 'error.log').exists() else ''}")
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen")
                time.sleep(0.05)

    def worker_pids(self):
        table = proc_table()
        return [pid for pid, (ppid, _, _) in table.items() if ppid == self.process.pid]

    def reload(self, count, access_log=True):
        """Points both upstreams at the first `count` nodes: new config, SIGHUP, until only new workers remain."""
        old = set(self.worker_pids())
        self.render(count, access_log)
        check = subprocess.run([self.binary, "-t", "-c", str(self.work / "nginx.conf"), "-p", str(self.work)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t: {check.stderr}")
        self.process.send_signal(signal.SIGHUP)
        began = time.monotonic()
        reported = False
        while time.monotonic() < began + 30:
            now = set(self.worker_pids())
            if now and not (now & old) and len(now) == self.workers:
                return round(time.monotonic() - began, 2)
            if not reported and time.monotonic() > began + 3:
                # An old worker waits for a connection with a request in progress: which one?
                reported = True
                lingering = sorted(now & old)
                mine = sockets_of(lingering)
                self.lingering.append({"count": count, "old_workers": lingering, "sockets": mine[:20]})
                log(f"  nginx reload: old worker(s) {lingering} still busy after 3 s; their sockets: {mine[:6]}")
            time.sleep(0.1)
        raise RuntimeError("nginx reload: old workers still running after 30 s")

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if not self.running():
            return
        workers = self.worker_pids()
        self.process.send_signal(signal.SIGQUIT)        # graceful: finish requests, then exit
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            mine = sockets_of(workers)
            self.lingering.append({"count": "stop", "old_workers": workers, "sockets": mine[:20]})
            log(f"  nginx stop: worker(s) still busy after 3 s; their sockets: {mine[:6]}")
        try:
            self.process.wait(12)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                for pid in self.worker_pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait(5)

    def error_lines(self):
        path = self.work / "error.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []


# ----------------------------------------------------------------------------------------------- monitors

class Monitor(threading.Thread):
    """Every second: RSS and CPU of every process of the rig (Pinhole nodes and their children, weed, nginx
    master and workers), and each running node's /metrics counters (restarts handled: a counter that goes
    down starts from the sum so far)."""

    def __init__(self, rig):
        super().__init__(daemon=True)
        self.rig = rig
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.samples = []                    # (t, {group: KiB})
        self.cpu_ticks = {}                  # pid -> (group, last ticks)
        self.counters = {}                   # (node, name) -> [base, last]

    def groups(self):
        groups = {"pinhole": [n.pid() for n in self.rig.nodes if n.pid()],
                  "weed": [pid for pid in self.rig.seaweed.processes().values() if pid] if self.rig.seaweed else [],
                  "nginx": [self.rig.nginx.process.pid] if self.rig.nginx and self.rig.nginx.running() else []}
        return groups

    def sample_processes(self):
        table = proc_table()
        rss = {}
        for group, roots in self.groups().items():
            pids = descendants(table, roots)
            rss[group] = sum(table[p][1] for p in pids)
            for pid in pids:
                self.cpu_ticks[pid] = (group, table[pid][2])
        with self.lock:
            self.samples.append((time.monotonic(), rss))

    def scrape(self, node):
        if not node.running():
            return
        with contextlib.suppress(requests.RequestException):
            response = requests.get(f"http://127.0.0.1:{node.port}/metrics", timeout=2)
            if response.status_code != 200:
                return
            with self.lock:
                for name, value in parse_metrics(response.text).items():
                    entry = self.counters.setdefault((node.index, name), [0.0, 0.0])
                    if value < entry[1]:         # the node restarted: its counters began again at 0
                        entry[0] += entry[1]
                    entry[1] = value

    def counter(self, name, node=None):
        with self.lock:
            return sum(base + last for (index, n), (base, last) in self.counters.items()
                       if n == name and (node is None or index == node))

    def cpu_seconds(self):
        totals = collections.Counter()
        for group, ticks in self.cpu_ticks.values():
            totals[group] += ticks / CLK_TCK
        return dict(totals)

    def peak(self, since=None, until=None):
        with self.lock:
            window = [(t, s) for t, s in self.samples if (since is None or t >= since) and (until is None or t <= until)]
        if not window:
            return None
        t, best = max(window, key=lambda item: sum(item[1].values()))
        return {"total_mib": round(sum(best.values()) / 1024, 1),
                **{f"{group}_mib": round(kib / 1024, 1) for group, kib in best.items()}}

    def run(self):
        while not self.stopping.wait(1.0):
            with contextlib.suppress(Exception):
                self.sample_processes()
            for node in self.rig.nodes:
                self.scrape(node)


# ----------------------------------------------------------------------------------------------- load

class Load:
    """Clients of the cluster, through nginx only. Every request is recorded:
    (start s since t0, kind, category, status or None, X-Pinhole-Cache, latency s, answering node, error, url, phase)."""

    def __init__(self, rig, sources, seed=1):
        self.rig = rig
        self.sources = sources
        self.records = []
        self.components = []                 # ids uploaded (200)
        self.known = []                      # thumbnail URLs answered 200 at least once
        self.known_set = set()
        self.pending = collections.deque()   # first views waiting (a new upload's sizes)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.phase = "seed"
        self.crypto = CryptoURL(key=KEY)
        self.url_cache = {}
        self.seed = seed
        self.upload_schedule = 0
        self.late_uploads = 0
        self.uploaded_at = {}
        self.first_view_within = 4.0

    # URLs exactly as ftrack builds them: the component's signed /get URL (through nginx), percent-encoded
    # whole, as the image part of a signed Thumbor URL.
    def source_url(self, cid):
        signature = file_signature({"id": cid})
        return f"http://127.0.0.1:{self.rig.nginx.files_port}/get?id={cid}&signature={signature}"

    def url(self, cid, size):
        key = (cid, size)
        if key not in self.url_cache:
            width, height = (int(x) for x in size.split("/")[-1].split("x"))
            self.url_cache[key] = self.crypto.generate(width=width, height=height, fit_in=size.startswith("fit-in/"),
                                                       image_url=urllib.parse.quote(self.source_url(cid), safe=""))
        return self.url_cache[key]

    def node_of(self, response):
        upstream = response.headers.get("X-Upstream-Addr", "")
        last = upstream.split(",")[-1].strip()
        port = last.rsplit(":", 1)[-1] if last else ""
        return self.rig.node_by_port.get(int(port), None) if port.isdigit() else None

    def get(self, session, url, category, timeout=60):
        started = time.monotonic()
        try:
            response = session.get(f"http://127.0.0.1:{self.rig.nginx.port}{url}", timeout=timeout)
            body = response.content
            record = (started - self.t0, "get", category, response.status_code, response.headers.get("X-Pinhole-Cache"),
                      time.monotonic() - started, self.node_of(response),
                      None if response.status_code == 200 else body[:200].decode(errors="replace"), url, self.phase)
        except requests.RequestException as error:
            record = (started - self.t0, "get", category, None, None, time.monotonic() - started, None, repr(error)[:300],
                      url, self.phase)
        self.records.append(record)
        if record[3] == 200 and url not in self.known_set:
            with self.lock:
                if url not in self.known_set:
                    self.known_set.add(url)
                    self.known.append(url)
        return record

    def put(self, session, category):
        cid = str(uuid.uuid4())
        body, md5 = random.choice(self.sources)
        params = {"id": cid}
        params["signature"] = file_signature(params)
        url = f"http://127.0.0.1:{self.rig.nginx.files_port}/put?{urllib.parse.urlencode(params)}"
        for attempt in (1, 2):             # nginx cannot resend a streamed body; the client retries once
            started = time.monotonic()
            try:
                response = session.put(url, data=body, timeout=120,
                                       headers={"Content-Type": "image/jpeg", "Content-MD5": md5})
                record = (started - self.t0, "put", f"{category}#{attempt}", response.status_code, None,
                          time.monotonic() - started, self.node_of(response),
                          None if response.status_code == 200 else response.text[:200], cid, self.phase)
            except requests.RequestException as error:
                record = (started - self.t0, "put", f"{category}#{attempt}", None, None, time.monotonic() - started,
                          None, repr(error)[:300], cid, self.phase)
            self.records.append(record)
            if record[3] == 200:
                done = time.monotonic()
                with self.lock:
                    self.components.append(cid)
                    for size in VIEW_SIZES:
                        url = self.url(cid, size)
                        self.uploaded_at[url] = done - self.t0
                        # Someone looks at each size within 4 s of the upload (uniformly spread).
                        self.pending.append((done + random.uniform(0, self.first_view_within), url))
                return cid
            time.sleep(0.5)
        return None

    # --- seed: components to browse before the clock starts
    def seed_phase(self, count):
        self.phase = "seed"
        threads = []
        indexes = list(range(count))
        lock = threading.Lock()

        def worker():
            with requests.Session() as session:
                while True:
                    with lock:
                        if not indexes:
                            return
                        indexes.pop()
                    cid = self.put(session, "seed")
                    if cid:
                        for size in VIEW_SIZES:
                            self.get(session, self.url(cid, size), "first")
        for _ in range(4):
            threads.append(threading.Thread(target=worker, daemon=True))
            threads[-1].start()
        for thread in threads:
            thread.join()
        with self.lock:
            self.pending.clear()

    # --- mixed load
    def uploader(self, rate):
        with requests.Session() as session:
            while not self.stop.is_set():
                with self.lock:
                    slot = self.upload_schedule
                    self.upload_schedule += 1
                due = self.mixed_start + slot / rate
                delay = due - time.monotonic()
                if delay > 0:
                    if self.stop.wait(delay):
                        return
                elif delay < -1:
                    self.late_uploads += 1
                self.put(session, "mixed")

    def viewer(self, seed):
        rnd = random.Random(seed)
        with requests.Session() as session:
            while not self.stop.is_set():
                url, category = None, "repeat"
                with self.lock:
                    due = [item for item in self.pending if item[0] <= time.monotonic()]
                    if due:
                        item = min(due)
                        self.pending.remove(item)
                        url, category = item[1], "first"
                    elif self.known:
                        # Browsing: half the views among the 300 newest thumbnails, half over everything.
                        pool = self.known[-300:] if rnd.random() < 0.5 else self.known
                        url = rnd.choice(pool)
                if url is None:
                    time.sleep(0.05)
                    continue
                self.get(session, url, category)

    def mixed(self, duration, threads, rate, timeline):
        """Runs the clients for `duration` s; `timeline` [(fraction, callable)] runs on this (main) thread."""
        self.phase = "mixed"
        self.mixed_start = time.monotonic()
        self.mixed_start_epoch = time.time()
        self.mixed_t0 = self.mixed_start - self.t0
        workers = [threading.Thread(target=self.viewer, args=(self.seed * 1000 + i,), daemon=True) for i in range(threads)]
        workers += [threading.Thread(target=self.uploader, args=(rate,), daemon=True) for _ in range(4)]
        for worker in workers:
            worker.start()
        events = []
        interrupted = True
        try:
            for fraction, action in timeline:
                due = self.mixed_start + fraction * duration
                while time.monotonic() < due:
                    time.sleep(min(0.2, due - time.monotonic()))
                began = time.monotonic()
                result = action()
                events.append({"at_s": round(began - self.mixed_start, 2), "took_s": round(time.monotonic() - began, 2),
                               "what": result})
                log(f"  t={began - self.mixed_start:5.1f}s  {result} ({time.monotonic() - began:.2f} s)")
            while time.monotonic() < self.mixed_start + duration:
                time.sleep(0.2)
            interrupted = False
        except BaseException:
            interrupted = True
            raise
        finally:
            self.stop.set()
            # After Ctrl-C or an error the clients (daemon threads) get 2 s: the processes are stopped
            # now, not after the clients' requests time out.
            deadline = time.monotonic() + (2 if interrupted else 90)
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            self.mixed_end = time.monotonic()
        return events


# ----------------------------------------------------------------------------------------------- rig

class Rig:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix=f"pinhole-cluster-{time.strftime('%H%M%S')}-", dir="/tmp"))
        (self.work / "logs").mkdir()
        self.seaweed = None
        self.nodes = []
        self.nginx = None
        self.notes = []
        self.monitor = None
        self.node_by_port = {}
        self.stop_seconds = {}

    # --- binary
    def pick_binary(self):
        """Copies the binary into the work directory first (a rebuild meanwhile cannot change what runs) and
        asks the copy for its configuration keys. Default: a release build, made here as the other
        benchmarks do."""
        if self.args.binary:
            candidate = Path(self.args.binary)
        else:
            subprocess.run(["swift", "build", "-c", "release", "--product", "pinhole"], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL)
            candidate = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, check=True,
                                            capture_output=True, text=True).stdout.strip()) / "pinhole"
        (self.work / "bin").mkdir(exist_ok=True)
        copy = self.work / "bin" / "pinhole"
        stat = candidate.stat()
        shutil.copy2(candidate, copy)
        keys = subprocess.run([str(copy), "config-keys"], capture_output=True, text=True, timeout=60).stdout
        if not re.search(r"^files\.store\b", keys, re.M):
            raise SystemExit(f"{candidate}: no files.store key (this build has no S3 component store)")
        return candidate, stat, str(copy), keys

    def note(self, text):
        self.notes.append(text)
        log("NOTE: " + text)

    def up(self):
        source, stat, self.binary, keys = self.pick_binary()
        self.binary_info = {"source": str(source), "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime)),
                            "kind": "debug" if "/debug/" in str(source) else "release", "size": stat.st_size}
        log(f"binary: {source} ({self.binary_info['kind']}, built {self.binary_info['mtime']}) copied to {self.binary}")
        if self.binary_info["kind"] == "debug":
            self.note("debug build: Swift code runs unoptimised (render and hit rates are lower than a release build's)")
        self.keys = keys

        began = time.monotonic()
        log("SeaweedFS: 1 master, 3 volume servers (replication 001, fsync), filer + S3 ...")
        self.seaweed = SeaweedFS.cluster(self.work / "seaweed", volumes=3, replication="001", fsync=True)
        log(f"SeaweedFS up in {time.monotonic() - began:.1f} s: S3 {self.seaweed.s3_endpoint}, logs {self.work / 'seaweed' / 'logs'}")

        ports = [(free_port(), free_port()) for _ in range(NODES)]
        nginx_port, nginx_files_port = free_port(), free_port()    # first: the nodes' balancer and pre-warm URLs name nginx
        has = lambda key: re.search(rf"^{re.escape(key)}\b", keys, re.M) is not None     # noqa: E731
        for index in range(1, NODES + 1):
            node_dir = self.work / f"node{index}"
            node_dir.mkdir()
            port, files_port = ports[index - 1]
            env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
            env.update({
                "PINHOLE_THUMBNAILS_PORT": str(port),
                "PINHOLE_FILES_PORT": str(files_port),
                "PINHOLE_THUMBNAILS_SECURITY_KEYS": KEY,
                "PINHOLE_FILES_SECRETS": FILES_SECRET,
                "PINHOLE_THUMBNAILS_LOADER": "http",
                "PINHOLE_THUMBNAILS_ALLOWED_HOSTS": "127.0.0.1",     # the loopback files endpoint (nginx)
                "PINHOLE_THUMBNAILS_FILE_ROOT": str(node_dir / "images"),
                "PINHOLE_THUMBNAILS_RESULT_CACHE": "true",
                "PINHOLE_THUMBNAILS_CACHE_ROOT": str(node_dir / "cache"),
                "PINHOLE_THUMBNAILS_SOURCE_CACHE": "true",
                "PINHOLE_THUMBNAILS_SOURCE_CACHE_ROOT": str(node_dir / "sources"),
                "PINHOLE_THUMBNAILS_PREWARM_SIZES": ",".join(PREWARM_SIZES),
                # Pre-warm must render the URL clients ask for: the component's /get through nginx.
                "PINHOLE_THUMBNAILS_PREWARM_SOURCE_URL":
                    f"http://127.0.0.1:{nginx_files_port}/get?id={{id}}&signature={{signature}}",
                "PINHOLE_FILES_ROOT": str(node_dir / "files"),
                "PINHOLE_FILES_STORE": "s3",
                "PINHOLE_FILES_S3_ENDPOINT": self.seaweed.s3_endpoint,
                "PINHOLE_FILES_S3_BUCKET": self.seaweed.bucket,
                "PINHOLE_FILES_S3_ACCESS_KEY": self.seaweed.access_key,
                "PINHOLE_FILES_S3_SECRET_KEY": self.seaweed.secret_key,
                "PINHOLE_FILES_S3_REGION": self.seaweed.region,
                "PINHOLE_FILES_S3_PREFIX": "components/",
                "VIPS_CONCURRENCY": "1",
            })
            if has("encode.enabled"):
                env["PINHOLE_ENCODE_ENABLED"] = "false"
                env["PINHOLE_ENCODE_DIRECTORY"] = str(node_dir / "encode")
            if has("cluster.balancer_url"):
                env["PINHOLE_CLUSTER_BALANCER_URL"] = f"http://127.0.0.1:{nginx_port}"
            self.nodes.append(Node(index, self.binary, self.work, env))
        self.balancer = has("cluster.balancer_url")
        if not self.balancer:
            self.note("this build has no cluster.balancer_url key (unknown PINHOLE_ variables are ignored, not "
                      "refused): left out, so each upload's pre-warm renders on the node that took the upload")
        for node in self.nodes:
            self.node_by_port[node.port] = node.index
            self.node_by_port[node.files_port] = node.index

        self.nginx = Nginx(self.work, self.nodes, nginx_port, nginx_files_port, workers=self.args.nginx_workers)

        began = time.monotonic()
        for node in self.nodes:
            node.start()
        log(f"3 Pinhole nodes healthy in {time.monotonic() - began:.1f} s: "
            + ", ".join(f"node{n.index} :{n.port}/:{n.files_port}" for n in self.nodes))
        self.nginx.start()
        log(f"nginx: thumbnails http://127.0.0.1:{self.nginx.port}, files http://127.0.0.1:{self.nginx.files_port}")
        self.monitor = Monitor(self)
        self.monitor.start()

    def self_check(self, load):
        """Our thumbnail URL for a component is byte-identical to `pinhole sign`'s."""
        cid = str(uuid.uuid4())
        ours = load.url(cid, "fit-in/100x100")
        image = urllib.parse.quote(load.source_url(cid), safe="")
        theirs = subprocess.run([self.binary, "sign", "--key", KEY, "--fit-in", "-w", "100", "-e", "100", image],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        if not theirs.endswith(ours):
            raise RuntimeError(f"URL mismatch: ours {ours}, pinhole sign {theirs}")

    def down(self):
        """Stops everything this run started, by PID: nginx, the nodes, then SeaweedFS."""
        if self.monitor:
            self.monitor.stopping.set()
        pids = []
        if self.nginx and getattr(self.nginx, "process", None):
            pids.append(self.nginx.process.pid)
            pids += self.nginx.worker_pids() if self.nginx.running() else []
            with contextlib.suppress(Exception):
                self.nginx.stop()
        began = time.monotonic()
        running = [node for node in self.nodes if node.running()]
        for node in running:                 # SIGTERM to all, then wait up to 15 s, then SIGKILL
            pids.append(node.process.pid)
            node.process.send_signal(signal.SIGTERM)
        for node in running:
            try:
                node.process.wait(max(0.1, began + 15 - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"node {node.index} (pid {node.process.pid}) did not exit 15 s after SIGTERM: SIGKILL")
                node.kill()
                self.stop_seconds[f"node{node.index}_sigkilled"] = True
            self.stop_seconds[f"node{node.index}"] = round(time.monotonic() - began, 2)
        if self.seaweed:
            pids += [p.process.pid for p in self.seaweed._all() if p.process]
            with contextlib.suppress(Exception):
                self.seaweed.stop()
        # A SIGKILLed node leaves its decode workers' scratch directory (/tmp/pinhole-decoders-<pid>-*).
        for node in self.nodes:
            for pid in node.pids:
                for leftover in Path("/tmp").glob(f"pinhole-decoders-{pid}-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
        left = [pid for pid in pids if alive(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids, left


# ----------------------------------------------------------------------------------------------- analysis

def scan_cache(root):
    """{origin (the thumbnail URL path): count} of a node's result-cache entries."""
    origins = collections.Counter()
    magic = b"PINHOLE-CACHE 1\n"
    for path in Path(root).rglob("*.entry"):
        with contextlib.suppress(OSError, ValueError):
            with open(path, "rb") as f:
                head = f.read(8192)
            if head.startswith(magic):
                meta = json.loads(head[len(magic):head.index(b"\n", len(magic))])
                origins[meta.get("origin")] += 1
    return origins


def node_log_problems(node, limit=8):
    """Warning/error lines of a node's log: counts by message and a few examples."""
    lines = node.log_path.read_text(errors="replace").splitlines() if node.log_path.exists() else []
    problems = [line for line in lines if re.search(r"\b(warning|error|critical)\b", line)]
    by_message = collections.Counter()
    for line in problems:
        message = re.sub(r"\[[^\]]*\]", "", line)
        message = re.sub(r"^\S+\s+", "", message)          # timestamp
        message = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", message)
        message = re.sub(r"/[A-Za-z0-9_=-]{27,28}/\S+", "<url>", message)
        by_message[message.strip()[:200]] += 1
    prewarm_failed = sum(int(m) for m in re.findall(r"pre-warmed thumbnails.*?failed=(\d+)", "\n".join(lines)))
    prewarm_failed += sum(line.count("failed(") for line in lines if "pre-warmed thumbnails" in line)
    return {"log": str(node.log_path), "warning_or_error_lines": len(problems),
            "by_message": dict(by_message.most_common(limit)), "examples": problems[:limit],
            "prewarm_failures": prewarm_failed}


def summarise_mixed(load, rig, duration, events):
    t0 = load.mixed_t0
    records = sorted(load.records, key=lambda r: r[0])
    mixed = [r for r in records if r[9] == "mixed"]
    warm = t0 + 0.1 * duration
    steady = t0 + 0.8 * duration
    ok = lambda r: r[3] is not None and 200 <= r[3] < 300      # noqa: E731

    def failures(kind, after=None):
        rows = [r for r in mixed if r[1] == kind and (after is None or r[0] >= after)]
        bad = [r for r in rows if not ok(r)]
        return rows, bad

    gets, bad_gets = failures("get")
    puts, bad_puts = failures("put")
    _, bad_gets_after = failures("get", warm)
    _, bad_puts_after = failures("put", warm)
    lost_components = 0
    by_cid = collections.defaultdict(list)
    for r in puts:
        by_cid[r[8]].append(ok(r))
    lost_components = sum(1 for outcomes in by_cid.values() if not any(outcomes))

    # A repeat view's miss is "home moved" when the node that answered it had not yet answered that URL
    # (completed before this request began): the URL's home changed (node 2 died or came back), and this
    # is its first render there, or a request that waited for that render (coalesced). A miss on a node
    # that had already answered the URL means its cached entry was lost: unexpected.
    completed = collections.defaultdict(list)          # url -> [(end time, node)]
    for r in records:
        if r[1] == "get" and ok(r) and r[6] is not None:
            completed[r[8]].append((r[0] + r[5], r[6]))
    classified = []
    for r in records:
        if r[1] != "get" or not ok(r):
            continue
        served_before = any(end <= r[0] and node == r[6] for end, node in completed[r[8]])
        classified.append((r, r[4] != "hit" and not served_before))
    last_node = {url: max(ends)[1] for url, ends in completed.items()}
    steady_repeats = [(r, m) for r, m in classified if r[9] == "mixed" and r[2] == "repeat" and r[0] >= steady]
    history = collections.defaultdict(list)
    for r in records:
        if r[1] == "get":
            history[r[8]].append((round(r[0] - t0, 2), r[3], r[4], r[6], r[2]))
    steady_misses = [{"t_s": round(r[0] - t0, 2), "node": r[6], "home_moved": m, "url": r[8][:90] + "...",
                      "history (t_s, status, cache, node, category)": history[r[8]]}
                     for r, m in steady_repeats if r[4] != "hit"]
    steady_misses = [x for x in steady_misses if not x["home_moved"]] + [x for x in steady_misses if x["home_moved"]][:5]
    hits = sum(1 for r, _ in steady_repeats if r[4] == "hit")
    misses_moved = sum(1 for r, m in steady_repeats if r[4] != "hit" and m)
    misses_same = sum(1 for r, m in steady_repeats if r[4] != "hit" and not m)
    all_repeats = [(r, m) for r, m in classified if r[9] == "mixed" and r[2] == "repeat" and r[0] >= warm]
    firsts = [r for r, _ in classified if r[9] == "mixed" and r[2] == "first" and r[0] >= warm]
    first_prewarmed = [r for r in firsts if any(f"/{s}/" in r[8] for s in PREWARM_SIZES)]
    delay = lambda r: r[0] - load.uploaded_at.get(r[8], r[0])      # noqa: E731
    by_delay = {}
    for lo, hi in ((0, 1), (1, 2), (2, 3), (3, 99)):
        rows = [r for r in first_prewarmed if lo <= delay(r) < hi]
        by_delay[f"{lo}-{hi if hi < 99 else ''}s"] = f"{sum(1 for r in rows if r[4] == 'hit')}/{len(rows)}"

    mixed_ok_gets = [r for r in gets if ok(r) and r[0] >= warm]
    hit_lat = [r[5] for r in mixed_ok_gets if r[4] == "hit"]
    miss_lat = [r[5] for r in mixed_ok_gets if r[4] != "hit"]
    seconds = duration
    result = {
        "duration_s": duration,
        "requests": {"gets": len(gets), "puts": len(puts), "get_rate_per_s": round(len(gets) / seconds, 1),
                     "put_rate_per_s": round(len([r for r in puts if ok(r)]) / seconds, 2),
                     "late_upload_slots": load.late_uploads},
        "errors": {"failed_gets": len(bad_gets), "failed_gets_after_warmup": len(bad_gets_after),
                   "failed_put_attempts": len(bad_puts), "failed_put_attempts_after_warmup": len(bad_puts_after),
                   "components_lost_after_client_retry": lost_components,
                   "examples": [{"t_s": round(r[0] - t0, 2), "kind": r[1], "status": r[3], "node": r[6], "error": r[7]}
                                for r in (bad_gets + bad_puts)[:12]]},
        "steady_state": {"window_s": [round(0.8 * duration, 1), duration], "repeat_views": len(steady_repeats), "hits": hits,
                         "hit_ratio": round(hits / len(steady_repeats), 5) if steady_repeats else None,
                         "misses_home_moved": misses_moved, "misses_same_node": misses_same,
                         "hit_ratio_excluding_moved": round(hits / (len(steady_repeats) - misses_moved), 5)
                         if len(steady_repeats) > misses_moved else None,
                         "misses": steady_misses},
        "repeat_views_after_warmup": {"count": len(all_repeats),
                                      "hit_ratio": round(sum(1 for r, _ in all_repeats if r[4] == "hit") / len(all_repeats), 5)
                                      if all_repeats else None,
                                      "misses_home_moved": sum(1 for r, m in all_repeats if r[4] != "hit" and m),
                                      "misses_same_node": sum(1 for r, m in all_repeats if r[4] != "hit" and not m)},
        "first_views_after_warmup": {"count": len(firsts), "hits": sum(1 for r in firsts if r[4] == "hit"),
                                     "prewarmed_sizes": len(first_prewarmed),
                                     "prewarmed_sizes_hits": sum(1 for r in first_prewarmed if r[4] == "hit"),
                                     "prewarmed_hits_by_delay_after_upload": by_delay},
        "latency_ms": {"hit_p50": ms(percentile(hit_lat, 50)), "hit_p99": ms(percentile(hit_lat, 99)), "hits": len(hit_lat),
                       "miss_p50": ms(percentile(miss_lat, 50)), "miss_p99": ms(percentile(miss_lat, 99)),
                       "misses": len(miss_lat),
                       "put_p50": ms(percentile([r[5] for r in puts if ok(r)], 50)),
                       "put_p99": ms(percentile([r[5] for r in puts if ok(r)], 99))},
        "events": events,
    }
    # Error and miss counts per second around the kill and the restart (for the README's timeline).
    per_second = collections.defaultdict(lambda: [0, 0, 0, 0])     # gets, failed gets, puts, failed puts
    for r in mixed:
        second = int(r[0] - t0)
        slot = per_second[second]
        if r[1] == "get":
            slot[0] += 1
            slot[1] += not ok(r)
        else:
            slot[2] += 1
            slot[3] += not ok(r)
    result["per_second"] = {s: v for s, v in sorted(per_second.items()) if v[1] or v[3]}
    return result, last_node


ACCESS_LINE = re.compile(r'^(\S+) (\d+) (\S+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"$')


def summarise_access_log(rig, since_epoch, until_epoch):
    """nginx's own timing ($request_time: first byte of the request to the last byte of the answer) of the
    thumbnail requests in a window: the browsing clients' hits and misses, and the pre-warm requests the
    nodes send through the balancer (not python-requests)."""
    path = rig.nginx.work / "access.log"
    clients = {"hit": [], "miss": []}
    prewarm = collections.Counter()
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.match(line)
        if not match:
            continue
        msec, port, method, status, request_time, _, cache, _, agent = match.groups()
        if not (since_epoch <= float(msec) <= until_epoch) or int(port) != rig.nginx.port:
            continue
        if agent.startswith("python-requests"):
            if status == "200" and cache in clients:
                clients[cache].append(float(request_time))
        else:
            prewarm[f"{method} {status} {cache or '-'}"] += 1
    return {"hit_p50_ms": ms(percentile(clients["hit"], 50)), "hit_p99_ms": ms(percentile(clients["hit"], 99)),
            "hits": len(clients["hit"]),
            "miss_p50_ms": ms(percentile(clients["miss"], 50)), "miss_p99_ms": ms(percentile(clients["miss"], 99)),
            "misses": len(clients["miss"]), "prewarm_requests_through_balancer": dict(prewarm)}


def summarise_renders(load, rig, answered_by):
    """Renders (the nodes' counters, restarts included) against distinct URLs, and which nodes hold each URL."""
    renders = rig.monitor.counter("pinhole_renders_total")
    per_node = {n.index: rig.monitor.counter("pinhole_renders_total", n.index) for n in rig.nodes}
    client_urls = {r[8] for r in load.records if r[1] == "get" and r[3] == 200}
    prewarm_urls = {load.url(cid, size) for cid in load.components for size in PREWARM_SIZES}
    distinct = client_urls | prewarm_urls
    holders = collections.defaultdict(list)
    entries = 0
    for node in rig.nodes:
        for origin, count in scan_cache(node.dir / "cache").items():
            holders[origin].extend([node.index] * count)
            entries += count
    foreign = [o for o in holders if o not in distinct]
    served_by = collections.defaultdict(set)
    for r in load.records:
        if r[1] == "get" and r[3] == 200 and r[6] is not None:
            served_by[r[8]].add(r[6])
    multi = {url: nodes for url, nodes in holders.items() if len(nodes) > 1}
    moved = sum(1 for url, nodes in multi.items() if len(served_by.get(url, ())) > 1)
    prewarm_elsewhere = sum(1 for url, nodes in multi.items() if set(nodes) - served_by.get(url, set()))
    involving_killed = sum(1 for nodes in multi.values() if KILLED_NODE in nodes)
    more_than_two = sum(1 for nodes in multi.values() if len(nodes) > 2)
    same_node_twice = sum(1 for nodes in multi.values() if len(set(nodes)) < len(nodes))
    return {
        "renders_total": int(renders), "renders_per_node": {k: int(v) for k, v in per_node.items()},
        "distinct_urls": len(distinct), "distinct_client_urls": len(client_urls), "prewarm_urls": len(prewarm_urls),
        "renders_per_url": round(renders / len(distinct), 3) if distinct else None,
        "cache_entries": entries, "urls_cached": len(holders),
        "renders_without_entry": int(renders) - entries,
        "urls_on_more_than_one_node": len(multi),
        "of_which_answered_by_2_nodes": moved,
        "of_which_rendered_on_a_node_that_never_answered_them": prewarm_elsewhere,
        "of_which_involve_killed_node": involving_killed,
        "urls_on_more_than_two_nodes": more_than_two, "urls_twice_on_one_node": same_node_twice,
        "cache_entries_for_urls_no_client_or_prewarm_asks_for": len(foreign),
        "foreign_examples": foreign[:3],
        "source_fetches": int(rig.monitor.counter("pinhole_source_fetches_total")),
        "source_fetches_per_component": round(rig.monitor.counter("pinhole_source_fetches_total") / len(load.components), 2)
        if load.components else None,
        "cache_hits_counter": int(rig.monitor.counter("pinhole_cache_hits_total")),
        "cache_misses_counter": int(rig.monitor.counter("pinhole_cache_misses_total")),
        "rejected_429": int(rig.monitor.counter("pinhole_renders_rejected_total")),
        "deadlines_504": int(rig.monitor.counter("pinhole_deadlines_exceeded_total")),
    }


# ----------------------------------------------------------------------------------------------- throughput

WRK_SCRIPT = """
local paths = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  n = math.random(#paths)
end
request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
"""


def wrk_run(rig, paths, seconds, connections):
    work = rig.work
    (work / "hits.lua").write_text(WRK_SCRIPT)
    (work / "paths.txt").write_text("\n".join(paths) + "\n")
    run = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency",
                          "--timeout", "10s", "-s", str(work / "hits.lua"), f"http://127.0.0.1:{rig.nginx.port}", "--",
                          str(work / "paths.txt")],
                         capture_output=True, text=True, timeout=seconds + 60, preexec_fn=preexec())
    out = run.stdout
    if "Requests/sec:" not in out:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout[-2000:]} {run.stderr[-2000:]}")

    def duration(text):
        value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latencies = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = re.search(r"(\d+) requests in", out)
    return {"req_per_s": round(rps, 1), "p50_ms": ms(duration(latencies["50"])), "p99_ms": ms(duration(latencies["99"])),
            "requests": int(total.group(1)) if total else None, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else None}


def python_burst(load, urls_for, seconds, threads):
    """`threads` clients for `seconds`; urls_for(i) gives the i-th URL (globally numbered). Returns records."""
    counter = [0]
    lock = threading.Lock()
    stop = threading.Event()
    out = []

    def worker():
        with requests.Session() as session:
            while not stop.is_set():
                with lock:
                    i = counter[0]
                    counter[0] += 1
                url = urls_for(i)
                if url is None:
                    return
                out.append(load.get(session, url, "bench"))
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    began = time.monotonic()
    for w in workers:
        w.start()
    deadline = began + seconds
    while time.monotonic() < deadline and any(w.is_alive() for w in workers):
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join(120)
    return out, time.monotonic() - began


def throughput(load, rig, seconds, threads):
    rnd = random.Random(7)
    hit_set = rnd.sample(load.known, min(len(load.known), 600))
    components = list(load.components)
    results = []
    for count in (1, 2, 3):
        row_reload = rig.nginx.reload(count, access_log=False)     # no access log: it would cost the hit rate
        load.phase = f"scale{count}"
        row = {"nodes": count, "nginx_reload_seconds": row_reload}
        # Warm pass: each URL of the hit set once, so that it is cached on its home for this node count.
        warm, _ = python_burst(load, lambda i: hit_set[i] if i < len(hit_set) else None, 600, 8)
        row["warm_pass"] = {"urls": len(hit_set), "misses": sum(1 for r in warm if r[4] != "hit"),
                            "failed": sum(1 for r in warm if r[3] != 200)}
        renders_before = rig.monitor.counter("pinhole_renders_total")
        for node in rig.nodes:
            rig.monitor.scrape(node)
        renders_before = rig.monitor.counter("pinhole_renders_total")
        if shutil.which("wrk"):
            row["hits"] = wrk_run(rig, hit_set, seconds, 16)
            row["hits"]["client"] = "wrk -t2 -c16"
        else:
            records, took = python_burst(load, lambda i: hit_set[i % len(hit_set)], seconds, threads)
            good = [r for r in records if r[3] == 200]
            row["hits"] = {"req_per_s": round(len(good) / took, 1), "p50_ms": ms(percentile([r[5] for r in good], 50)),
                           "p99_ms": ms(percentile([r[5] for r in good], 99)), "requests": len(records),
                           "non_2xx": len(records) - len(good), "client": f"python x{threads}"}
        for node in rig.nodes:
            rig.monitor.scrape(node)
        row["hits"]["renders_during"] = int(rig.monitor.counter("pinhole_renders_total") - renders_before)
        row["hits"]["req_per_s_per_core"] = round(row["hits"]["req_per_s"] / CORES, 1)
        # Cold renders: every request a size no one asked for yet, on a random component.
        offset = 300 + 60 * count

        def cold_url(i, offset=offset):
            return load.url(components[(i * 7919) % len(components)], f"fit-in/{300 + i % 50}x{offset + i // 50}")
        records, took = python_burst(load, cold_url, seconds, threads)
        good = [r for r in records if r[3] == 200]
        row["cold"] = {"renders_per_s": round(len(good) / took, 1), "renders_per_s_per_core": round(len(good) / took / CORES, 1),
                       "p50_ms": ms(percentile([r[5] for r in good], 50)), "p99_ms": ms(percentile([r[5] for r in good], 99)),
                       "requests": len(records), "failed": len(records) - len(good),
                       "hits": sum(1 for r in good if r[4] == "hit"), "client": f"python x{threads}"}
        log(f"  {count} node(s): hits {row['hits']['req_per_s']} req/s (p50 {row['hits']['p50_ms']} ms, "
            f"p99 {row['hits']['p99_ms']} ms), cold renders {row['cold']['renders_per_s']}/s "
            f"(p50 {row['cold']['p50_ms']} ms, p99 {row['cold']['p99_ms']} ms); warm pass {row['warm_pass']}")
        results.append(row)
    rig.nginx.reload(3, access_log=False)
    return results


# ----------------------------------------------------------------------------------------------- report

def print_report(report):
    m, r = report["mixed"], report["renders"]
    e, s = m["errors"], m["steady_state"]
    n = m.get("latency_ms_nginx") or {}
    rows = [
        ("machine", f"{report['machine']['cores']} cores, {report['machine']['memory_gib']} GiB; binary "
                    f"{report['binary']['kind']} ({report['binary']['source']})"),
        ("mixed load", f"{m['duration_s']} s, {report['config']['threads']} viewers + uploads at "
                       f"{report['config']['upload_rate']}/s: {m['requests']['gets']} GETs ({m['requests']['get_rate_per_s']}/s), "
                       f"{m['requests']['puts']} PUTs ({m['requests']['put_rate_per_s']}/s ok)"),
        ("failed GETs", f"{e['failed_gets']} total, {e['failed_gets_after_warmup']} after warm-up (target 0)"),
        ("failed PUTs", f"{e['failed_put_attempts']} attempts total, {e['failed_put_attempts_after_warmup']} after warm-up "
                        f"(target 0); components lost after one client retry: {e['components_lost_after_client_retry']}"),
        ("steady hit ratio", f"{s['hit_ratio']} over {s['repeat_views']} repeat views in the last 20 % (target >= 0.99); "
                             f"misses: {s['misses_home_moved']} home moved (first render on the new home, or waiting "
                             f"for it), {s['misses_same_node']} on a node that had served the URL; excluding "
                             f"home moves {s['hit_ratio_excluding_moved']}"),
        ("first views", f"{m['first_views_after_warmup']['prewarmed_sizes_hits']} hits of "
                        f"{m['first_views_after_warmup']['prewarmed_sizes']} first views of pre-warmed sizes; by time "
                        f"after the upload: {m['first_views_after_warmup']['prewarmed_hits_by_delay_after_upload']}"),
        ("renders per URL", f"{r['renders_per_url']} ({r['renders_total']} renders / {r['distinct_urls']} URLs); "
                            f"URLs on >1 node: {r['urls_on_more_than_one_node']} (answered by 2 nodes: "
                            f"{r['of_which_answered_by_2_nodes']}, rendered where never answered: "
                            f"{r['of_which_rendered_on_a_node_that_never_answered_them']}, >2 nodes: "
                            f"{r['urls_on_more_than_two_nodes']})"),
        ("latency hits", f"nginx: p50 {n.get('hit_p50_ms')} ms, p99 {n.get('hit_p99_ms')} ms ({n.get('hits')}); client: "
                         f"p50 {m['latency_ms']['hit_p50']} ms, p99 {m['latency_ms']['hit_p99']} ms ({m['latency_ms']['hits']})"),
        ("latency misses", f"nginx: p50 {n.get('miss_p50_ms')} ms, p99 {n.get('miss_p99_ms')} ms ({n.get('misses')}); client: "
                           f"p50 {m['latency_ms']['miss_p50']} ms, p99 {m['latency_ms']['miss_p99']} ms ({m['latency_ms']['misses']})"),
        ("latency PUT", f"client: p50 {m['latency_ms']['put_p50']} ms, p99 {m['latency_ms']['put_p99']} ms"),
        ("peak RSS (rig)", f"{report['rss']['peak_whole_run']}"),
        ("CPU s in mixed", f"{report['cpu_seconds_mixed']}"),
        ("source fetches", f"{r['source_fetches']} ({r['source_fetches_per_component']} per component)"),
        ("stop", f"{report.get('stop_seconds')}; left running: {report.get('left_running')}"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if report.get("throughput"):
        print()
        print(f"{'nodes':>5}  {'hits req/s':>10}  {'per core':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
              f"{'renders/s':>9}  {'per core':>8}  {'p50 ms':>7}  {'p99 ms':>7}")
        for row in report["throughput"]:
            h, c = row["hits"], row["cold"]
            print(f"{row['nodes']:>5}  {h['req_per_s']:>10}  {h['req_per_s_per_core']:>8}  {h['p50_ms']:>7}  {h['p99_ms']:>7}  "
                  f"{c['renders_per_s']:>9}  {c['renders_per_s_per_core']:>8}  {c['p50_ms']:>7}  {c['p99_ms']:>7}")
    for note in report["notes"]:
        print("NOTE:", note)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=None, help="seconds of mixed load (default 90; --quick 30)")
    parser.add_argument("--quick", action="store_true", help="30 s of mixed load, 5 s throughput phases")
    parser.add_argument("--binary", help="pinhole binary (default: swift build -c release)")
    parser.add_argument("--upload-rate", type=float, default=8.0, help="uploads per second during the mixed load")
    parser.add_argument("--threads", type=int, default=16, help="viewer threads (uploads have 4 threads of their own)")
    parser.add_argument("--seed-components", type=int, default=100, help="components uploaded and viewed before the clock")
    parser.add_argument("--phase-seconds", type=float, default=None, help="seconds per throughput phase (default 10; --quick 5)")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data and caches), not only the logs")
    parser.add_argument("--output", default=str(HERE / "last-run.json"))
    args = parser.parse_args()
    duration = args.duration or (30.0 if args.quick else 90.0)
    phase_seconds = args.phase_seconds or (5.0 if args.quick else 10.0)

    # SIGTERM ends the run like Ctrl-C: the finally below stops everything.
    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    rig = Rig(args)
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "work": str(rig.work), "notes": rig.notes,
              "machine": {"cores": CORES, "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)},
              "config": {"duration_s": duration, "threads": args.threads, "upload_rate": args.upload_rate,
                         "seed_components": args.seed_components, "phase_seconds": phase_seconds,
                         "prewarm_sizes": PREWARM_SIZES, "view_sizes": VIEW_SIZES, "nginx_workers": args.nginx_workers,
                         "killed": f"pinhole node {KILLED_NODE} (of 1-3) and volume server {KILLED_VOLUME} (of 0-2)"}}
    exit_code = 0
    try:
        log(f"work directory {rig.work}")
        log("making 100 source JPEGs ...")
        began = time.monotonic()
        sources = make_sources()
        sizes = sorted(len(b) for b, _ in sources)
        report["sources"] = {"count": len(sources), "min_kb": sizes[0] // 1024, "median_kb": sizes[len(sizes) // 2] // 1024,
                             "max_kb": sizes[-1] // 1024, "mean_kb": sum(sizes) // len(sizes) // 1024}
        log(f"  {len(sources)} JPEGs, {sizes[0] // 1024} KB - {sizes[-1] // 1024} KB in {time.monotonic() - began:.1f} s")
        rig.up()
        report["binary"] = rig.binary_info
        report["balancer_url_set"] = rig.balancer
        report["logs"] = {"nodes": [str(n.log_path) for n in rig.nodes], "nginx": str(rig.nginx.work / "error.log"),
                          "seaweed": str(rig.work / "seaweed" / "logs")}
        load = Load(rig, sources)
        rig.self_check(load)

        log(f"seed: {args.seed_components} uploads, each viewed at {', '.join(VIEW_SIZES)} ...")
        began = time.monotonic()
        load.seed_phase(args.seed_components)
        report["seed"] = {"seconds": round(time.monotonic() - began, 1), "components": len(load.components),
                          "failed": sum(1 for r in load.records if r[3] != 200)}
        log(f"  {len(load.components)} components in {report['seed']['seconds']} s")
        time.sleep(2)      # let the seed's pre-warms finish

        killed = rig.nodes[KILLED_NODE - 1]

        def kill():
            rig.monitor.scrape(killed)          # its counters up to now (they restart at 0)
            killed.kill()
            rig.seaweed.kill_volume(KILLED_VOLUME)
            return f"SIGKILL node {KILLED_NODE} (pid {killed.process.pid}) and volume server {KILLED_VOLUME}"

        def restart():
            node_seconds = killed.start()
            began = time.monotonic()
            rig.seaweed.start_volume(KILLED_VOLUME)
            return (f"restarted node {KILLED_NODE} (healthy after {node_seconds:.2f} s) and volume server "
                    f"{KILLED_VOLUME} (listed by the master after {time.monotonic() - began:.2f} s)")

        log(f"mixed load for {duration:.0f} s: {args.threads} viewers, uploads at {args.upload_rate}/s; "
            f"kill at {0.3 * duration:.0f} s, restart at {0.45 * duration:.0f} s")
        mixed_since = time.monotonic()
        cpu_before = dict(rig.monitor.cpu_seconds())
        client_before = sum(os.times()[:2])
        events = load.mixed(duration, args.threads, args.upload_rate, [(0.3, kill), (0.45, restart)])
        time.sleep(1.5)                          # the last pre-warms and metrics
        for node in rig.nodes:
            rig.monitor.scrape(node)
        rig.monitor.sample_processes()
        cpu_after = rig.monitor.cpu_seconds()
        report["cpu_seconds_mixed"] = {g: round(cpu_after.get(g, 0) - cpu_before.get(g, 0), 1) for g in cpu_after}
        report["cpu_seconds_mixed"]["client (this python)"] = round(sum(os.times()[:2]) - client_before, 1)
        report["cpu_seconds_mixed"]["available"] = round(CORES * (load.mixed_end - load.mixed_start), 1)
        mixed, answered_by = summarise_mixed(load, rig, duration, events)
        report["mixed"] = mixed
        report["renders"] = summarise_renders(load, rig, answered_by)
        report["mixed"]["latency_ms_nginx"] = summarise_access_log(
            rig, load.mixed_start_epoch + 0.1 * duration, load.mixed_start_epoch + duration + 1)
        report["rss"] = {"peak_mixed": rig.monitor.peak(mixed_since, load.mixed_end)}

        if not args.skip_throughput:
            log(f"throughput: nginx pointed at 1, 2, 3 nodes; {phase_seconds:.0f} s of hits, {phase_seconds:.0f} s of cold renders each")
            report["throughput"] = throughput(load, rig, phase_seconds, args.threads)
        report["rss"]["peak_whole_run"] = rig.monitor.peak()
        report["nodes"] = {f"node{n.index}": node_log_problems(n) for n in rig.nodes}
        upstream = [line for line in rig.nginx.error_lines() if "upstream" in line]
        report["nginx"] = {"error_log": str(rig.nginx.work / "error.log"), "upstream_error_lines": len(upstream),
                           "no_live_upstreams": sum("no live upstreams" in line for line in upstream),
                           "by_node": {f"node{n.index}": sum(f":{n.port}" in line or f":{n.files_port}" in line for line in upstream)
                                       for n in rig.nodes},
                           "examples": upstream[:6], "reload_lingering_workers": rig.nginx.lingering,
                           "alerts": [line for line in rig.nginx.error_lines() if "[alert]" in line or "[crit]" in line][:10]}
    except KeyboardInterrupt as interrupt:
        log(f"interrupted ({interrupt}): stopping everything")
        exit_code = 130
    except Exception:          # noqa: BLE001 - reported, then everything is stopped
        traceback.print_exc()
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("stopping nginx, the nodes and SeaweedFS ...")
        pids, left = rig.down()
        report["stopped_pids"] = pids
        report["left_running"] = left
        report["stop_seconds"] = rig.stop_seconds
        if rig.nginx:
            report.setdefault("nginx", {})["lingering_at_stop"] = [x for x in rig.nginx.lingering if x["count"] == "stop"]
        if left:
            log(f"had to SIGKILL {left}")
        keep = {"logs", "nginx", "seaweed"}
        if not args.keep:
            for child in rig.work.iterdir():
                if child.name not in keep:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            for child in (rig.work / "seaweed").iterdir() if (rig.work / "seaweed").exists() else []:
                if child.name != "logs":
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            for child in (rig.work / "nginx").iterdir() if (rig.work / "nginx").exists() else []:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
        log(f"logs kept in {rig.work}")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if exit_code == 0:
        Path(args.output).write_text(json.dumps(report, indent=1, default=str) + "\n")
        print_report(report)
        for name, problems in report["nodes"].items():
            if problems["warning_or_error_lines"]:
                print(f"{name}: {problems['warning_or_error_lines']} warning/error lines ({problems['log']}):")
                for message, count in problems["by_message"].items():
                    print(f"  {count:>5} x {message}")
        if report["nginx"]["upstream_error_lines"]:
            print(f"nginx: {report['nginx']['upstream_error_lines']} upstream error lines ({report['nginx']['error_log']}), "
                  f"per node {report['nginx']['by_node']}")
        log(f"wrote {args.output}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
