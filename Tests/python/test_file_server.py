"""The file server over real HTTP on loopback: what ftrack's clients send, and every bad input."""
import base64
import hashlib
import os
import socket
import time
import uuid

import pytest
import requests

from conftest import CORPUS, FileServerProcess, file_signature


def new_id():
    return str(uuid.uuid4())


def ftrack_put(files, component_id, data, name="file.bin", content_type="application/octet-stream", **extra):
    """What ftrack-python-api's server accessor sends: Content-Type, Content-Disposition, Content-MD5."""
    headers = {"Content-Type": content_type, "Content-Disposition": f'attachment; filename="{name}"',
               "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()}
    return requests.put(files.url("put", component_id, **extra), data=data, headers=headers, timeout=120)


def test_python_client_upload_and_download(files):
    data = (CORPUS / "photo-kite-2560x1600.jpg").read_bytes()
    cid = new_id()
    response = ftrack_put(files, cid, data, name="kite.jpg", content_type="image/jpeg")
    assert response.status_code == 200, response.text
    assert response.json()["md5"] == hashlib.md5(data).hexdigest()
    got = requests.get(files.url("get", cid), timeout=60)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["Content-Disposition"] == 'inline; filename="kite.jpg"'
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert got.headers["Last-Modified"].endswith("GMT")
    assert got.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("size", [0, 1, 1000, 1024 * 1024 + 1, 64 * 1024 * 1024])
def test_round_trip_sizes(files, size):
    data = os.urandom(size)
    cid = new_id()
    assert ftrack_put(files, cid, data).status_code == 200
    got = requests.get(files.url("get", cid), timeout=120)
    assert got.status_code == 200 and got.content == data


def test_few_hundred_megabytes_streamed_both_ways(files):
    size, chunk = 300 * 1024 * 1024, os.urandom(1024 * 1024)
    digest = hashlib.md5()
    for _ in range(size // len(chunk)):
        digest.update(chunk)

    def body():
        for _ in range(size // len(chunk)):
            yield chunk

    cid = new_id()
    response = requests.put(files.url("put", cid), data=body(), timeout=300)    # chunked: no Content-Length
    assert response.status_code == 200, response.text
    assert response.json()["md5"] == digest.hexdigest()
    received = hashlib.md5()
    count = 0
    with requests.get(files.url("get", cid), stream=True, timeout=300) as got:
        assert got.status_code == 200 and int(got.headers["Content-Length"]) == size
        for piece in got.iter_content(1 << 20):
            received.update(piece)
            count += len(piece)
    assert count == size and received.hexdigest() == digest.hexdigest()


def test_ranges(files):
    data = os.urandom(10_000)
    cid = new_id()
    ftrack_put(files, cid, data)
    url = files.url("get", cid)
    for header, status, expected, content_range in [
        ("bytes=0-99", 206, data[:100], "bytes 0-99/10000"),
        ("bytes=9990-", 206, data[9990:], "bytes 9990-9999/10000"),
        ("bytes=-10", 206, data[-10:], "bytes 9990-9999/10000"),
        ("bytes=5000-20000", 206, data[5000:], "bytes 5000-9999/10000"),
        ("bytes=0-1,5-6", 200, data, None),          # multi-range: the whole body (RFC 9110 allows ignoring)
        ("bytes=abc", 200, data, None),              # malformed: ignored
        ("lines=1-2", 200, data, None),
    ]:
        got = requests.get(url, headers={"Range": header}, timeout=30)
        assert got.status_code == status, header
        assert got.content == expected, header
        assert got.headers.get("Content-Range") == content_range, header
    past = requests.get(url, headers={"Range": "bytes=10000-"}, timeout=30)
    assert past.status_code == 416 and past.headers["Content-Range"] == "bytes */10000"


def test_conditional_get_and_head(files):
    data = b"conditional" * 100
    cid = new_id()
    ftrack_put(files, cid, data)
    url = files.url("get", cid)
    first = requests.get(url, timeout=30)
    assert requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=30).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"nope"'}, timeout=30).status_code == 200
    assert requests.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]}, timeout=30).status_code == 304
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == str(len(data))


def test_content_type_sniffed_when_none_sent(files):
    data = (CORPUS / "format-rgb-1280x800.png").read_bytes()
    cid = new_id()
    assert requests.put(files.url("put", cid), data=data, timeout=60).status_code == 200
    assert requests.get(files.url("get", cid), timeout=60).headers["Content-Type"] == "image/png"


def test_reupload_replaces(files):
    cid = new_id()
    ftrack_put(files, cid, b"first version")
    ftrack_put(files, cid, b"second")
    assert requests.get(files.url("get", cid), timeout=30).content == b"second"


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_remove_is_idempotent(files, method):
    cid = new_id()
    ftrack_put(files, cid, b"to be removed")
    first = requests.request(method, files.url("remove", cid), timeout=30)
    assert first.status_code == 200 and first.json()["removed"] is True
    again = requests.request(method, files.url("remove", cid), timeout=30)
    assert again.status_code == 200 and again.json()["removed"] is False
    assert requests.get(files.url("get", cid), timeout=30).status_code == 404
    assert not [p for p in files.root.rglob(f"{cid}*")]


def test_missing_component_is_404(files):
    assert requests.get(files.url("get", new_id()), timeout=30).status_code == 404


def test_extra_signed_params():
    server = FileServerProcess(required_params="user,invitee,timeout")
    try:
        cid, future = new_id(), str(int(time.time()) + 600)
        ok = requests.put(server.url("put", cid, user="jdoe", invitee="", timeout=future), data=b"x", timeout=30)
        assert ok.status_code == 200
        missing = requests.put(server.url("put", cid, user="jdoe", timeout=future), data=b"x", timeout=30)
        assert missing.status_code == 403 and "invitee" in missing.text
        expired = requests.get(server.url("get", cid, user="jdoe", invitee="", timeout=str(int(time.time()) - 1)), timeout=30)
        assert expired.status_code == 403 and "expired" in expired.text
    finally:
        server.stop()


def bad_signature_urls(files, operation, cid):
    good = files.url(operation, cid)
    other = files.url(operation, new_id())
    return {
        "missing": f"{files.base}/{operation}?id={cid}",
        "garbled": f"{files.base}/{operation}?id={cid}&signature=%%%%",
        "wrong": f"{files.base}/{operation}?id={cid}&signature=" + file_signature({"id": cid + "x"}),
        "replayed-for-another-id": other.replace(other.split("id=")[1].split("&")[0], cid),
        "expired": files.url(operation, cid, timeout="1000"),
        "other-secret": files.url(operation, cid, secret="not-the-secret"),
    }


@pytest.mark.parametrize("operation,method", [("put", "PUT"), ("get", "GET"), ("get", "HEAD"), ("remove", "GET"),
                                              ("remove", "DELETE"), ("remove", "POST")])
def test_bad_signatures_leave_storage_as_it_was(files, operation, method):
    cid = new_id()
    ftrack_put(files, cid, b"kept")
    before = files.snapshot()
    for kind, url in bad_signature_urls(files, operation, cid).items():
        response = requests.request(method, url, data=b"replacement" if method == "PUT" else None, timeout=30)
        assert response.status_code == 403, (kind, response.status_code, response.text)
        if method != "HEAD":
            assert response.text.strip() and "signature" in response.text or "expired" in response.text, kind
    assert files.snapshot() == before
    assert requests.get(files.url("get", cid), timeout=30).content == b"kept"


@pytest.mark.parametrize("bad_id", ["a/b", "../../etc/passwd", "..", "a%00b", "x" * 200, "", "%2E%2E%2Fx", ".hidden"])
def test_implausible_ids_are_refused(files, bad_id):
    before = files.snapshot()
    for method, operation in [("PUT", "put"), ("GET", "get"), ("DELETE", "remove")]:
        url = f"{files.base}/{operation}?id={bad_id}&signature=" + file_signature({"id": bad_id})
        response = requests.request(method, url, data=b"x" if method == "PUT" else None, timeout=30)
        assert response.status_code == 400, (bad_id, operation, response.text)
    assert files.snapshot() == before


def test_wrong_and_malformed_content_md5(files):
    cid = new_id()
    ftrack_put(files, cid, b"original")
    before = files.snapshot()
    wrong = requests.put(files.url("put", cid), data=b"new body",
                         headers={"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()}, timeout=30)
    assert wrong.status_code == 400 and "Content-MD5" in wrong.text
    malformed = requests.put(files.url("put", cid), data=b"new body", headers={"Content-MD5": "not base64!"}, timeout=30)
    assert malformed.status_code == 400
    assert files.snapshot() == before


def test_upload_size_limit():
    server = FileServerProcess(max_upload_bytes=str(1024 * 1024))
    try:
        cid = new_id()
        declared = requests.put(server.url("put", cid), data=os.urandom(2 * 1024 * 1024), timeout=30)
        assert declared.status_code == 413
        chunked = requests.put(server.url("put", cid), data=iter([os.urandom(256 * 1024)] * 8), timeout=30)
        assert chunked.status_code == 413
        assert server.snapshot() == []
        assert requests.get(server.url("get", cid), timeout=30).status_code == 404
    finally:
        server.stop()


def test_client_disconnecting_halfway_leaves_no_trace(files):
    cid = new_id()
    before = files.snapshot()
    path = files.url("put", cid).split(files.base)[1]
    with socket.create_connection(("127.0.0.1", files.port)) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode())
        sock.sendall(os.urandom(3_000_000))
        time.sleep(0.3)
    deadline = time.time() + 10
    while time.time() < deadline and files.snapshot() != before:
        time.sleep(0.1)
    assert files.snapshot() == before
    assert requests.get(files.url("get", cid), timeout=30).status_code == 404


def test_cors_preflight(files):
    for path, methods in [("/put", "PUT, OPTIONS"), ("/get", "GET, HEAD, OPTIONS")]:
        response = requests.options(files.base + path, headers={"Origin": "http://ftrack.example",
                                                                  "Access-Control-Request-Method": "PUT"}, timeout=10)
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == methods
        assert response.headers["Access-Control-Allow-Headers"] == "content-type, content-md5, content-length, content-disposition"
        assert response.headers["Access-Control-Max-Age"] == "86400"


def test_cors_allowed_origins():
    server = FileServerProcess(cors_origins="https://ftrack.example")
    try:
        allowed = requests.options(server.base + "/put", headers={"Origin": "https://ftrack.example"}, timeout=10)
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://ftrack.example"
        assert allowed.headers["Vary"] == "Origin"
        other = requests.options(server.base + "/put", headers={"Origin": "https://evil.example"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        server.stop()


def test_x_file_uploads(tmp_path):
    upload_dir, outside = tmp_path / "nginx-uploads", tmp_path / "elsewhere"
    upload_dir.mkdir()
    outside.mkdir()
    disabled = FileServerProcess()
    enabled = FileServerProcess(nginx_upload_dir=str(upload_dir))
    try:
        (outside / "body").write_bytes(b"secret")
        cid = new_id()
        refused = requests.put(enabled.url("put", cid), headers={"X-File": str(outside / "body")}, timeout=30)
        assert refused.status_code == 403 and "outside" in refused.text
        sneaky = requests.put(enabled.url("put", cid), headers={"X-File": str(upload_dir / ".." / "elsewhere" / "body")}, timeout=30)
        assert sneaky.status_code == 403
        (upload_dir / "link").symlink_to(outside / "body")
        assert requests.put(enabled.url("put", cid), headers={"X-File": str(upload_dir / "link")}, timeout=30).status_code == 403
        assert enabled.snapshot() == [] and (outside / "body").read_bytes() == b"secret"
        (upload_dir / "0000000001").write_bytes(b"written by nginx")
        assert requests.put(disabled.url("put", cid), headers={"X-File": str(upload_dir / "0000000001")}, timeout=30).status_code == 400
        ok = requests.put(enabled.url("put", cid), headers={"X-File": str(upload_dir / "0000000001"),
                                                           "Content-MD5": base64.b64encode(hashlib.md5(b"written by nginx").digest()).decode()}, timeout=30)
        assert ok.status_code == 200, ok.text
        assert requests.get(enabled.url("get", cid), timeout=30).content == b"written by nginx"
    finally:
        disabled.stop()
        enabled.stop()


def test_wrong_method_and_unknown_path(files):
    assert requests.post(files.url("put", new_id()), data=b"x", timeout=10).status_code == 405
    assert requests.get(files.base + "/elsewhere", timeout=10).status_code == 404
