"""Shared helpers for Pinhole's Python tests: start `pinhole serve`, real Thumbor 7.8.0 and a loopback
origin server; sign URLs with libthumbor; read image sizes. Every server binds 127.0.0.1 only."""
import contextlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("PINHOLE_CORPUS", REPO.parent / "shared" / "corpus")).resolve()
BINARY = os.environ.get("PINHOLE_BINARY", str(REPO / ".build" / "debug" / "pinhole"))
KEY = "test-security-key"
PHOTOS = sorted(p.name for p in CORPUS.glob("photo-*-2560x1600.jpg"))
BIG_PHOTO = "photo-beach-5120x2880.jpg"
BAD = sorted("bad/" + p.name for p in (CORPUS / "bad").iterdir())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, process=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class ServerProcess:
    """What every server process a test starts has: its log, and a clean or a brutal stop."""

    def logs(self):
        return Path(self.log.name).read_text(errors="replace")

    def kill(self):
        self.process.kill()
        self.process.wait(10)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class PinholeServer(ServerProcess):
    """A real `pinhole serve` process configured through PINHOLE_ environment variables."""

    def __init__(self, env=None, workdir=None, **settings):
        """`settings` are thumbnails.* keys; `env` adds other PINHOLE_ variables (files.*, encode.*)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        extra_env = env or {}
        env = dict(os.environ)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pinhole-cwd-"))
        self.files_port = free_port()
        env.update({
            "PINHOLE_THUMBNAILS_PORT": str(self.port),
            "PINHOLE_THUMBNAILS_SECURITY_KEYS": KEY,
            "PINHOLE_THUMBNAILS_LOADER": "file",
            "PINHOLE_THUMBNAILS_FILE_ROOT": str(CORPUS),
            "PINHOLE_THUMBNAILS_RESULT_CACHE": "false",
            "PINHOLE_FILES_PORT": str(self.files_port),
            "PINHOLE_FILES_SECRETS": "service-secret-for-tests-0123456789abcdef",
        })
        for key, value in settings.items():
            env["PINHOLE_THUMBNAILS_" + key.upper()] = str(value)
        env.update({key: str(value) for key, value in extra_env.items()})
        self.log = tempfile.NamedTemporaryFile(prefix="pinhole-log-", suffix=".txt", delete=False)
        self.env = env
        self.start()

    def start(self):
        self.process = subprocess.Popen([BINARY, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.workdir)
        wait_for(self.base + "/healthcheck", self.process)

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return requests.get(self.base + path, **kwargs)

    def files_url(self, operation, component_id, **extra):
        """A signed URL of this process's file server (`/put`, `/get`, `/remove`)."""
        import urllib.parse
        params = {"id": component_id, **extra}
        params["signature"] = file_signature(params, self.env["PINHOLE_FILES_SECRETS"])
        return f"http://127.0.0.1:{self.files_port}/{operation}?{urllib.parse.urlencode(params)}"

    cli_binary = BINARY

    def cli(self, *arguments, timeout=600):
        """`pinhole ARGUMENTS` with this server's configuration and working directory."""
        return subprocess.run([BINARY, *arguments], env=self.env, cwd=self.workdir, capture_output=True, text=True,
                              timeout=timeout)

    def raw_get(self, path):
        """GET with the path sent byte for byte (requests would remove `..` segments)."""
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    def rss_kib(self, field="VmHWM"):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0


class ThumborServer:
    """Real Thumbor 7.8.0 from PyPI: file loader on the corpus, EXIF orientation on (as Pinhole),
    no storage or result storage."""

    def __init__(self, root=CORPUS, extra=""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        conf.write(f"""
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {str(root)!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
RESPECT_ORIENTATION = True
ALLOW_UNSAFE_URL = True
SECURITY_KEY = {KEY!r}
{extra}""")
        conf.close()
        thumbor = Path(sys.executable).parent / "thumbor"
        self.process = subprocess.Popen([str(thumbor), "-p", str(self.port), "-i", "127.0.0.1", "-c", conf.name, "-l", "error"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.base + "/healthcheck", self.process)

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 60)
        return requests.get(self.base + path, **kwargs)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


@contextlib.contextmanager
def servers_on(root, **settings):
    """A Pinhole and a Thumbor, both reading files from `root`, stopped after."""
    pinhole, thumbor = PinholeServer(file_root=str(root), **settings), ThumborServer(root=root)
    try:
        yield pinhole, thumbor
    finally:
        pinhole.stop()
        thumbor.stop()


def image_size(body):
    with Image.open(io.BytesIO(body)) as img:
        return img.size


def image_format(body):
    with Image.open(io.BytesIO(body)) as img:
        return img.format


def mean_difference(a, b, size=64):
    """How far apart two encoded images are (0-255): the mean absolute difference per colour channel, or
    the mean absolute difference of alpha when that is larger (alpha is compared like colour: an image
    without alpha is opaque). Both are scaled to size x size first; size=None compares them pixel for
    pixel at their own (equal) size."""
    from PIL import ImageChops, ImageStat
    with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
        ra, rb = ia.convert("RGBA"), ib.convert("RGBA")
        if size is not None:
            ra, rb = ra.resize((size, size), Image.BILINEAR), rb.resize((size, size), Image.BILINEAR)
        assert ra.size == rb.size, (ra.size, rb.size)
        means = ImageStat.Stat(ImageChops.difference(ra, rb)).mean
        return max(sum(means[:3]) / 3, means[3])


def alpha_difference(a, b, size=64):
    """Mean absolute difference of the alpha channels alone (an image without alpha is opaque)."""
    from PIL import ImageChops, ImageStat
    with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
        ra = ia.convert("RGBA").getchannel("A").resize((size, size), Image.BILINEAR)
        rb = ib.convert("RGBA").getchannel("A").resize((size, size), Image.BILINEAR)
        return ImageStat.Stat(ImageChops.difference(ra, rb)).mean[0]


def sign(path_after_signature, key=KEY):
    """libthumbor's signer (the same code CryptoURL uses)."""
    from libthumbor.url_signers.base64_hmac_sha1 import UrlSigner
    return "/" + UrlSigner(key).signature(path_after_signature).decode() + "/" + path_after_signature


@pytest.fixture(scope="session")
def pinhole():
    server = PinholeServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def thumbor():
    server = ThumborServer()
    yield server
    server.stop()


class OriginHandler(http.server.BaseHTTPRequestHandler):
    """A loopback origin for the HTTP loader: corpus files, redirects, failures, slow and endless bodies."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_bytes(self, status, body, content_type="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts[0] == "files":
            file = CORPUS / "/".join(parts[1:])
            if file.is_file() and CORPUS in file.resolve().parents:
                return self.send_bytes(200, file.read_bytes())
            return self.send_bytes(404, b"no")
        if parts[0] == "redirect":           # /redirect/N/<rest>: N hops, then /<rest>
            hops = int(parts[1])
            target = "/" + "/".join(parts[2:]) if hops <= 1 else f"/redirect/{hops - 1}/" + "/".join(parts[2:])
            if query:
                target += "?" + query
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if parts[0] == "redirect-to":        # /redirect-to/<host:port>/<rest>
            self.send_response(302)
            self.send_header("Location", f"http://{parts[1]}/" + "/".join(parts[2:]))
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if parts[0] == "component":          # ftrack's /component/get?id=…: redirect to the file server
            name = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("id", "")
            self.send_response(302)
            self.send_header("Location", f"/files/{name}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if parts[0] == "status":
            return self.send_bytes(int(parts[1]), b"status")
        if parts[0] == "empty":
            return self.send_bytes(200, b"", "image/jpeg")
        if parts[0] == "slow":
            time.sleep(float(parts[1]))
            return self.send_bytes(200, (CORPUS / PHOTOS[0]).read_bytes())
        if parts[0] == "endless":           # a body that never ends: the loader must cut it off
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\xff" * 65536
            with contextlib.suppress(OSError):
                for _ in range(100000):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            return
        return self.send_bytes(404, b"unknown")


@pytest.fixture(scope="session")
def origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


FILES_SECRET = "service-secret-for-tests-0123456789abcdef"


def file_signature(params, secret=FILES_SECRET):
    """Pinhole's canonical file-server signature (ftrack.md §3), as a studio's ftrack would compute it."""
    import base64
    import hashlib
    import hmac
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def upload_component(server, cid, data, content_type="image/jpeg"):
    """PUT `data` as component `cid` to the file server of a `pinhole serve` (PinholeServer)."""
    url = f"http://127.0.0.1:{server.files_port}/put?id={cid}&signature={file_signature({'id': cid})}"
    return requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=60)


def component_thumbnail_path(server, cid, size="fit-in/300x300"):
    """A signed thumbnail path whose source is component `cid` on the same process's file server."""
    import urllib.parse
    source = f"http://127.0.0.1:{server.files_port}/get?id={cid}&signature={file_signature({'id': cid})}"
    return sign(f"{size}/{urllib.parse.quote(source, safe='')}")


class FileServerProcess(ServerProcess):
    """A real `pinhole files` process on loopback with its own storage root."""

    def __init__(self, root=None, **settings):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.root = Path(root or tempfile.mkdtemp(prefix="pinhole-files-"))
        env = dict(os.environ)
        env.update({"PINHOLE_FILES_PORT": str(self.port), "PINHOLE_FILES_SECRETS": FILES_SECRET,
                    "PINHOLE_FILES_ROOT": str(self.root)})
        for key, value in settings.items():
            env["PINHOLE_FILES_" + key.upper()] = str(value)
        self.env = env
        self.log = tempfile.NamedTemporaryFile(prefix="pinhole-files-log-", suffix=".txt", delete=False)
        self.start()

    def start(self):
        self.process = subprocess.Popen([BINARY, "files"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)

    def url(self, operation, component_id, secret=FILES_SECRET, **extra):
        import urllib.parse
        params = {"id": component_id, **extra}
        params["signature"] = file_signature(params, secret)
        return f"{self.base}/{operation}?{urllib.parse.urlencode(params)}"

    def snapshot(self):
        """Every file under the storage root with its size: 'storage exactly as it was' is this, unchanged."""
        return sorted((str(p.relative_to(self.root)), p.stat().st_size) for p in self.root.rglob("*") if p.is_file())


def start_nginx(work, http_block, ports, worker_connections=64):
    """The Debian nginx in the foreground with its own prefix in `work`, serving `http_block` (a shipped
    config rendered onto test ports) inside `http {}`; returns once every port in `ports` listens."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (work / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    {http_block}
}}
""")
    process = subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-p", str(work)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports:
        wait_for_port(port, process)
    return process


def wait_for_port(port, process=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"port {port}: process exited with {process.returncode}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


@pytest.fixture(scope="module")
def files():
    server = FileServerProcess(max_upload_bytes=str(512 * 1024 * 1024))
    yield server
    server.stop()
