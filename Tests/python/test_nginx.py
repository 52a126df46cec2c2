"""The shipped config/nginx/pinhole-files.conf with a real nginx (Debian package) in front of
`pinhole files`: uploads arrive as X-File, downloads leave as X-Accel-Redirect."""
import base64
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import REPO, FileServerProcess, free_port, start_nginx


@pytest.fixture(scope="module")
def fronted():
    work = Path(tempfile.mkdtemp(prefix="pinhole-nginx-"))
    uploads, root = work / "nginx-uploads", work / "files"
    uploads.mkdir()
    root.mkdir()
    os.chmod(work, 0o755)
    pinhole = FileServerProcess(root=root, nginx_upload_dir=str(uploads), accel_redirect_prefix="/_pinhole_files/")
    port = free_port()
    shipped = (REPO / "config" / "nginx" / "pinhole-files.conf").read_text()
    rendered = (shipped.replace("127.0.0.1:9100", f"127.0.0.1:{pinhole.port}")
                .replace("listen 9000;", f"listen 127.0.0.1:{port};")
                .replace("/var/lib/pinhole/nginx-uploads", str(uploads))
                .replace("/var/lib/pinhole/files/", str(root) + "/"))
    process = start_nginx(work, rendered, [port])
    yield f"http://127.0.0.1:{port}", pinhole, uploads
    process.terminate()
    process.wait(10)
    pinhole.stop()


def test_upload_through_nginx_arrives_as_x_file(fronted):
    base, pinhole, uploads = fronted
    data = os.urandom(3 * 1024 * 1024)
    cid = str(uuid.uuid4())
    url = pinhole.url("put", cid).replace(pinhole.base, base)
    response = requests.put(url, data=data, headers={
        "Content-Type": "video/mp4", "Content-Disposition": 'attachment; filename="review.mp4"',
        "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["md5"] == hashlib.md5(data).hexdigest()
    assert list(uploads.iterdir()) == []                 # adopted (renamed) by Pinhole, nothing left behind
    stored = [p for p in pinhole.root.rglob(f"{cid}.*.data")]
    assert len(stored) == 1 and stored[0].read_bytes() == data


def test_download_through_nginx_via_x_accel_redirect(fronted):
    base, pinhole, _ = fronted
    data = os.urandom(1024 * 1024)
    cid = str(uuid.uuid4())
    requests.put(pinhole.url("put", cid), data=data, headers={"Content-Type": "image/x-exr",
                 "Content-Disposition": 'attachment; filename="shot.exr"'}, timeout=60)
    direct = requests.get(pinhole.url("get", cid), timeout=30)
    assert direct.content == b"" and direct.headers["X-Accel-Redirect"].startswith("/_pinhole_files/")
    url = pinhole.url("get", cid).replace(pinhole.base, base)
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content == data
    assert "X-Accel-Redirect" not in got.headers
    assert got.headers["Content-Type"] == "image/x-exr"
    assert got.headers["Content-Disposition"] == 'inline; filename="shot.exr"'
    partial = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert partial.status_code == 206 and partial.content == data[100:200]


def test_bad_signature_through_nginx_stores_nothing_and_leaves_no_upload(fronted):
    base, pinhole, uploads = fronted
    before = pinhole.snapshot()
    cid = str(uuid.uuid4())
    response = requests.put(f"{base}/put?id={cid}&signature=AAAA", data=os.urandom(100_000), timeout=30)
    assert response.status_code == 403
    assert pinhole.snapshot() == before
    # nginx deletes its temp file when it finalises the request, just after the answer is sent.
    deadline = time.time() + 5
    while time.time() < deadline and list(uploads.iterdir()):
        time.sleep(0.05)
    assert list(uploads.iterdir()) == []
    assert requests.get(pinhole.url("get", cid).replace(pinhole.base, base), timeout=30).status_code == 404


def test_internal_location_is_not_reachable_directly(fronted):
    base, _, _ = fronted
    assert requests.get(base + "/_pinhole_files/", timeout=10).status_code == 404
