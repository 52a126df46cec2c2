"""SIGTERM (contract: hardening.md, shutdown_grace): the listeners close at once, uploads and renders in
progress finish within the grace, what is still running when it ends is cut without a trace, and the
process exits 0. Also `pinhole thumbnails`, the thumbnail service alone."""
import base64
import hashlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import BIG_PHOTO, BINARY, PHOTOS, FileServerProcess, PinholeServer, image_size, sign, wait_for


class Served(PinholeServer):
    """PinholeServer running `pinhole COMMAND` (serve, or thumbnails)."""
    command = "serve"

    def start(self):
        self.process = subprocess.Popen([BINARY, self.command], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(self.base + "/healthcheck", self.process)


class ThumbnailsOnly(Served):
    command = "thumbnails"


def serve(tmp_path, thumbnails_grace, files_grace):
    root = tmp_path / "files"
    server = Served(env={"PINHOLE_FILES_ROOT": str(root), "PINHOLE_FILES_SHUTDOWN_GRACE": str(files_grace)},
                    shutdown_grace=thumbnails_grace)
    server.root = root
    return server


def files_only(tmp_path, grace):
    return FileServerProcess(root=tmp_path / "files", shutdown_grace=grace)


def put_url(server, component_id):
    if isinstance(server, FileServerProcess):
        return server.url("put", component_id), server.port
    return server.files_url("put", component_id), server.files_port


def refused(port):
    """True if a new connection to `port` is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def refused_within(ports, seconds=1.0):
    """{port: seconds after which a new connection was refused, or None}, trying each until `seconds` passed."""
    start, found = time.monotonic(), {}
    while time.monotonic() - start < seconds and len(found) < len(ports):
        for port in ports:
            if port not in found and refused(port):
                found[port] = round(time.monotonic() - start, 2)
        time.sleep(0.05)
    return {port: found.get(port) for port in ports}


def wait_exit(process, timeout):
    """Seconds until the process exits (from now), or None."""
    start = time.monotonic()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - start


def snapshot(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file())


def read_response(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")]
            if lengths and len(body) >= int(lengths[0]):
                break
    return data


def stored(root, component_id):
    """What a fresh `pinhole files` on `root` serves for the id: (status, bytes)."""
    server = FileServerProcess(root=root)
    try:
        got = requests.get(server.url("get", component_id), timeout=60)
        return got.status_code, got.content
    finally:
        server.stop()


@pytest.mark.parametrize("command", ["serve", "files"])
def test_upload_in_progress_finishes_within_grace(tmp_path, command):
    grace = 5
    # serve takes the larger of the two graces: the thumbnail service's 1 s would cut this upload.
    server = serve(tmp_path, 1, grace) if command == "serve" else files_only(tmp_path, grace)
    ports = [server.port, server.files_port] if command == "serve" else [server.port]
    component_id = str(uuid.uuid4())
    data = os.urandom(4 * 1024 * 1024)
    url, port = put_url(server, component_id)
    path = url.split(str(port), 1)[1]
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    quarter = len(data) // 4
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\nContent-MD5: {md5}\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data[:quarter])
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refusals = refused_within(ports)
        for piece in range(1, 4):                   # the rest over about 1.5 s, inside the grace
            sock.sendall(data[piece * quarter:(piece + 1) * quarter if piece < 3 else len(data)])
            time.sleep(0.5)
        answer = read_response(sock, 10)
        sock.close()
        exited = wait_exit(server.process, grace + 5)
        exited_after = time.monotonic() - signalled if exited is not None else None
    finally:
        if server.process.poll() is None:
            server.kill()
    assert answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert hashlib.md5(data).hexdigest().encode() in answer, answer[-300:]
    assert None not in refusals.values(), f"new connections still accepted 1 s after SIGTERM: {refusals}"
    assert exited_after is not None, f"still running {grace + 5} s after SIGTERM"
    assert server.process.returncode == 0, (server.process.returncode, server.logs()[-2000:])
    assert exited_after <= grace + 3, f"exited {exited_after:.1f} s after SIGTERM, grace is {grace} s"
    assert stored(server.root, component_id) == (200, data), "the upload finished in the grace was not stored"


def test_upload_still_running_when_grace_ends_is_cut_without_trace(tmp_path):
    grace = 2
    server = serve(tmp_path, 1, grace)
    component_id = str(uuid.uuid4())
    previous = os.urandom(50_000)
    try:
        assert requests.put(server.files_url("put", component_id), data=previous, timeout=30).status_code == 200
        before = snapshot(server.root)
        url, port = put_url(server, component_id)
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"PUT {url.split(str(port), 1)[1]} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode()
                     + os.urandom(1000))
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        cut_after, answer = None, b""
        while time.monotonic() - signalled < grace + 6:         # 1 byte every 0.5 s until cut
            try:
                sock.sendall(b"t")
            except OSError:
                cut_after = time.monotonic() - signalled
                break
            if select.select([sock], [], [], 0.5)[0]:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                answer += chunk
                if not chunk:
                    cut_after = time.monotonic() - signalled
                    break
        sock.close()
        exited = wait_exit(server.process, grace + 5)
        exited_after = time.monotonic() - signalled if exited is not None else None
    finally:
        if server.process.poll() is None:
            server.kill()
    assert cut_after is not None, f"the trickling upload was still connected {grace + 6} s after SIGTERM"
    assert cut_after >= grace - 0.5, f"cut {cut_after:.2f} s after SIGTERM, before the {grace} s grace"
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:300]
    assert exited_after is not None and server.process.returncode == 0, (server.process.returncode, server.logs()[-2000:])
    assert exited_after <= grace + 3, f"exited {exited_after:.1f} s after SIGTERM, grace is {grace} s"
    after = snapshot(server.root)
    assert after == before, f"left behind: {sorted(set(after) - set(before))}, lost: {sorted(set(before) - set(after))}"
    assert not list((server.root / ".incoming").glob("*")), "a temporary upload was left in .incoming"
    assert stored(server.root, component_id) == (200, previous), "the previous version is not served intact"


def test_render_in_flight_completes_after_sigterm(tmp_path):
    server = serve(tmp_path, 10, 1)
    path = sign("0x0/filters:quality(100)/" + BIG_PHOTO)
    result = {}
    try:
        began = time.monotonic()
        baseline = server.get(path)
        baseline_seconds = time.monotonic() - began
        assert baseline.status_code == 200
        assert baseline_seconds >= 0.6, f"the render takes {baseline_seconds:.2f} s: too quick to catch in flight"

        def fetch():
            try:
                response = server.get(path)
                result.update(status=response.status_code, body=response.content, done=time.monotonic())
            except requests.RequestException as error:
                result.update(error=repr(error)[:300], done=time.monotonic())

        thread = threading.Thread(target=fetch)
        thread.start()
        time.sleep(0.25)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refused_new = refused_within([server.port])[server.port] is not None
        thread.join(30)
        exited = wait_exit(server.process, 15)
    finally:
        if server.process.poll() is None:
            server.kill()
    assert result.get("status") == 200, result
    assert result["done"] > signalled, "the render was not in flight at SIGTERM"
    assert image_size(result["body"]) == (5120, 2880)
    assert refused_new, "new connections still accepted 1 s after SIGTERM"
    assert exited is not None and server.process.returncode == 0, (server.process.returncode, server.logs()[-2000:])


def test_thumbnails_command_serves_thumbnails_without_a_files_port(tmp_path):
    server = ThumbnailsOnly(workdir=tmp_path)
    try:
        response = server.get(sign("300x200/" + PHOTOS[0]))
        assert response.status_code == 200 and image_size(response.content) == (300, 200)
        assert refused(server.files_port), "pinhole thumbnails opened the files port"
        assert "files on" not in server.logs()
        server.process.send_signal(signal.SIGTERM)
        exited = wait_exit(server.process, 15)
    finally:
        if server.process.poll() is None:
            server.kill()
    assert exited is not None and server.process.returncode == 0, (server.process.returncode, server.logs()[-2000:])
