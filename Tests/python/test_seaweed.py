"""Self-tests of the SeaweedFS harness (seaweed.py): S3 semantics through signed curl requests, the object store
going down and coming back, and a 3-volume-server cluster losing one server. Start-up times and RSS are printed
(pytest -s shows them)."""
import hashlib
import os
import re
import subprocess
import time

import pytest

from seaweed import SeaweedFS

DEFAULT_PORTS = {7333, 8080, 8111, 8181, 8333, 8888, 9000, 9101, 9333, 9340, 18080, 18333, 18888, 19333, 23646}


def listeners(store):
    """(pid, local address) of every listening TCP socket of the store's processes."""
    pids = set(store.processes().values())
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in output.splitlines():
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((pid, line.split()[3]))
    return found


def assert_loopback_only(store):
    found = listeners(store)
    assert found, "no listening socket found for the weed processes"
    assert all(address.startswith("127.0.0.1:") for _, address in found), found
    ports = {int(address.rsplit(":", 1)[1]) for _, address in found}
    assert not ports & DEFAULT_PORTS, sorted(ports & DEFAULT_PORTS)


def report(label, store, seconds):
    rss = store.rss_kib()
    each = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in rss.items())
    print(f"\n{label}: ready in {seconds:.2f} s; RSS MiB {each}; total {sum(rss.values()) / 1024:.0f}")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    store = SeaweedFS.mini(tmp_path_factory.mktemp("seaweed-mini"), fsync=True)
    report("weed mini", store, store.startup_seconds)
    print(f"fs.configure -fsync=true through weed shell: {store.fsync_seconds:.2f} s")
    yield store
    began = time.monotonic()
    store.stop()
    print(f"\nweed mini stop: {time.monotonic() - began:.2f} s")
    store.stop()    # idempotent


def test_mini_listens_on_loopback_only_and_off_default_ports(mini):
    assert mini.s3_endpoint.startswith("http://127.0.0.1:")
    assert (mini.bucket, mini.region) == ("components", "us-east-1")
    assert_loopback_only(mini)


def test_put_get_head_delete(mini):
    body = os.urandom(50_000)
    status, headers, _ = mini.signed_curl("PUT", "self-test/a b/ü.bin", data=body)
    assert status == 200
    assert headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, headers, got = mini.signed_curl("GET", "self-test/a b/ü.bin")
    assert (status, got) == (200, body)
    status, headers, got = mini.signed_curl("HEAD", "self-test/a b/ü.bin")
    assert (status, int(headers["content-length"]), got) == (200, len(body), b"")
    status, headers, got = mini.signed_curl("GET", "self-test/a b/ü.bin", headers={"Range": "bytes=100-199"})
    assert (status, got) == (206, body[100:200])
    status, _, listing = mini.signed_curl("GET", None, query={"list-type": "2", "prefix": "self-test/"})
    assert status == 200 and b"<Key>self-test/a b/\xc3\xbc.bin</Key>" in listing
    assert mini.signed_curl("DELETE", "self-test/a b/ü.bin")[0] == 204
    assert mini.signed_curl("GET", "self-test/a b/ü.bin")[0] == 404


def test_wrong_key_is_403(mini):
    assert mini.signed_curl("PUT", "self-test/forbidden", data=b"x", secret_key="not-the-secret")[0] == 403
    assert mini.signed_curl("GET", "self-test/forbidden", access_key="NOSUCHKEY")[0] == 403
    assert mini.signed_curl("GET", "self-test/forbidden")[0] == 404


def test_if_none_match_star_on_an_existing_key_is_412(mini):
    assert mini.signed_curl("PUT", "self-test/once", data=b"first", headers={"If-None-Match": "*"})[0] == 200
    assert mini.signed_curl("PUT", "self-test/once", data=b"second", headers={"If-None-Match": "*"})[0] == 412
    assert mini.signed_curl("GET", "self-test/once")[2] == b"first"


def test_kill_then_start_keeps_what_was_written(mini):
    body = os.urandom(20_000)
    assert mini.signed_curl("PUT", "self-test/survivor", data=body)[0] == 200
    port = mini.s3_port
    mini.kill()
    assert mini.processes() == {}
    with pytest.raises(ConnectionError):
        mini.signed_curl("GET", "self-test/survivor", timeout=5)
    began = time.monotonic()
    mini.start()
    print(f"\nweed mini restart after SIGKILL: {time.monotonic() - began:.2f} s")
    assert mini.s3_port == port
    assert mini.signed_curl("GET", "self-test/survivor")[0::2] == (200, body)
    assert mini.signed_curl("PUT", "self-test/after-restart", data=b"x")[0] == 200


@pytest.mark.skipif(os.environ.get("PINHOLE_LARGE_TESTS") != "1",
                    reason="5 processes, ~15 s; benchmarks/cluster/run.py runs this topology with a volume kill: PINHOLE_LARGE_TESTS=1")
def test_cluster_keeps_serving_with_one_volume_server_down(tmp_path):
    store = SeaweedFS.cluster(tmp_path, volumes=3, replication="001")
    try:
        report("cluster (1 master, 3 volumes, filer+S3)", store, store.startup_seconds)
        assert_loopback_only(store)
        assert len(store.processes()) == 5
        bodies = {f"cluster/{i:02}": os.urandom(20_000) for i in range(40)}
        first = list(bodies)[:20]
        began = time.monotonic()
        for key in first:
            assert store.signed_curl("PUT", key, data=bodies[key])[0] == 200, key
        print(f"20 PUTs (incl. volume growth): {time.monotonic() - began:.2f} s")

        store.kill_volume(1)
        assert "volume1" not in store.processes()
        began = time.monotonic()
        for key in first:
            assert store.signed_curl("GET", key)[0::2] == (200, bodies[key]), key
        for key in list(bodies)[20:]:
            assert store.signed_curl("PUT", key, data=bodies[key])[0] == 200, key
        print(f"volume1 down: 20 GETs + 20 PUTs in {time.monotonic() - began:.2f} s")

        began = time.monotonic()
        store.start_volume(1)
        print(f"volume1 back (listed by the master): {time.monotonic() - began:.2f} s")
        assert len(store.processes()) == 5
        for key, body in bodies.items():
            assert store.signed_curl("GET", key)[0::2] == (200, body), key
        report("cluster after the test", store, store.startup_seconds)
    finally:
        began = time.monotonic()
        store.stop()
        print(f"cluster stop: {time.monotonic() - began:.2f} s")
    assert store.processes() == {}
