"""A real browser (headless Chromium) on a page from another origin: CORS preflight, an XHR PUT of a
corpus image to a signed URL, then the image shown from /get in an <img>."""
import hashlib
import http.server
import shutil
import subprocess
import tempfile
import threading
import uuid

import pytest
import requests

from conftest import CORPUS, FileServerProcess, free_port

PAGE = """<!doctype html>
<html><body><div id="status">pending</div><img id="shown">
<script>
(async () => {
  const status = document.getElementById('status');
  try {
    const blob = await (await fetch('/kite.jpg')).blob();
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', PUT_URL);
    xhr.setRequestHeader('Content-Type', 'image/jpeg');
    xhr.setRequestHeader('Content-Disposition', 'attachment; filename="kite.jpg"');
    xhr.onerror = () => { status.textContent = 'xhr-error'; };
    xhr.onload = () => {
      status.textContent = 'uploaded ' + xhr.status;
      const img = document.getElementById('shown');
      img.onload = () => { status.textContent = 'done ' + xhr.status + ' ' + img.naturalWidth + 'x' + img.naturalHeight; };
      img.onerror = () => { status.textContent = 'img-error ' + xhr.status; };
      img.src = GET_URL;
    };
    xhr.send(blob);
  } catch (error) {
    status.textContent = 'error ' + error;
  }
})();
</script></body></html>
"""


class PageServer:
    """Serves fixed bodies by path on 127.0.0.1 (pages are opened as "localhost": another origin than the
    file server's "127.0.0.1"); `routes` maps a path to (body bytes, content type)."""

    def __init__(self, routes):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body, kind = routes.get(self.path, routes.get("*", (b"", "text/plain")))
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://localhost:{self.server.server_address[1]}"

    def shutdown(self):
        self.server.shutdown()


def chromium():
    for name in ["chromium", "chromium-browser", "google-chrome"]:
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is not installed (scripts/install-deps installs Debian's chromium)")


def test_browser_cors_upload_and_display():
    files = FileServerProcess()
    image = (CORPUS / "photo-kite-2560x1600.jpg").read_bytes()
    cid = str(uuid.uuid4())
    page = PAGE.replace("PUT_URL", repr(files.url("put", cid))).replace("GET_URL", repr(files.url("get", cid)))

    # The page comes from "localhost", the file server is "127.0.0.1" on another port: another origin.
    page_server = PageServer({"/page.html": (page.encode(), "text/html"), "*": (image, "image/jpeg")})
    profile = tempfile.mkdtemp(prefix="pinhole-chromium-")
    try:
        result = subprocess.run(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom",
             page_server.base + "/page.html"],
            capture_output=True, text=True, timeout=120)
        assert 'id="status">done 200 2560x1600<' in result.stdout, (result.stdout[-2000:], result.stderr[-2000:])
        stored = requests.get(files.url("get", cid), timeout=30)
        assert stored.status_code == 200
        assert hashlib.md5(stored.content).hexdigest() == hashlib.md5(image).hexdigest()
        assert stored.headers["Content-Disposition"] == 'inline; filename="kite.jpg"'
    finally:
        page_server.shutdown()
        files.stop()
        shutil.rmtree(profile, ignore_errors=True)
