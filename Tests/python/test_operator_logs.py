"""Operator logs (contract: hardening.md, "Logs"): JSON lines on stderr, one access line per response on both
ports with the request's id, and X-Request-Id on every response."""
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import BINARY, PHOTOS, PinholeServer, sign, wait_for, wait_for_port

ISO_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|\+00:00|\+0000)$")
LEVELS = {"trace", "debug", "info", "notice", "warning", "error", "critical"}
GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


class LoggingServer(PinholeServer):
    """`pinhole serve` with stderr (the log) kept apart from stdout (the start-up announcements)."""

    def start(self):
        self.stderr = tempfile.NamedTemporaryFile(prefix="pinhole-stderr-", suffix=".txt", delete=False)
        self.process = subprocess.Popen([BINARY, "serve"], env=self.env, stdout=self.log, stderr=self.stderr,
                                        cwd=self.workdir)
        wait_for(self.base + "/healthcheck", self.process)
        wait_for_port(self.files_port, self.process)

    def stderr_lines(self):
        return [line for line in Path(self.stderr.name).read_text(errors="replace").splitlines() if line.strip()]

    def access(self, request_id, timeout=3):
        """The JSON access line carrying `request_id` (waits for it to be written)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr_lines():
                with_id = json.loads(line) if line.startswith("{") else None
                if with_id and with_id.get("label") == "pinhole.access" and with_id.get("request_id") == request_id:
                    return with_id
            assert time.monotonic() < deadline, f"no access line with request_id {request_id}"
            time.sleep(0.1)


def start(tmp, **env):
    return LoggingServer(env={"PINHOLE_FILES_ROOT": str(tmp / "files"), **env}, result_cache="true",
                         cache_root=str(tmp / "cache"), source_cache_root=str(tmp / "sources"))


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("jsonlog"), PINHOLE_LOG_FORMAT="json")
    yield server
    server.stop()


def metric(server, name):
    text = requests.get(server.base + "/metrics", timeout=10).text
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def rid():
    return "test-" + uuid.uuid4().hex[:12]


def check_access(line, service, method, path, status, body, cache):
    assert line["label"] == "pinhole.access" and line["message"] == "request", line
    assert line["service"] == service, line
    assert line["method"] == method, line
    assert line["path"] == path or line["path"].split("?")[0] == path, (line["path"], path)
    assert type(line["status"]) is int and line["status"] == status, line
    assert type(line["duration_ms"]) in (int, float) and line["duration_ms"] >= 0, line
    assert type(line["bytes"]) is int and line["bytes"] == len(body), (line["bytes"], len(body))
    assert line["cache"] == cache, line
    assert "127.0.0.1" in str(line.get("remote")), line


def test_every_stderr_line_is_a_json_object(json_server):
    requests.get(json_server.base + "/healthcheck", timeout=10)
    requests.get(f"http://127.0.0.1:{json_server.files_port}/nowhere", timeout=10)
    time.sleep(0.3)
    lines = json_server.stderr_lines()
    assert len(lines) >= 2, lines
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert ISO_MS_UTC.match(record["time"]), record["time"]
        assert record["level"] in LEVELS, record
        assert isinstance(record["label"], str) and record["label"], record
        assert isinstance(record["message"], str), record


def test_thumbnail_miss_hit_and_fast_path_hit(json_server):
    path = sign("211x139/" + PHOTOS[1])
    fast_path = []
    for expected in ["miss", "hit", "hit"]:        # rendered; read back from disk; answered from memory
        fast_path.append(metric(json_server, "pinhole_cache_fast_path_hits_total"))
        request_id = rid()
        response = json_server.get(path, headers={"X-Request-Id": request_id})
        assert response.status_code == 200 and response.headers["X-Pinhole-Cache"] == expected
        assert response.headers["X-Request-Id"] == request_id
        line = json_server.access(request_id)
        check_access(line, "thumbnails", "GET", path, 200, response.content, expected)
    fast_path.append(metric(json_server, "pinhole_cache_fast_path_hits_total"))
    assert fast_path[3] == fast_path[2] + 1, f"the third request was not a fast-path hit: {fast_path}"


@pytest.mark.parametrize("which", ["thumbnails", "files"])
def test_bad_signature_is_logged(json_server, which):
    # Thumbor (and so Pinhole's thumbnail port) answers a wrong signature with 400; the file server with 403.
    request_id = rid()
    if which == "thumbnails":
        path, status = "/" + "A" * 27 + "=/211x139/" + PHOTOS[1], 400
        response = json_server.get(path, headers={"X-Request-Id": request_id})
    else:
        path, status = "/get", 403
        url = f"http://127.0.0.1:{json_server.files_port}/get?id={uuid.uuid4()}&signature=" + "A" * 43
        response = requests.get(url, headers={"X-Request-Id": request_id}, timeout=10)
    assert response.status_code == status and "signature" in response.text, (response.status_code, response.text)
    check_access(json_server.access(request_id), which, "GET", path, status, response.content, "-")


def test_put_and_ranged_get(json_server):
    component_id = str(uuid.uuid4())
    data = os.urandom(10_000)
    put_id, get_id = rid(), rid()
    put = requests.put(json_server.files_url("put", component_id), data=data, headers={"X-Request-Id": put_id}, timeout=30)
    assert put.status_code == 200 and put.headers["X-Request-Id"] == put_id
    check_access(json_server.access(put_id), "files", "PUT", "/put", 200, put.content, "-")
    got = requests.get(json_server.files_url("get", component_id), headers={"X-Request-Id": get_id, "Range": "bytes=100-299"},
                       timeout=30)
    assert got.status_code == 206 and got.content == data[100:300] and got.headers["X-Request-Id"] == get_id
    line = json_server.access(get_id)
    check_access(line, "files", "GET", "/get", 206, got.content, "-")
    assert "signature=" not in line["path"] or line["path"].split("?")[0] == "/get"


@pytest.mark.parametrize("which", ["thumbnails", "files"])
def test_414_is_logged(json_server, which):
    port = json_server.port if which == "thumbnails" else json_server.files_port
    target = "/unsafe/" + "a" * 9000 if which == "thumbnails" else "/get?id=x&pad=" + "a" * 9000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), head
    headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    request_id = {k.lower(): v for k, v in headers.items()}.get("x-request-id")
    assert request_id and GENERATED_ID.match(request_id), headers
    line = json_server.access(request_id)
    assert line["service"] == which and line["method"] == "GET" and line["status"] == 414, line
    assert target.startswith(line["path"].rstrip(".…")[:20]), line["path"][:100]
    assert type(line["bytes"]) is int and line["bytes"] == len(body) and line["cache"] == "-", line
    assert type(line["duration_ms"]) in (int, float), line


@pytest.mark.parametrize("which", ["thumbnails", "files"])
def test_request_ids_echoed_or_generated(json_server, which):
    base = json_server.base if which == "thumbnails" else f"http://127.0.0.1:{json_server.files_port}"
    client_id = "Ab9._:-" + uuid.uuid4().hex[:8]
    echoed = requests.get(base + "/healthcheck", headers={"X-Request-Id": client_id}, timeout=10)
    assert echoed.headers.get("X-Request-Id") == client_id
    assert json_server.access(client_id)["status"] == echoed.status_code
    for sent in [None, "has space", "x" * 129, "semi;colon"]:
        headers = {"X-Request-Id": sent} if sent else {}
        response = requests.get(base + "/healthcheck", headers=headers, timeout=10)
        generated = response.headers.get("X-Request-Id", "")
        assert GENERATED_ID.match(generated), (sent, generated)
        line = json_server.access(generated)
        assert line["service"] == which and line["path"] == "/healthcheck" and line["status"] == response.status_code


def test_access_log_can_be_turned_off(tmp_path):
    server = start(tmp_path, PINHOLE_LOG_FORMAT="json", PINHOLE_LOG_ACCESS="false")
    try:
        thumbnail = server.get(sign("100x100/" + PHOTOS[0]))
        health = requests.get(f"http://127.0.0.1:{server.files_port}/healthcheck", timeout=10)
        assert thumbnail.status_code == 200 and GENERATED_ID.match(thumbnail.headers.get("X-Request-Id", ""))
        assert GENERATED_ID.match(health.headers.get("X-Request-Id", ""))
        time.sleep(0.5)
        lines = [json.loads(line) for line in server.stderr_lines()]
        assert lines, "nothing logged at all"
        assert not [line for line in lines if line.get("label") == "pinhole.access"], lines
    finally:
        server.stop()


def test_text_format_access_line(tmp_path):
    server = start(tmp_path)
    try:
        request_id = rid()
        path = sign("120x80/" + PHOTOS[0])
        response = server.get(path, headers={"X-Request-Id": request_id})
        assert response.status_code == 200
        deadline = time.monotonic() + 3
        while not [line for line in server.stderr_lines() if request_id in line]:
            assert time.monotonic() < deadline, "no text access line with the request id"
            time.sleep(0.1)
        line = [line for line in server.stderr_lines() if request_id in line][0]
        assert not line.startswith("{"), line
        assert "pinhole.access" in line and "status=200" in line and f"path={path}" in line, line
        assert f"bytes={len(response.content)}" in line and "cache=miss" in line and "service=thumbnails" in line, line
    finally:
        server.stop()
