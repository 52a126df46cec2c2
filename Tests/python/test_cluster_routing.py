"""The shipped config/nginx/pinhole-cluster.conf with a real nginx (Debian package) in front of three
`pinhole serve` nodes: each thumbnail URL has one home node, a dead node's URLs move to live nodes
without a failed request and come back when it returns, and no other URL moves.

Which node answered is told by the picture alone: every node's file root holds a `probe.png` of the
same name in its own colour (red, green, blue), so a thumbnail's mean colour names its node."""
import io
import os
import random
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from libthumbor import CryptoURL
from PIL import Image, ImageStat

from conftest import KEY, REPO, PinholeServer, file_signature, free_port, start_nginx

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]       # node 0 red, node 1 green, node 2 blue
URLS = [CryptoURL(key=KEY).generate(width=width, height=32, fit_in=True, image_url="probe.png")
        for width in range(10, 210)]                     # 200 distinct signed URLs of the same image


class Cluster:
    def __init__(self, base, nodes, work, nginx):
        self.base, self.nodes, self.work, self.nginx = base, nodes, work, nginx

    def node_of(self, body):
        """The index of the node whose probe.png this thumbnail was made from."""
        with Image.open(io.BytesIO(body)) as image:         # a PNG, as Thumbor keeps the source's format
            mean = ImageStat.Stat(image.convert("RGB")).mean
        node = max(range(3), key=lambda channel: mean[channel])
        assert mean[node] > 180 and all(mean[c] < 75 for c in range(3) if c != node), mean
        return node

    def fetch(self, url, client=requests):
        response = client.get(self.base + url, timeout=30)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        return self.node_of(response.content)

    def homes(self, client=requests):
        return {url: self.fetch(url, client) for url in URLS}

    def upstream_errors(self):
        """nginx's error-log lines about upstreams (connect failures, resets, peers marked down)."""
        log = (self.work / "error.log").read_text(errors="replace")
        return [line for line in log.splitlines() if "upstream" in line]

    def error_lines_naming(self, ports):
        return [line for line in self.upstream_errors()
                if any(re.search(rf"127\.0\.0\.1:{port}\b", line) for port in ports)]


@pytest.fixture(scope="module")
def cluster():
    work = Path(tempfile.mkdtemp(prefix="pinhole-cluster-"))
    nodes = []
    process = None
    try:
        for index, colour in enumerate(COLOURS):
            root = work / f"root-{index}"
            root.mkdir()
            Image.new("RGB", (64, 64), colour).save(root / "probe.png")
            workdir = work / f"node-{index}"
            workdir.mkdir()
            # One component store for all three, as on a NAS share: any node answers /put, /get, /remove.
            nodes.append(PinholeServer(workdir=workdir, file_root=str(root),
                                       env={"PINHOLE_FILES_ROOT": str(work / "components"), "PINHOLE_FILES_DEBRIS_GRACE": "0",
                                            "PINHOLE_ENCODE_ENABLED": "false"}))
        port, files_port = free_port(), free_port()
        rendered = (REPO / "config" / "nginx" / "pinhole-cluster.conf").read_text()
        for index, node in enumerate(nodes, start=1):
            rendered = (rendered.replace(f"127.0.0.1:1880{index} ", f"127.0.0.1:{node.port} ")
                        .replace(f"127.0.0.1:1900{index} ", f"127.0.0.1:{node.files_port} "))
        assert "127.0.0.1:1880" not in rendered and "127.0.0.1:1900" not in rendered
        assert "listen 8888;" in rendered and "listen 9000;" in rendered
        rendered = (rendered.replace("listen 8888;", f"listen 127.0.0.1:{port};")
                    .replace("listen 9000;", f"listen 127.0.0.1:{files_port};"))
        process = start_nginx(work, rendered, [port, files_port], worker_connections=256)
        cluster = Cluster(f"http://127.0.0.1:{port}", nodes, work, process)
        cluster.files_base = f"http://127.0.0.1:{files_port}"
        yield cluster
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        for node in nodes:
            node.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_one_url_always_reaches_the_same_node(cluster):
    homes = cluster.homes()
    for _ in range(2):                                   # a new connection per request: 3 times each
        assert cluster.homes() == homes
    with requests.Session() as session:                  # keep-alive: all 200 on one connection
        assert cluster.homes(session) == homes
    counts = [list(homes.values()).count(node) for node in range(3)]
    assert min(counts) >= 0.15 * len(URLS), counts
    assert cluster.upstream_errors() == []


def load(cluster, stop, results, seed):
    """Request every URL again and again, in an order of this thread's own, until `stop` is set.
    Each result is (start time, url, node answering or None, error or None)."""
    urls = list(URLS)
    random.Random(seed).shuffle(urls)
    with requests.Session() as session:
        while not stop.is_set():
            for url in urls:
                if stop.is_set():
                    break
                started = time.monotonic()
                try:
                    response = session.get(cluster.base + url, timeout=30)
                    if response.status_code == 200:
                        results.append((started, url, cluster.node_of(response.content), None))
                    else:
                        results.append((started, url, None, f"{response.status_code} {response.text[:100]}"))
                except Exception as error:               # noqa: BLE001 - every failure is counted
                    results.append((started, url, None, repr(error)))


def test_dead_node_urls_move_and_no_other_url_moves(cluster):
    homes = cluster.homes()
    dead = 1
    dead_urls = {url for url, node in homes.items() if node == dead}
    live_ports = [node.port for index, node in enumerate(cluster.nodes) if index != dead]
    assert dead_urls

    results, stop = [], threading.Event()
    threads = [threading.Thread(target=load, args=(cluster, stop, results, seed)) for seed in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        cluster.nodes[dead].kill()
        killed = time.monotonic()
        time.sleep(6.5)                                  # past fail_timeout: nginx probes the dead node again
        while {r[1] for r in list(results) if r[0] > killed} != set(URLS) and time.monotonic() < killed + 30:
            time.sleep(0.2)                              # a slow machine: until every URL was asked after the kill
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    failures = [r for r in results if r[3] is not None]
    assert failures == [], f"{len(failures)} of {len(results)} failed, first: {failures[:5]}"
    after = [r for r in results if r[0] > killed]
    assert {r[1] for r in after} == set(URLS)            # the load really ran during and after the kill
    fallback = {}
    for _, url, node, _ in after:
        if url in dead_urls:
            assert node != dead
            fallback.setdefault(url, set()).add(node)
        else:
            assert node == homes[url], (url, node, homes[url])
    assert set(fallback) == dead_urls                    # every dead node's URL was served after the kill
    assert all(len(nodes) == 1 for nodes in fallback.values()), fallback   # ... by one node each
    moved_to = [next(iter(nodes)) for nodes in fallback.values()]
    assert set(moved_to) == {0, 1, 2} - {dead}, moved_to  # and spread over the survivors
    assert cluster.error_lines_naming(live_ports) == []   # nginx never had trouble with a live node

    cluster.nodes[dead].start()
    deadline = time.monotonic() + 15
    while True:
        now = cluster.homes()
        for url, node in now.items():
            assert node == homes[url] or (url in dead_urls and node in fallback[url]), (url, node)
        if now == homes:
            break
        assert time.monotonic() < deadline, sum(now[url] != homes[url] for url in dead_urls)
        time.sleep(0.5)
    assert cluster.error_lines_naming(live_ports) == []


def test_files_go_to_any_node_and_survive_one_going_down(cluster):
    """Round-robin file-server traffic over nodes sharing one store: every node takes uploads, every
    upload reads back through any node, and a dead node costs no request."""
    import hashlib
    import uuid

    def url(op, cid):
        return f"{cluster.files_base}/{op}?id={cid}&signature={file_signature({'id': cid})}"

    def round_trip(cid, body):
        assert requests.put(url("put", cid), data=body, timeout=60).status_code == 200
        for _ in range(3):                                   # three GETs: round-robin over the nodes
            got = requests.get(url("get", cid), timeout=60)
            assert got.status_code == 200 and hashlib.md5(got.content).digest() == hashlib.md5(body).digest()

    logs_before = [open(node.log.name).read().count("stored component") for node in cluster.nodes]
    for index in range(12):
        round_trip(str(uuid.uuid4()), os.urandom(random.choice([1, 50_000, 3_000_000])))
    stored = [open(node.log.name).read().count("stored component") - before for node, before in zip(cluster.nodes, logs_before)]
    assert all(count > 0 for count in stored), f"uploads per node: {stored}"
    cluster.nodes[0].kill()
    try:
        for index in range(12):
            round_trip(str(uuid.uuid4()), os.urandom(random.choice([1, 50_000])))
        cid = str(uuid.uuid4())
        round_trip(cid, b"x" * 100)
        assert requests.delete(url("remove", cid), timeout=30).json()["removed"] is True
        assert requests.get(url("get", cid), timeout=30).status_code == 404
    finally:
        cluster.nodes[0].start()
