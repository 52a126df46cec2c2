"""Two `pinhole serve` nodes on one shared component store: pre-warm on upload goes through the
cluster's balancer (so it lands on the URL's home node), and a removal through any node purges every
node's caches, also one that was down when it happened."""
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import CORPUS, PHOTOS, PinholeServer, file_signature, sign

PHOTO = CORPUS / PHOTOS[0]


def only_if_cached(server, path):
    return server.get(path, headers={"Cache-Control": "only-if-cached"}).status_code


def wait_status(server, path, status, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline and only_if_cached(server, path) != status:
        time.sleep(0.2)
    return only_if_cached(server, path) == status


@pytest.fixture()
def nodes(tmp_path):
    shared = tmp_path / "components"
    def node(name, **env):
        return PinholeServer(loader="http", allowed_hosts="127.0.0.1", result_cache="true",
                             cache_root=str(tmp_path / name / "cache"), source_cache_root=str(tmp_path / name / "sources"),
                             prewarm_sizes="fit-in/200x200", workdir=tmp_path / name,
                             env={"PINHOLE_FILES_ROOT": str(shared), "PINHOLE_FILES_DEBRIS_GRACE": "0",
                                  "PINHOLE_ENCODE_ENABLED": "false", **env})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = node("a")
    # Node b's "balancer" is node a: every URL's home is a, so b's pre-warm must render there.
    b = node("b", PINHOLE_CLUSTER_BALANCER_URL=a.base, PINHOLE_CLUSTER_REMOVAL_POLL_SECONDS="0.5")
    yield a, b
    a.stop()
    b.stop()


def files_url(server, op, cid):
    return f"http://127.0.0.1:{server.files_port}/{op}?id={cid}&signature={file_signature({'id': cid})}"


def thumbnail(source_node, cid, size="fit-in/200x200"):
    # One source URL for both nodes, as ftrack puts one get URL (the balancer's) in every thumbnail URL.
    return sign(f"{size}/{urllib.parse.quote(files_url(source_node, 'get', cid), safe='')}")


def test_upload_prewarm_goes_through_the_balancer(nodes):
    a, b = nodes
    cid = str(uuid.uuid4())
    response = requests.put(files_url(b, "put", cid), data=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert response.status_code == 200
    # b pre-warmed through its balancer: the render is in a's cache, not in b's.
    path = thumbnail(b, cid)
    assert wait_status(a, path, 200), "the pre-warm did not reach the balancer's node"
    assert only_if_cached(b, path) == 504
    deadline = time.time() + 10
    while time.time() < deadline and "pre-warmed thumbnails" not in open(b.log.name).read():
        time.sleep(0.1)
    line = next(l for l in open(b.log.name) if "pre-warmed thumbnails" in l)
    assert f"id={cid}" in line and "cached=0" in line and "failed=0" in line and "rendered=1" in line, line


def test_removal_through_one_node_purges_every_node_even_one_that_was_down(nodes):
    a, b = nodes
    cids = [str(uuid.uuid4()) for _ in range(2)]
    for cid in cids:
        assert requests.put(files_url(a, "put", cid), data=PHOTO.read_bytes(), timeout=60).status_code == 200
    paths = {cid: thumbnail(a, cid, "fit-in/120x120") for cid in cids}
    for cid, path in paths.items():
        for node in (a, b):
            assert node.get(path).status_code == 200
            assert only_if_cached(node, path) == 200
    # b is up: a's removal reaches it through the journal in the shared store.
    assert requests.delete(files_url(a, "remove", cids[0]), timeout=30).json()["removed"] is True
    assert wait_status(a, paths[cids[0]], 504)
    assert wait_status(b, paths[cids[0]], 504, timeout=10), "b kept a removed component's thumbnail"
    assert only_if_cached(b, paths[cids[1]]) == 200, "b purged a component nobody removed"
    # b is down while the second one is removed; it purges it when it comes back.
    b.stop()
    assert requests.delete(files_url(a, "remove", cids[1]), timeout=30).json()["removed"] is True
    b.start()
    assert wait_status(b, paths[cids[1]], 504, timeout=10), "b missed a removal made while it was down"
    assert b.get(paths[cids[1]]).status_code == 404
