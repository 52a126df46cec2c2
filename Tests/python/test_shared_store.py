"""Several Pinhole processes on one storage root, as nodes on a shared NAS filesystem would be: no
lock between them, every id ends as one whole version, readers never see a partial file, and one
node's crash debris is swept by another while it keeps writing."""
import hashlib
import os
import random
import threading
import time
import uuid

import requests

from conftest import FileServerProcess


def debris(root):
    """What is left besides committed components: temporary uploads, pending commits, unnamed data."""
    left = [p.name for p in (root / ".incoming").iterdir()]
    left += [p.name for p in root.rglob("*.pending")]
    named = set()
    for record in root.rglob("*.json"):
        if ".incoming" not in record.parts:
            import json
            named.add(json.loads(record.read_text())["blob"])
    left += [p.name for p in root.rglob("*.data") if p.name not in named]
    return left


def test_two_writers_on_one_root_leave_one_whole_version_per_id_and_no_debris(tmp_path):
    nodes = [FileServerProcess(root=tmp_path, debris_grace="0") for _ in range(2)]
    try:
        shared = [str(uuid.uuid4()) for _ in range(6)]
        own = {n: [str(uuid.uuid4()) for _ in range(8)] for n in range(2)}
        written = {cid: set() for cid in shared + own[0] + own[1]}
        lock = threading.Lock()
        failures, torn = [], []
        stop = threading.Event()

        def writer(seed):
            rng = random.Random(seed)
            session = requests.Session()
            plan = [(cid, rng.randrange(2)) for cid in shared for _ in range(6)]
            plan += [(cid, n) for n in range(2) for cid in own[n] if rng.random() < 0.5]
            rng.shuffle(plan)
            for cid, n in plan:
                body = os.urandom(rng.choice([1, 10_000, 300_000, 2_500_000]))
                with lock:
                    written[cid].add(hashlib.md5(body).hexdigest())
                response = session.put(nodes[n].url("put", cid), data=body, timeout=60)
                if response.status_code != 200:
                    failures.append((cid, response.status_code, response.text))

        def reader(seed):
            # Reads race the commits: any answer must be a whole version someone wrote.
            rng = random.Random(seed)
            session = requests.Session()
            while not stop.is_set():
                cid = rng.choice(shared)
                response = session.get(nodes[rng.randrange(2)].url("get", cid), timeout=60)
                if response.status_code == 200:
                    md5 = hashlib.md5(response.content).hexdigest()
                    with lock:
                        if md5 not in written[cid]:
                            torn.append(cid)
                elif response.status_code != 404:
                    failures.append((cid, response.status_code, response.text))

        writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
        readers = [threading.Thread(target=reader, args=(100 + seed,)) for seed in range(2)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join(240)
        stop.set()
        for thread in readers:
            thread.join(60)
        assert not failures, failures[:5]
        assert not torn, f"a reader saw a version nobody wrote: {torn[:5]}"
        for cid, versions in written.items():
            if not versions:
                continue
            bodies = [requests.get(node.url("get", cid), timeout=60) for node in nodes]
            assert all(b.status_code == 200 for b in bodies), cid
            md5 = hashlib.md5(bodies[0].content).hexdigest()
            assert md5 in versions, f"{cid} holds no version that was written"
            assert bodies[1].content == bodies[0].content, f"{cid}: the two nodes disagree"
            assert bodies[0].headers["ETag"] == f'"{md5}"'
        assert debris(tmp_path) == []
        records = [p for p in tmp_path.rglob("*.json")]
        assert len(records) == sum(1 for v in written.values() if v)
        assert len(list(tmp_path.rglob("*.data"))) == len(records)
    finally:
        for node in nodes:
            node.stop()


def slow_body(chunks, size, delay, started=None):
    for index in range(chunks):
        if index == 2 and started is not None:
            started.set()
        yield os.urandom(size)
        time.sleep(delay)


def test_sigkill_of_one_writer_mid_upload_loses_nothing_and_its_debris_is_swept_while_the_other_writes(tmp_path):
    a = FileServerProcess(root=tmp_path, debris_grace="0")
    b = FileServerProcess(root=tmp_path, debris_grace="0")
    try:
        cid = str(uuid.uuid4())
        original = os.urandom(500_000)
        assert requests.put(a.url("put", cid), data=original, timeout=30).status_code == 200

        # A replacement of the id streams into node a, which is SIGKILLed halfway.
        started = threading.Event()
        outcome = {}

        def doomed():
            try:
                outcome["a"] = requests.put(a.url("put", cid), data=slow_body(40, 256 * 1024, 0.1, started), timeout=60).status_code
            except requests.RequestException as error:
                outcome["a"] = type(error).__name__
        thread = threading.Thread(target=doomed)
        thread.start()
        assert started.wait(30)
        deadline = time.time() + 20
        while time.time() < deadline and not any(p.stat().st_size > 0 for p in (tmp_path / ".incoming").iterdir()):
            time.sleep(0.05)
        a.kill()
        thread.join(60)
        assert outcome["a"] != 200
        left = list((tmp_path / ".incoming").iterdir())
        assert len(left) == 1 and left[0].stat().st_size > 0, "the killed upload's partial file should be there"

        # Node b never noticed: the id still holds the original, and b's uploads go on.
        response = requests.get(b.url("get", cid), timeout=30)
        assert response.status_code == 200 and response.content == original

        # b streams an upload while node a restarts and sweeps the shared root.
        other = str(uuid.uuid4())
        body = [os.urandom(128 * 1024) for _ in range(20)]
        def b_upload():
            def gen():
                for chunk in body:
                    yield chunk
                    time.sleep(0.1)
            outcome["b"] = requests.put(b.url("put", other), data=gen(), timeout=60).status_code
        upload = threading.Thread(target=b_upload)
        upload.start()
        deadline = time.time() + 20
        while time.time() < deadline and len(list((tmp_path / ".incoming").iterdir())) < 2:
            time.sleep(0.02)
        assert len(list((tmp_path / ".incoming").iterdir())) == 2, "b's upload should be streaming"
        a.start()                       # start-up sweep: a's own debris goes, b's upload in flight stays
        remaining = [p.name for p in (tmp_path / ".incoming").iterdir()]
        assert left[0].name not in remaining, "the dead writer's partial upload survived the sweep"
        upload.join(60)
        assert outcome["b"] == 200, "the sweep broke the other node's upload in flight"
        assert requests.get(a.url("get", other), timeout=30).content == b"".join(body)
        assert requests.get(a.url("get", cid), timeout=30).content == original
        assert debris(tmp_path) == []
    finally:
        a.stop()
        b.stop()
