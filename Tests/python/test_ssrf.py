"""SSRF: the HTTP loader fetches only from public addresses unless configuration names the host or the
range, checks the address it actually connects to on every redirect hop, and refuses IP addresses in
disguise. Every address here is a loopback one: names are made to resolve to 127.0.0.x through
Pinhole's own hosts file (thumbnails.hosts_file), standing in for a DNS answer an attacker controls."""
import http.server
import threading
import urllib.parse

import pytest

from conftest import CORPUS, PHOTOS, PinholeServer, free_port, image_size, sign

PORT = free_port()
CDN = "images.studio-cdn.com"          # public-looking name that resolves to 127.0.0.2
INTERNAL = "internal.studio-cdn.com"   # resolves to 127.0.0.3
PHOTO = (CORPUS / PHOTOS[0]).read_bytes()


class Origin(http.server.ThreadingHTTPServer):
    """An image origin on one loopback address that records every request it is sent."""

    def __init__(self, address):
        self.seen = []
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                origin.seen.append((self.headers.get("Host"), self.path))
                if self.path.startswith("/redirect"):
                    target = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["to"][0]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(PHOTO)))
                self.end_headers()
                self.wfile.write(PHOTO)

            def log_message(self, *args):
                pass

        super().__init__((address, PORT), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def origins():
    servers = {address: Origin(address) for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hosts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolver") / "hosts"
    # `localhost` is pinned to 127.0.0.2 here while the system resolver says 127.0.0.1: a loader that
    # resolved again when connecting (the DNS-rebinding window) would reach the 127.0.0.1 origin.
    path.write_text(f"127.0.0.2 {CDN} localhost\n127.0.0.3 {INTERNAL}\n")
    return path


def server(hosts_file, **extra):
    return PinholeServer(loader="http", allowed_hosts="", allow_any_host="true", hosts_file=str(hosts_file), **extra)


@pytest.fixture(scope="module")
def open_server(hosts_file, origins):
    process = server(hosts_file)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def studio_server(hosts_file, origins):
    process = server(hosts_file, allowed_networks="127.0.0.2/32")
    yield process
    process.stop()


def fetch(pinhole, source):
    return pinhole.get(sign(f"fit-in/64x64/{urllib.parse.quote(source, safe='')}"))


def requests_to(origins, address):
    return len(origins[address].seen)


@pytest.mark.parametrize("source,words", [
    (f"http://{CDN}:{PORT}/a.jpg", ["127.0.0.2", "loopback"]),
    (f"http://127.0.0.2:{PORT}/a.jpg", ["loopback"]),
    # Thumbor's quote_url percent-encodes brackets, so an IPv6 literal never names a host (the
    # classifier's unit tests cover IPv4-mapped and other IPv6 ranges).
    (f"http://[::ffff:127.0.0.2]:{PORT}/a.jpg", []),
    (f"http://2130706434:{PORT}/a.jpg", ["disguise"]),
    (f"http://0x7f.0.0.2:{PORT}/a.jpg", ["disguise"]),
    (f"http://0177.0.0.2:{PORT}/a.jpg", ["disguise"]),
    (f"http://127.2:{PORT}/a.jpg", ["disguise"]),
])
def test_internal_addresses_are_refused_without_a_connection(open_server, origins, source, words):
    before = {address: requests_to(origins, address) for address in origins}
    response = fetch(open_server, source)
    assert response.status_code == 400, response.text
    for word in words:
        assert word in response.text
    assert {address: requests_to(origins, address) for address in origins} == before


def test_allowed_network_is_fetched_at_the_checked_address(studio_server, origins):
    before = requests_to(origins, "127.0.0.2")
    response = fetch(studio_server, f"http://{CDN}:{PORT}/cdn.jpg")
    assert response.status_code == 200, response.text
    assert max(image_size(response.content)) == 64
    assert origins["127.0.0.2"].seen[before:] == [(f"{CDN}:{PORT}", "/cdn.jpg")]


def test_connection_goes_to_the_checked_address_not_a_second_lookup(studio_server, origins):
    # The system resolver answers 127.0.0.1 for localhost (not allowed); Pinhole checked 127.0.0.2.
    loopback_before = requests_to(origins, "127.0.0.1")
    response = fetch(studio_server, f"http://localhost:{PORT}/pinned.jpg")
    assert response.status_code == 200, response.text
    assert origins["127.0.0.2"].seen[-1] == (f"localhost:{PORT}", "/pinned.jpg")
    assert requests_to(origins, "127.0.0.1") == loopback_before


def test_every_redirect_hop_is_checked(studio_server, origins):
    internal_before = requests_to(origins, "127.0.0.3")
    target = f"http://{INTERNAL}:{PORT}/secret.jpg"
    response = fetch(studio_server, f"http://{CDN}:{PORT}/redirect?to={urllib.parse.quote(target, safe='')}")
    assert response.status_code == 400, response.text
    assert "127.0.0.3" in response.text and "loopback" in response.text
    assert requests_to(origins, "127.0.0.3") == internal_before
    assert origins["127.0.0.2"].seen[-1][1].startswith("/redirect")


def test_redirect_to_a_disguised_address_is_refused(studio_server, origins):
    response = fetch(studio_server, f"http://{CDN}:{PORT}/redirect?to=" + urllib.parse.quote(f"http://2130706433:{PORT}/x.jpg", safe=""))
    assert response.status_code == 400 and "disguise" in response.text


def test_a_name_that_does_not_resolve_is_a_bad_gateway(studio_server):
    response = fetch(studio_server, f"http://no-such-host.invalid:{PORT}/x.jpg")
    assert response.status_code == 502 and "does not resolve" in response.text


def test_bad_configuration_stops_start_up(hosts_file, tmp_path):
    process = PinholeServer.__new__(PinholeServer)
    import os
    import subprocess
    from conftest import BINARY
    env = dict(os.environ, PINHOLE_THUMBNAILS_ALLOWED_NETWORKS="10.0.0.0/33", PINHOLE_THUMBNAILS_PORT=str(free_port()),
               PINHOLE_FILES_PORT=str(free_port()))
    result = subprocess.run([BINARY, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "thumbnails.allowed_networks" in result.stderr
    env = dict(env, PINHOLE_THUMBNAILS_ALLOWED_NETWORKS="10.0.0.0/8", PINHOLE_THUMBNAILS_HOSTS_FILE=str(tmp_path / "missing"))
    result = subprocess.run([BINARY, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "thumbnails.hosts_file" in result.stderr
