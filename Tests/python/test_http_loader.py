"""The HTTP loader against a loopback origin: redirects, upstream failures, timeouts, limits, allow-list."""
import time
import urllib.parse

import pytest

from conftest import BAD, KEY, PHOTOS, PinholeServer, free_port, image_size, sign


@pytest.fixture(scope="module")
def fetching(origin):
    server = PinholeServer(loader="http", allowed_hosts=f"127.0.0.1,localhost", request_timeout="2",
                           max_source_bytes=str(8 * 1024 * 1024))
    yield server
    server.stop()


def url_for(source, options="fit-in/100x100"):
    return sign(f"{options}/{urllib.parse.quote(source, safe='')}")


def test_plain_fetch(fetching, origin):
    response = fetching.get(url_for(f"http://{origin}/files/{PHOTOS[0]}"))
    assert response.status_code == 200
    assert image_size(response.content) == (100, 63)


def test_ftrack_component_url_redirects_to_the_file_server(fetching, origin):
    # ftrack: a 768x576 PNG at size 10 gives a 10x8 PNG; here the corpus PNG, through /component/get's redirect.
    source = f"http://{origin}/component/get?id=format-rgb-1280x800.png&signature=abc"
    response = fetching.get(url_for(source, "fit-in/10x10"))
    assert response.status_code == 200, response.text
    assert image_size(response.content) == (10, 6)
    assert response.headers["Content-Type"] == "image/png"


def test_redirect_limit(fetching, origin):
    assert fetching.get(url_for(f"http://{origin}/redirect/5/files/{PHOTOS[0]}")).status_code == 200
    response = fetching.get(url_for(f"http://{origin}/redirect/6/files/{PHOTOS[0]}"))
    assert response.status_code == 502 and "redirected more than 5" in response.text


def test_redirect_to_a_host_not_allowed(fetching, origin):
    response = fetching.get(url_for(f"http://{origin}/redirect-to/evil.example/files/{PHOTOS[0]}"))
    assert response.status_code == 400 and "not allowed" in response.text


def test_host_not_allowed(fetching):
    response = fetching.get(url_for(f"http://files.example/{PHOTOS[0]}"))
    assert response.status_code == 400 and "not allowed" in response.text


@pytest.mark.parametrize("path,status", [("status/404", 404), ("status/403", 404), ("status/500", 502),
                                         ("status/503", 502), ("empty", 400)])
def test_upstream_failures(fetching, origin, path, status):
    response = fetching.get(url_for(f"http://{origin}/{path}"))
    assert response.status_code == status, response.text
    assert response.text.strip()


def test_upstream_timeout_is_504(fetching, origin):
    started = time.time()
    response = fetching.get(url_for(f"http://{origin}/slow/5"))
    assert response.status_code == 504
    assert time.time() - started < 4.5


def test_connection_refused_is_502(fetching):
    response = fetching.get(url_for(f"http://127.0.0.1:{free_port()}/a.jpg"))
    assert response.status_code == 502


def test_oversized_source_is_cut_off_while_streaming(fetching, origin):
    started = time.time()
    response = fetching.get(url_for(f"http://{origin}/endless"))
    assert response.status_code == 400 and "larger than" in response.text
    assert time.time() - started < 10
    assert fetching.rss_kib("VmRSS") < 400 * 1024
    assert fetching.get("/healthcheck").status_code == 200


@pytest.mark.parametrize("name", BAD)
def test_bad_corpus_files_through_the_http_loader(fetching, origin, name):
    response = fetching.get(url_for(f"http://{origin}/files/{name}"))
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)


def test_empty_allow_list_refuses_everything(origin):
    server = PinholeServer(loader="http", allowed_hosts="")
    try:
        response = server.get(url_for(f"http://{origin}/files/{PHOTOS[0]}"))
        assert response.status_code == 400
    finally:
        server.stop()
