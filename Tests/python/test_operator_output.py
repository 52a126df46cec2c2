"""What operators read (issue 16): log lines without Swift type paths, `pinhole explain` JSON that follows a
schema with Thumbor's numbers as JSON numbers, and `pinhole cache stats` counting every hit and miss (the
memory fast path included), evictions and the memory share, while the server runs and after it stops."""
import json
import re
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import jsonschema
import pytest
import requests

from conftest import (BAD, BINARY, CORPUS, PHOTOS, PinholeServer, component_thumbnail_path, file_signature, free_port, image_size,
                      sign, upload_component)

SCHEMAS = Path(__file__).parent / "schemas"
# `Module.Type.case` (a nested enum printed by String(describing:)), `SomeError.someCase`, `Module.Type(`.
TYPE_PATH = re.compile(r"\b[A-Z]\w*\.[A-Z]\w*\.[a-z_]\w*|\b[A-Z]\w*Error\.[a-z_]\w*|\b[A-Z]\w*\.[A-Z]\w*\(")


def type_paths(text):
    return sorted({m.group(0) for m in TYPE_PATH.finditer(text)})


def test_type_path_pattern_catches_what_the_issue_saw():
    seen = "outcomes=[ThumbnailService.ThumbnailServer.PrewarmOutcome.rendered, …]"
    assert type_paths(seen)
    assert type_paths("resize(width: Imaging.PyNumber.float(300.0))")
    assert type_paths("source unreachable: HTTPClientError.connectTimeout")
    assert not type_paths("GET /abc/300x200/photo.JPG 200 file=Render.v001.exr e.g. 1.5 s")


# --- log lines ---------------------------------------------------------------------------------------------

def wait_log(server, text, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in server.logs():
            return [line for line in server.logs().splitlines() if text in line]
        time.sleep(0.2)
    pytest.fail(f"no log line with {text!r}:\n{server.logs()[-3000:]}")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_carry_plain_values(tmp_path, log_format):
    """Uploads with their pre-warm (one good, one broken), renders, refusals, an unreachable origin and a
    removal: no line the server writes spells a Swift type."""
    closed_port = free_port()        # nothing listens there: the fetch fails at connect
    silent = socket.create_server(("127.0.0.1", 0))     # accepts, never answers: the fetch times out
    silent.listen(16)
    server = PinholeServer(loader="http", allowed_hosts="127.0.0.1", result_cache="true", cache_root=str(tmp_path / "cache"),
                           source_cache_root=str(tmp_path / "sources"), prewarm_sizes="fit-in/300x300,fit-in/100x100",
                           connect_timeout="2", request_timeout="1", env={"PINHOLE_FILES_ROOT": str(tmp_path / "files"), "PINHOLE_LOG_FORMAT": log_format})
    try:
        good, broken = str(uuid.uuid4()), str(uuid.uuid4())
        assert upload_component(server, good, (CORPUS / PHOTOS[0]).read_bytes()).status_code == 200
        truncated = next(b for b in BAD if "trunc" in b)
        assert upload_component(server, broken, (CORPUS / truncated).read_bytes()).status_code == 200
        prewarmed = wait_log(server, "pre-warmed thumbnails")
        deadline = time.time() + 30
        while len(prewarmed) < 2 and time.time() < deadline:
            time.sleep(0.2)
            prewarmed = wait_log(server, "pre-warmed thumbnails")
        assert len(prewarmed) == 2, prewarmed
        good_line = next(line for line in prewarmed if good in line)
        if log_format == "json":
            fields = json.loads(good_line)
            assert (fields["rendered"], fields["cached"], fields["failed"]) == (2, 0, 0), good_line
        else:
            assert "rendered=2" in good_line and "cached=0" in good_line and "failed=0" in good_line, good_line

        assert server.get(component_thumbnail_path(server, good)).status_code == 200
        assert server.get(component_thumbnail_path(server, broken, "200x200")).status_code in (400, 415, 422, 500)
        assert server.get(sign("300x200/" + urllib.parse.quote(f"http://127.0.0.1:{closed_port}/x.jpg", safe=""))).status_code in (502, 504)
        silent_url = urllib.parse.quote(f"http://127.0.0.1:{silent.getsockname()[1]}/x.jpg", safe="")
        assert server.get(sign("300x200/" + silent_url)).status_code == 504
        assert server.get(sign("300x200/x.jpg", key="not-the-key")).status_code == 400      # as Thumbor answers
        assert server.get(sign("300x200/" + urllib.parse.quote("http://example.invalid/x.jpg", safe=""))).status_code >= 400
        remove = requests.delete(f"http://127.0.0.1:{server.files_port}/remove?id={good}&signature={file_signature({'id': good})}",
                                 timeout=30)
        assert remove.status_code == 200
        wait_log(server, "purged cached thumbnails")
    finally:
        server.stop()
        silent.close()
    text = server.logs()
    assert "source unreachable" in text and "source timed out" in text, "the failures above were not logged"
    assert type_paths(text) == [], "\n".join(line for line in text.splitlines() if TYPE_PATH.search(line))


# --- pinhole explain ---------------------------------------------------------------------------------------

def explain(*arguments, stdin=None):
    result = subprocess.run([BINARY, "explain", "--key", "k", *arguments], capture_output=True, text=True, timeout=120, input=stdin)
    return result


@pytest.fixture(scope="module")
def explain_schema():
    schema = json.loads((SCHEMAS / "explain.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def spelled(text):
    """JSON with every number kept as it was written: ("float", "300.0") or ("int", "188")."""
    return json.loads(text, parse_float=lambda s: ("float", s), parse_int=lambda s: ("int", s))


@pytest.mark.parametrize("path", [
    "fit-in/300x300/{}",                                   # a float width asked for, an int height computed
    "-300x200/{}",                                         # a crop, a resize, a flip
    "10x10:810x410/400x0/filters:format(png)/{}",          # a manual crop, a proportional side
    "fit-in/-200x-200/{}",                                 # both flips
])
def test_explain_json_follows_its_schema_with_thumbors_numbers(explain_schema, thumbor, path):
    """`plan.thumbor_operations` is what Thumbor's /meta lists for the same URL, number spellings included."""
    path = path.format(PHOTOS[0])
    result = explain("--source", str(CORPUS / PHOTOS[0]), "/unsafe/" + path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, explain_schema)
    assert type_paths(result.stdout) == []
    ours = spelled(result.stdout)["plan"]["thumbor_operations"]
    theirs = spelled(thumbor.get(sign("meta/" + path)).text)["thumbor"]["operations"]
    assert ours == theirs


def test_explain_errors_and_batch_lines_follow_the_schema(explain_schema, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((CORPUS / PHOTOS[0]).read_bytes()[:200])
    result = explain("--source", str(broken), "/unsafe/300x200/p.jpg")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, explain_schema)
    assert isinstance(document["plan"]["error"], str) and type_paths(document["plan"]["error"]) == []

    result = explain("--batch", stdin="/unsafe/300x200/p.jpg\n/unsafe/fit-in/10x10/filters:blur(2)/p.jpg\n\n/a%FF\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    for line in lines:
        jsonschema.validate(line, explain_schema)
    assert lines[1]["request"]["filter_calls"] == [{"name": "blur", "params": [2]}]
    assert lines[2]["error"] == "no image" and lines[3]["error"] == "invalid utf-8"


# --- pinhole cache stats -----------------------------------------------------------------------------------

def cache_stats(server, as_json=True):
    result = server.cli("cache", "stats", *(["--json"] if as_json else []), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if as_json else result.stdout


def eventually_stats(server, check, timeout=5):
    deadline = time.time() + timeout
    while True:
        stats = cache_stats(server)
        if check(stats["results"]) or time.time() > deadline:
            return stats


def fast_path_hits(server):
    text = server.get("/metrics").text
    match = re.search(r"^pinhole_cache_fast_path_hits_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_cache_stats_count_every_hit_and_miss_while_running_and_after_a_stop(tmp_path):
    server = PinholeServer(result_cache="true", cache_root=str(tmp_path / "cache"), source_cache_root=str(tmp_path / "sources"),
                           cache_memory_bytes=str(64 << 20), cache_max_bytes="60000")
    stats = cache_stats(server)
    assert set(stats) == {"results", "sources"}
    assert stats["results"]["hits"] == 0 and stats["results"]["misses"] == 0 and stats["results"]["counting_since"] is None
    url = sign(f"fit-in/200x200/{PHOTOS[1]}")
    try:
        # One miss, a hit read from disk (which admits the entry to memory), a hit answered by the fast path.
        statuses = [server.get(url).headers["X-Pinhole-Cache"] for _ in range(2)]
        fast = fast_path_hits(server)
        statuses.append(server.get(url).headers["X-Pinhole-Cache"])
        assert statuses == ["miss", "hit", "hit"]
        assert fast_path_hits(server) == fast + 1, "the third request was not answered by the memory fast path"
        # While the server runs (written about once a second).
        running = eventually_stats(server, lambda r: r["hits"] == 2)["results"]
        assert (running["hits"], running["misses"], running["memory_hits"]) == (2, 1, 1), running
        assert running["hit_ratio"] == pytest.approx(2 / 3, abs=1e-4) and running["memory_hit_share"] == 0.5
        assert running["entries"] == 1 and running["bytes"] > 0 and running["evictions"] == 0
        assert running["counting_since"] and running["counts_updated"]
    finally:
        server.stop()
    assert server.process.returncode == 0
    stopped = cache_stats(server)["results"]
    assert (stopped["hits"], stopped["misses"], stopped["memory_hits"]) == (2, 1, 1)
    text = cache_stats(server, as_json=False)
    assert "hits 2 (1 from memory, 50.0 %), misses 1, hit ratio 0.667, evictions 0" in text, text

    # After a restart the counts go on; renders past the 60 kB cap evict the oldest entries.
    server.start()
    try:
        assert server.get(url).headers["X-Pinhole-Cache"] == "hit"          # from disk: memory starts empty
        sizes = [(300, 300), (400, 250), (500, 500), (600, 400), (640, 640)]
        for width, height in sizes:
            response = server.get(sign(f"{width}x{height}/{PHOTOS[1]}"))
            assert response.headers["X-Pinhole-Cache"] == "miss" and image_size(response.content) == (width, height)
        after = eventually_stats(server, lambda r: r["misses"] == 6 and r["evictions"] > 0)["results"]
    finally:
        server.stop()
    final = cache_stats(server)["results"]
    assert (final["hits"], final["misses"], final["memory_hits"]) == (3, 6, 1), final
    assert final["evictions"] > 0 and final["evictions"] == after["evictions"]
    assert final["bytes"] <= 60000
    on_disk = list((tmp_path / "cache").rglob("*.entry"))
    assert final["entries"] == len(on_disk) and final["bytes"] == sum(p.stat().st_size for p in on_disk)
    assert final["entries"] + final["evictions"] == 1 + len(sizes)
    assert not list((tmp_path / "cache" / ".tmp").iterdir()), "temporary files left after a clean stop"
