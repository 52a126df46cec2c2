"""Result cache, source cache, coalescing, load shedding, deadlines, purge and pre-warming, against
real `pinhole serve` processes on loopback."""
import concurrent.futures
import os
import re
import subprocess
import time
import urllib.parse
import uuid
from email.utils import parsedate_to_datetime

import pytest
import requests
from libthumbor import CryptoURL

from conftest import (BIG_PHOTO, BINARY, FILES_SECRET, KEY, PHOTOS, PinholeServer, component_thumbnail_path, file_signature, image_size,
                      sign, upload_component)

crypto = CryptoURL(key=KEY)


def metric(server, name):
    text = requests.get(server.base + "/metrics", timeout=10).text
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    server = PinholeServer(result_cache="true", cache_root=str(root / "cache"), source_cache_root=str(root / "sources"))
    server.cache_root = root / "cache"
    yield server
    server.stop()


def test_second_request_is_a_hit_with_the_same_headers(cached):
    url = crypto.generate(width=210, height=140, image_url=PHOTOS[0])
    renders = metric(cached, "pinhole_renders_total")
    first, second = cached.get(url), cached.get(url)
    assert first.headers["X-Pinhole-Cache"] == "miss" and second.headers["X-Pinhole-Cache"] == "hit"
    assert second.content == first.content
    for header in ["Content-Type", "ETag", "Cache-Control", "Content-Length"]:
        assert second.headers[header] == first.headers[header], header
    assert metric(cached, "pinhole_renders_total") == renders + 1
    assert cached.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def raw_exchange(server, request_bytes, responses):
    """Sends raw bytes on one connection and reads `responses` HTTP/1.1 responses back, in order, as
    (status line, headers dict, body)."""
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as connection:
        connection.sendall(request_bytes)
        data = b""
        parsed = []
        while len(parsed) < responses:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = data[:head_end].decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
                end = head_end + 4 + int(headers.get("content-length", "0"))
                if len(data) >= end:
                    parsed.append((lines[0], headers, data[head_end + 4:end]))
                    data = data[end:]
                    continue
            chunk = connection.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
        return parsed


def test_memory_hits_answer_exactly_like_disk_hits(cached):
    # Hits held in memory are answered before Hummingbird's request machinery: same status, headers and bytes.
    url = crypto.generate(width=212, height=141, image_url=PHOTOS[2])
    fast = lambda: metric(cached, "pinhole_cache_fast_path_hits_total")
    before = fast()
    cached.get(url)                          # rendered
    disk = cached.get(url)                   # read back from disk, which admits it to memory
    assert fast() == before                  # a miss and a disk hit go through Hummingbird
    memory = cached.get(url)
    assert fast() == before + 1              # the memory hit was answered in the channel pipeline
    assert disk.headers["X-Pinhole-Cache"] == memory.headers["X-Pinhole-Cache"] == "hit"
    assert memory.content == disk.content and len(memory.content) == int(memory.headers["Content-Length"])
    assert list(memory.headers.keys()) == list(disk.headers.keys())
    for name in ["Content-Type", "Cache-Control", "ETag", "Content-Length", "Server"]:
        assert memory.headers[name] == disk.headers[name], name
    assert abs(parsedate_to_datetime(memory.headers["Date"]).timestamp() - time.time()) < 5
    not_modified = cached.get(url, headers={"If-None-Match": memory.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["ETag"] == memory.headers["ETag"]
    assert fast() == before + 2              # so was the 304
    head = requests.head(cached.base + url, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Length"] == memory.headers["Content-Length"]
    assert fast() == before + 2              # HEAD takes the normal path
    closing = cached.get(url, headers={"Connection": "close"})
    assert closing.headers["X-Pinhole-Cache"] == "hit" and closing.content == memory.content
    assert fast() == before + 2              # so does Connection: close (Hummingbird closes the connection)


def test_pipelined_requests_are_answered_in_order(cached):
    hot = crypto.generate(width=213, height=142, image_url=PHOTOS[3])
    for _ in range(3):
        cached.get(hot)                      # now in memory
    cold = crypto.generate(width=377, height=211, image_url=BIG_PHOTO)   # a slow render
    request = lambda path: f"GET {path} HTTP/1.1\r\nHost: pinhole\r\n\r\n".encode()
    fast = metric(cached, "pinhole_cache_fast_path_hits_total")
    answers = raw_exchange(cached, request(cold) + request(hot) + request(hot), 3)
    # Behind a request still with Hummingbird, the fast path stands aside: order is kept.
    assert metric(cached, "pinhole_cache_fast_path_hits_total") == fast
    assert [status for status, _, _ in answers] == ["HTTP/1.1 200 OK"] * 3
    assert [headers["x-pinhole-cache"] for _, headers, _ in answers] == ["miss", "hit", "hit"]
    assert image_size(answers[0][2]) == (377, 211) and image_size(answers[1][2]) == (213, 142)
    assert answers[1][2] == answers[2][2]


def test_only_if_cached(cached):
    url = crypto.generate(width=211, height=140, image_url=PHOTOS[1])
    deadlines = metric(cached, "pinhole_deadlines_exceeded_total")
    assert cached.get(url, headers={"Cache-Control": "only-if-cached"}).status_code == 504
    # A probe's answer (pre-warm sends one before every render), not a failure: no deadline, no warning.
    assert metric(cached, "pinhole_deadlines_exceeded_total") == deadlines
    assert "not cached (only-if-cached)" not in cached.logs()
    cached.get(url)
    assert cached.get(url, headers={"Cache-Control": "only-if-cached"}).status_code == 200


def test_identical_concurrent_requests_render_once(cached):
    url = crypto.generate(width=333, height=222, image_url=BIG_PHOTO)
    renders = metric(cached, "pinhole_renders_total")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: cached.get(url), range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.content for r in responses}) == 1
    assert metric(cached, "pinhole_renders_total") == renders + 1


def test_corrupted_entry_is_detected_deleted_and_rerendered(cached):
    url = crypto.generate(width=212, height=140, image_url=PHOTOS[2])
    first = cached.get(url)
    newest = max(cached.cache_root.rglob("*.entry"), key=lambda p: p.stat().st_mtime)
    cached.stop()                                            # as after a crash: the entry on disk is torn
    newest.write_bytes(newest.read_bytes()[:-100])
    cached.start()
    again = cached.get(url)
    assert again.status_code == 200 and again.headers["X-Pinhole-Cache"] == "miss"
    assert again.content == first.content
    assert cached.get(url).headers["X-Pinhole-Cache"] == "hit"


def test_entries_survive_a_restart(cached):
    url = crypto.generate(width=213, height=140, image_url=PHOTOS[3])
    cached.get(url)
    cached.stop()
    cached.start()
    assert cached.get(url).headers["X-Pinhole-Cache"] == "hit"


def test_unsafe_urls_are_cached_only_when_configured(tmp_path):
    plain = PinholeServer(allow_unsafe="true", result_cache="true", cache_root=str(tmp_path / "a"))
    storing = PinholeServer(allow_unsafe="true", result_cache="true", cache_unsafe="true", cache_root=str(tmp_path / "b"))
    try:
        path = f"/unsafe/64x64/{PHOTOS[0]}"
        plain.get(path)
        assert plain.get(path).headers["X-Pinhole-Cache"] == "miss"
        storing.get(path)
        assert storing.get(path).headers["X-Pinhole-Cache"] == "hit"
    finally:
        plain.stop()
        storing.stop()


def test_unwritable_cache_keeps_serving_and_says_degraded(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    server = PinholeServer(result_cache="true", cache_root=str(blocker / "cache"))
    try:
        response = server.get(crypto.generate(width=64, image_url=PHOTOS[0]))
        assert response.status_code == 200 and image_size(response.content) == (64, 40)
        assert server.get("/healthcheck").status_code == 200
        assert metric(server, "pinhole_cache_degraded") == 1
        assert "cache degraded" in server.logs()
    finally:
        server.stop()


def test_burst_beyond_the_queue_is_shed_with_429_and_hits_stay_fast(tmp_path):
    """A burst of slow renders beyond the queue: the excess is refused at once with 429, and a cache hit
    and the healthcheck are answered while the admitted renders are still running (an order of events,
    not a timing: they do not wait behind renders)."""
    server = PinholeServer(result_cache="true", cache_root=str(tmp_path / "c"), render_queue="2", workers="1")
    try:
        warm = crypto.generate(width=50, image_url=PHOTOS[0])
        server.get(warm)
        # Slow on purpose: the whole 14.7 MP photo blurred.
        urls = [crypto.generate(width=2000 + n, image_url=BIG_PHOTO, filters=["blur(40)"]) for n in range(24)]
        finished = {}
        def fetch(n):
            response = server.get(urls[n])
            finished[n] = time.monotonic()
            return response
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            futures = [pool.submit(fetch, n) for n in range(24)]
            # Wait for the burst to have arrived: refusals come back at once.
            while not any(f.done() and f.result().status_code == 429 for f in futures):
                time.sleep(0.01)
            hit = server.get(warm)
            health = server.get("/healthcheck")
            answered = time.monotonic()
            statuses = [f.result().status_code for f in futures]
        assert hit.status_code == 200 and hit.headers["X-Pinhole-Cache"] == "hit" and health.status_code == 200
        rendered = [finished[n] for n, status in enumerate(statuses) if status == 200]
        assert answered < max(rendered), "the hit and the healthcheck waited until the renders were done"
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) > 0 and statuses.count(200) >= 2
        shed = next(f.result() for f in futures if f.result().status_code == 429)
        assert shed.headers["Retry-After"] == "1"
    finally:
        server.stop()


def test_deadline_gives_504_and_the_service_keeps_serving(origin):
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", request_deadline="1", request_timeout="10")
    try:
        started = time.time()
        response = server.get(sign("fit-in/100x100/" + urllib.parse.quote(f"http://{origin}/slow/4", safe="")))
        assert response.status_code == 504 and time.time() - started < 3
        assert server.get("/healthcheck").status_code == 200
    finally:
        server.stop()


def test_sizes_of_one_source_share_one_fetch(origin, tmp_path):
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", result_cache="true", cache_root=str(tmp_path / "r"),
                           source_cache_root=str(tmp_path / "s"))
    try:
        source = urllib.parse.quote(f"http://{origin}/slow/1", safe="")
        urls = [sign(f"fit-in/{n}x{n}/{source}") for n in (100, 150, 200, 250, 300)]
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            assert all(r.status_code == 200 for r in pool.map(server.get, urls))
        assert metric(server, "pinhole_source_fetches_total") == 1
        assert server.get(sign(f"fit-in/120x120/{source}")).status_code == 200      # from the source cache
        assert metric(server, "pinhole_source_fetches_total") == 1
    finally:
        server.stop()


@pytest.fixture()
def studio(tmp_path):
    """`pinhole serve` with both services, as a studio runs it."""
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", result_cache="true",
                           cache_root=str(tmp_path / "cache"), source_cache_root=str(tmp_path / "sources"),
                           prewarm_sizes="fit-in/300x300,fit-in/100x100")
    server.files_base = f"http://127.0.0.1:{server.files_port}"
    server.tmp = tmp_path
    yield server
    server.stop()


upload, thumbnail_path = upload_component, component_thumbnail_path


def wait_cached(server, path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.get(path, headers={"Cache-Control": "only-if-cached"}).status_code == 200:
            return True
        time.sleep(0.2)
    return False


def test_upload_prewarms_and_remove_purges(studio):
    from conftest import CORPUS
    cid = str(uuid.uuid4())
    assert upload(studio, cid, (CORPUS / PHOTOS[4]).read_bytes()).status_code == 200
    assert wait_cached(studio, thumbnail_path(studio, cid)), "upload hook did not pre-warm fit-in/300x300"
    assert wait_cached(studio, thumbnail_path(studio, cid, "fit-in/100x100"))
    first = studio.get(thumbnail_path(studio, cid))
    assert first.headers["X-Pinhole-Cache"] == "hit" and image_size(first.content) == (300, 188)
    remove = requests.delete(f"{studio.files_base}/remove?id={cid}&signature={file_signature({'id': cid})}", timeout=30)
    assert remove.status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline and studio.get(thumbnail_path(studio, cid), headers={"Cache-Control": "only-if-cached"}).status_code == 200:
        time.sleep(0.2)
    assert studio.get(thumbnail_path(studio, cid), headers={"Cache-Control": "only-if-cached"}).status_code == 504
    assert studio.get(thumbnail_path(studio, cid)).status_code == 404          # the component is gone


def run_pinhole(server, *args, stdin=None):
    env = dict(server.env)
    env["PINHOLE_THUMBNAILS_HOST"] = "127.0.0.1"
    return subprocess.run([BINARY, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin, cwd=server.workdir)


def test_prewarm_command_resumes_and_reports(studio):
    from conftest import CORPUS
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for cid in ids:
        upload(studio, cid, (CORPUS / PHOTOS[5]).read_bytes(), content_type="application/octet-stream")  # no upload hook
    missing = str(uuid.uuid4())
    first = run_pinhole(studio, "prewarm", "--size", "fit-in/64x64", "--size", "200x100", *ids, missing)
    assert first.returncode == 0, first.stderr
    assert "pre-warm: 6 rendered, 0 already cached, 2 failed" in first.stdout, first.stdout
    assert f"failed: {missing} fit-in/64x64: 404" in first.stdout
    second = run_pinhole(studio, "prewarm", "--size", "fit-in/64x64", "--size", "200x100", "--file", "-",
                         stdin="\n".join(ids) + "\n")
    assert "pre-warm: 0 rendered, 6 already cached, 0 failed" in second.stdout, second.stdout
    assert studio.get(thumbnail_path(studio, ids[0], "200x100"), headers={"Cache-Control": "only-if-cached"}).status_code == 200
    nothing = run_pinhole(studio, "prewarm", "--size", "fit-in/64x64", missing)
    assert nothing.returncode != 0 and "1 failed" in nothing.stdout


def test_cache_stats_and_purge_commands(studio):
    from conftest import CORPUS
    cid = str(uuid.uuid4())
    upload(studio, cid, (CORPUS / PHOTOS[6]).read_bytes(), content_type="application/octet-stream")
    studio.get(thumbnail_path(studio, cid))
    studio.get(thumbnail_path(studio, cid))
    stats = run_pinhole(studio, "cache", "stats")
    assert re.search(r"results: [1-9]\d* entries, [1-9]\d* bytes", stats.stdout), stats.stdout
    purge = run_pinhole(studio, "cache", "purge", cid)
    assert "entries removed" in purge.stdout and not purge.stdout.startswith(f"{cid}: 0 ")
    # The server re-checks a memory-held entry's file at most once a second: another process's purge
    # takes effect within that second.
    time.sleep(1.1)
    assert studio.get(thumbnail_path(studio, cid), headers={"Cache-Control": "only-if-cached"}).status_code == 504
