#!/usr/bin/env python3
"""The S3 component store against the object store it sits on, in the same run (real SeaweedFS from
the project's virtualenv, `weed mini` on loopback):

- throughput of a large upload and download through `pinhole files` (`files.store: s3`) against curl
  talking SigV4 to SeaweedFS directly (the anchor: what the store itself allows);
- latency of small (30 KB) reads: `/get` (HEAD + ranged GET behind it) against one signed GET straight
  to SeaweedFS (what a shared second-level result cache hit would cost) and a thumbnail cache hit of
  `pinhole serve`.

Usage: .venv/bin/python benchmarks/s3_store.py [--binary PATH] [--mib 1024] [--runs 3]"""
import argparse
import datetime
import hashlib
import hmac
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "Tests" / "python"))
from seaweed import SeaweedFS  # noqa: E402


def sigv4_get_headers(store, key):
    """Headers of a SigV4-signed GET of `key` (path-style), for a keep-alive client."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = store.s3_endpoint.split("://")[1]
    path = f"/{store.bucket}/" + urllib.parse.quote(key, safe="/-_.~")
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": empty, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["GET", path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, empty])
    scope = f"{day}/{store.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key_bytes = ("AWS4" + store.secret_key).encode()
    for part in (day, store.region, "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={store.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    del headers["host"]
    return store.url(key), headers


def curl_seconds(args):
    started = time.monotonic()
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", *args], check=True)
    return time.monotonic() - started


def percentiles(samples):
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=None)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reads", type=int, default=500)
    options = parser.parse_args()
    binary = options.binary
    if binary is None:
        subprocess.run(["swift", "build", "-c", "release", "--product", "pinhole"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.strip() + "/pinhole"
    work = Path(tempfile.mkdtemp(prefix="pinhole-s3-bench-"))
    store = SeaweedFS.mini(work / "seaweed", volume_size_limit_mb=1024)
    processes = []
    try:
        sys.path.insert(0, str(REPO / "Tests" / "python"))
        from conftest import file_signature, free_port, wait_for_port
        files_port, thumbs_port = free_port(), free_port()
        env = dict(os.environ, PINHOLE_FILES_PORT=str(files_port), PINHOLE_THUMBNAILS_PORT=str(thumbs_port),
                   PINHOLE_FILES_SECRETS="bench-secret", PINHOLE_THUMBNAILS_SECURITY_KEYS="bench-key",
                   PINHOLE_FILES_STORE="s3", PINHOLE_FILES_S3_ENDPOINT=store.s3_endpoint, PINHOLE_FILES_S3_BUCKET=store.bucket,
                   PINHOLE_FILES_S3_ACCESS_KEY=store.access_key, PINHOLE_FILES_S3_SECRET_KEY=store.secret_key,
                   PINHOLE_FILES_MAX_UPLOAD_BYTES=str(4 << 30), PINHOLE_ENCODE_ENABLED="false",
                   PINHOLE_THUMBNAILS_LOADER="http", PINHOLE_THUMBNAILS_ALLOWED_HOSTS="127.0.0.1",
                   PINHOLE_THUMBNAILS_RESULT_CACHE="true", PINHOLE_THUMBNAILS_CACHE_ROOT=str(work / "cache"),
                   PINHOLE_THUMBNAILS_SOURCE_CACHE_ROOT=str(work / "sources"), PINHOLE_THUMBNAILS_PREWARM_SIZES="")
        server = subprocess.Popen([binary, "serve", "--log-level", "error"], env=env, cwd=work, stdout=subprocess.DEVNULL)
        processes.append(server)
        wait_for_port(files_port, server)
        wait_for_port(thumbs_port, server)

        def files_url(op, cid):
            return f"http://127.0.0.1:{files_port}/{op}?id={cid}&signature={urllib.parse.quote(file_signature({'id': cid}, 'bench-secret'))}"

        blob = work / "blob.bin"
        with open(blob, "wb") as out:
            for _ in range(options.mib):
                out.write(os.urandom(1 << 20))
        size = blob.stat().st_size
        sig = ["--aws-sigv4", f"aws:amz:{store.region}:s3", "--user", f"{store.access_key}:{store.secret_key}"]
        rows = {"direct PUT": [], "pinhole PUT": [], "direct GET": [], "pinhole GET": []}
        for run in range(options.runs):
            key = f"bench/{uuid.uuid4()}"
            rows["direct PUT"].append(curl_seconds([*sig, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", str(blob), store.url(key)]))
            rows["direct GET"].append(curl_seconds([*sig, store.url(key)]))
            cid = str(uuid.uuid4())
            rows["pinhole PUT"].append(curl_seconds(["-T", str(blob), files_url("put", cid)]))
            rows["pinhole GET"].append(curl_seconds([files_url("get", cid)]))
        print(f"\n{options.mib} MiB, {options.runs} runs (median MB/s; 2 cores shared by curl, Pinhole and SeaweedFS)")
        rates = {name: size / statistics.median(seconds) / 1e6 for name, seconds in rows.items()}
        for name, rate in rates.items():
            print(f"  {name:12s} {rate:8.0f} MB/s")
        print(f"  upload ratio   {rates['pinhole PUT'] / rates['direct PUT']:.2f} of direct")
        print(f"  download ratio {rates['pinhole GET'] / rates['direct GET']:.2f} of direct")

        # Small reads.
        from PIL import Image
        import io
        picture = io.BytesIO()
        Image.effect_noise((300, 200), 60).convert("RGB").save(picture, "JPEG", quality=90)
        small = picture.getvalue()
        small_key = f"bench/small-{uuid.uuid4()}"
        status, _, _ = store.signed_curl("PUT", small_key, data=small)
        assert status == 200
        cid = str(uuid.uuid4())
        assert requests.put(files_url("put", cid), data=small, timeout=30).status_code == 200
        thumb_source = urllib.parse.quote(files_url("get", cid), safe="")
        from libthumbor import CryptoURL
        thumb = CryptoURL(key="bench-key").generate(width=150, height=100, image_url=thumb_source)
        session = requests.Session()
        first = session.get(f"http://127.0.0.1:{thumbs_port}{thumb}", timeout=30)   # render once
        assert first.status_code == 200, (first.status_code, first.text)
        latencies = {"direct S3 GET (L2 hit)": [], "pinhole /get (HEAD+GET)": [], "thumbnail cache hit": []}
        for _ in range(options.reads):
            url, headers = sigv4_get_headers(store, small_key)
            started = time.monotonic(); response = session.get(url, headers=headers, timeout=30)
            latencies["direct S3 GET (L2 hit)"].append(time.monotonic() - started)
            assert response.status_code == 200 and len(response.content) == len(small)
            started = time.monotonic(); response = session.get(files_url("get", cid), timeout=30)
            latencies["pinhole /get (HEAD+GET)"].append(time.monotonic() - started)
            assert response.status_code == 200
            started = time.monotonic(); response = session.get(f"http://127.0.0.1:{thumbs_port}{thumb}", timeout=30)
            latencies["thumbnail cache hit"].append(time.monotonic() - started)
            assert response.status_code == 200
        print(f"\n{len(small)} B object, {options.reads} sequential keep-alive reads (p50 / p99 ms)")
        for name, samples in latencies.items():
            p50, p99 = percentiles(samples)
            print(f"  {name:26s} {p50:6.2f} / {p99:6.2f}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        store.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
