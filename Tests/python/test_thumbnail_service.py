"""Integration tests: a real `pinhole serve` on loopback, real corpus files, URLs signed by libthumbor."""
import re
import urllib.parse
from pathlib import Path

import pytest
import requests
from libthumbor import CryptoURL

from conftest import BAD, BIG_PHOTO, CORPUS, KEY, PHOTOS, PinholeServer, image_format, image_size, sign

crypto = CryptoURL(key=KEY)

# Every format in the corpus libvips reads, with the format Pinhole answers in.
READABLE = {
    **{p: "JPEG" for p in PHOTOS}, BIG_PHOTO: "JPEG",
    "exif-orientation6-640x400.jpg": "JPEG", "cmyk-640x400.jpg": "JPEG", "format-gray-1280x800.jpg": "JPEG",
    "format-rgb-1280x800.png": "PNG", "format-rgba-1280x800.png": "PNG", "palette-640x400.png": "PNG",
    "format-rgb16-1280x800.tif": "PNG", "format-1280x800.webp": "WEBP", "format-1280x800.avif": "AVIF",
    "format-1280x800.jxl": "JPEG", "format-640x400.hdr": "PNG", "anim-320x200.gif": "GIF",
    "vector-800x500.svg": "PNG", "doc-1page-640x400.pdf": "PNG", "vfx-1024x640.psd": "JPEG",
    "vfx-rgb10-1024x640.dpx": "JPEG", "vfx-rgba-half-1280x800.exr": "PNG",
}


def displayed_size(name):
    """The displayed size a corpus file's name states (WxH; the EXIF-rotated file displays as named)."""
    width, height = re.search(r"(\d+)x(\d+)", name).groups()
    return int(width), int(height)


def fit_in(size, box):
    """Thumbor's fit-in size for a source larger than the box (spec §4): the long side to the box, the
    other rounded half up."""
    w, h = size
    if w / box >= h / box:
        return box, int(h * box / w + 0.5)
    return int(w * box / h + 0.5), box


# Sources with an alpha channel: the thumbnail's alpha must be the source's, scaled down.
WITH_ALPHA = {"format-rgba-1280x800.png", "vfx-rgba-half-1280x800.exr"}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_signed_fit_in_300_of_every_readable_file(pinhole, name):
    url = crypto.generate(width=300, height=300, fit_in=True, image_url=urllib.parse.quote(name))
    response = pinhole.get(url)
    assert response.status_code == 200, response.text
    assert image_size(response.content) == fit_in(displayed_size(name), 300)
    if name in WITH_ALPHA:
        # The corpus' RGBA files share one alpha (made from the same RGBA original): compare by value.
        from PIL import Image
        import io
        from conftest import alpha_difference
        reference = Image.open(CORPUS / "format-rgba-1280x800.png").resize((300, 188), Image.LANCZOS)
        buffer = io.BytesIO()
        reference.save(buffer, "PNG")
        assert alpha_difference(response.content, buffer.getvalue(), size=100) < 2, name
    if READABLE[name] != "AVIF":
        assert image_format(response.content) == READABLE[name]
    assert response.headers["Content-Type"] == {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                                                "AVIF": "image/avif", "GIF": "image/gif"}[READABLE[name]]


def test_exact_sizes_and_flips(pinhole):
    for options, size in [
        (dict(width=300, height=200), (300, 200)), (dict(width=300, height=200, smart=True), (300, 200)),
        (dict(width=200), (200, 125)), (dict(height=100, flip=True, flop=True), (160, 100)),
        (dict(width=500, height=500, full_fit_in=True), (800, 500)), (dict(width=400, height=300, adaptive_fit_in=True), (400, 250)),
        (dict(crop=((100, 100), (900, 600)), width=100, height=100), (100, 100)),
    ]:
        response = pinhole.get(crypto.generate(image_url=PHOTOS[0], **options))
        assert response.status_code == 200, (options, response.text)
        assert image_size(response.content) == size, options


def test_exif_orientation_is_applied(pinhole):
    """The file stores the photo turned a quarter (EXIF 6): upright, it is photo-eveningglow again, and
    any other turn or mirror is far from it."""
    import io
    from PIL import Image
    from conftest import mean_difference
    response = pinhole.get(crypto.generate(width=320, image_url="exif-orientation6-640x400.jpg"))
    assert response.status_code == 200
    assert image_size(response.content) == (320, 200)
    upright = pinhole.get(crypto.generate(width=320, image_url="photo-eveningglow-2560x1600.jpg")).content
    assert mean_difference(response.content, upright) < 4
    for wrong in [Image.Transpose.ROTATE_180, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM]:
        buffer = io.BytesIO()
        Image.open(io.BytesIO(upright)).transpose(wrong).save(buffer, "PNG")
        assert mean_difference(response.content, buffer.getvalue()) > 4 * mean_difference(response.content, upright) + 5


def test_success_headers(pinhole):
    response = pinhole.get(crypto.generate(width=120, height=80, image_url=PHOTOS[1]))
    assert response.status_code == 200
    headers = response.headers
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Cache-Control"] == "max-age=86400,public"
    assert "Expires" in headers and headers["Expires"].endswith("GMT")
    assert re.fullmatch(r'"[0-9a-f]{40}"', headers["ETag"])
    assert int(headers["Content-Length"]) == len(response.content)
    assert headers["Server"] == "Pinhole"
    assert response.content[:2] == b"\xff\xd8"


def test_if_none_match_gives_304_and_head_has_no_body(pinhole):
    url = crypto.generate(width=120, height=80, image_url=PHOTOS[2])
    first = pinhole.get(url)
    etag = first.headers["ETag"]
    again = pinhole.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert pinhole.get(url, headers={"If-None-Match": "W/" + etag}).status_code == 304
    assert pinhole.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = requests.head(pinhole.base + url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == first.headers["Content-Length"]
    assert head.headers["ETag"] == etag


def test_healthcheck(pinhole):
    for path in ["/healthcheck", "/healthcheck/"]:
        response = pinhole.get(path)
        assert response.status_code == 200 and response.text == "WORKING"
    assert requests.head(pinhole.base + "/healthcheck", timeout=5).status_code == 200


@pytest.mark.parametrize("path,status,message", [
    ("/fit-in/300x300/" + PHOTOS[0], 400, "signature does not match"),     # first segment is taken as the hash
    ("/" + PHOTOS[0], 400, "neither a signature nor 'unsafe'"),
    ("/unsafe/fit-in/300x300/" + PHOTOS[0], 400, "unsafe URLs are disabled"),
    ("/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/fit-in/300x300/" + PHOTOS[0], 400, "signature does not match"),
])
def test_signature_failures(pinhole, path, status, message):
    response = pinhole.get(path)
    assert response.status_code == status
    assert message in response.text
    assert response.headers["Content-Type"].startswith("text/plain")


def test_signature_variants(pinhole):
    url = crypto.generate(width=100, height=100, image_url=PHOTOS[0])
    signature, rest = url[1:].split("/", 1)
    assert pinhole.get(f"/{signature[:-1]}%3D/{rest}").status_code == 200          # %3D padding accepted
    assert pinhole.get(f"/{signature[:-1]}/{rest}").status_code == 400             # padding required
    assert pinhole.get(f"/{signature}/{rest}?cache-buster=1").status_code == 200   # query not signed
    assert pinhole.get(f"/{signature}/{rest.replace('100x100', '101x100')}").status_code == 400


@pytest.mark.parametrize("path,status", [
    ("fit-in/300x300/%FF.jpg", 400),                       # invalid UTF-8 after decoding
    ("FIT-IN/300X300/" + PHOTOS[0], 404),                  # wrong case: part of the image, which does not exist
    ("99999999999x1/" + PHOTOS[0], 400),                   # output over the pixel limit
    ("99999999999999999999999x1/" + PHOTOS[0], 400),
    ("0xorig/" + PHOTOS[0], 400),                          # Thumbor 7.8.0: 500
    ("300x200/filters:nosuchfilter(1):quality(x)/" + PHOTOS[0], 200),   # unknown / malformed filters are skipped
    ("300x200/nosuchfile.jpg", 404),
    ("300x200/../../etc/passwd", 404),
    ("300x200/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 404),
])
def test_bad_urls(pinhole, path, status):
    code, body = pinhole.raw_get(sign(path))
    assert code == status, body
    if status != 200:
        assert body.strip(), "errors carry a short message"


def test_methods_other_than_get_and_head(pinhole):
    response = requests.post(pinhole.base + crypto.generate(width=10, image_url=PHOTOS[0]), timeout=10)
    assert response.status_code == 405


@pytest.mark.parametrize("name", BAD)
def test_bad_corpus_files_through_the_file_loader(pinhole, name):
    response = pinhole.get(sign("fit-in/300x300/" + name))
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    assert response.text.strip()
    assert pinhole.get("/healthcheck").status_code == 200


def test_memory_stays_bounded_over_bad_files(pinhole):
    for _ in range(3):
        for name in BAD:
            pinhole.get(sign("fit-in/300x300/" + name))
    # The 900-megapixel bomb would need ~2.7 GB decoded; the header check refuses it first.
    assert pinhole.rss_kib("VmHWM") < 400 * 1024


def test_errors_are_logged_with_the_path(pinhole):
    pinhole.get(sign("fit-in/300x300/bad/garbage.png"))
    assert "bad/garbage.png" in pinhole.logs()


def test_unsafe_when_enabled():
    server = PinholeServer(allow_unsafe="true")
    try:
        assert server.get("/unsafe/fit-in/64x64/" + PHOTOS[0]).status_code == 200
    finally:
        server.stop()


def test_key_rotation():
    server = PinholeServer(security_keys="new-key," + KEY)
    try:
        assert server.get(crypto.generate(width=64, image_url=PHOTOS[0])).status_code == 200
        assert server.get(CryptoURL(key="new-key").generate(width=64, image_url=PHOTOS[0])).status_code == 200
        assert server.get(CryptoURL(key="other").generate(width=64, image_url=PHOTOS[0])).status_code == 400
    finally:
        server.stop()


def test_bad_configuration_stops_startup_naming_the_key(tmp_path):
    import os
    import subprocess
    from conftest import BINARY
    env = dict(os.environ, PINHOLE_THUMBNAILS_PORT="not-a-port")
    result = subprocess.run([BINARY, "serve"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode != 0
    assert "thumbnails.port" in result.stderr


def test_example_config_serves_every_readable_file(tmp_path):
    """`pinhole serve --config config/pinhole.example.yaml` as shipped (its ./data/images pointed at the
    corpus, its port moved off 8888): the printed development key signs a fit-in/300x300 of every file."""
    import os
    import re as regex
    import subprocess
    from conftest import BINARY, REPO, free_port, wait_for
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "images").symlink_to(CORPUS)
    port = free_port()
    log = tmp_path / "log.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINHOLE_")}
    env["PINHOLE_THUMBNAILS_PORT"] = str(port)
    env["PINHOLE_FILES_PORT"] = str(free_port())
    with open(log, "w") as out:
        process = subprocess.Popen([BINARY, "serve", "--config", str(REPO / "config" / "pinhole.example.yaml")],
                                   cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthcheck", process)
        key = regex.search(r"development key for this run: (\S+)", log.read_text()).group(1)
        client = CryptoURL(key=key)
        for name, expected in sorted(READABLE.items()):
            url = client.generate(width=300, height=300, fit_in=True, image_url=name)
            response = requests.get(f"http://127.0.0.1:{port}{url}", timeout=60)
            assert response.status_code == 200, (name, response.text)
            width, height = image_size(response.content)
            assert max(width, height) <= 300 and (width == 300 or height == 300 or name.startswith("anim")), name
        assert requests.get(f"http://127.0.0.1:{port}/unsafe/fit-in/300x300/{PHOTOS[0]}", timeout=30).status_code == 400
    finally:
        process.terminate()
        process.wait(10)


def test_serve_runs_with_huge_pages_for_large_allocations(pinhole):
    # `serve` executes itself again with glibc's hugetlb tunable (large decoder buffers on transparent
    # huge pages); same process id, and an operator's own setting is kept.
    environment = Path(f"/proc/{pinhole.process.pid}/environ").read_bytes().split(b"\0")
    assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environment
    server = PinholeServer()
    try:
        server.stop()
        server.env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=0"
        server.start()
        environment = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=0" in environment
        assert server.get("/healthcheck").status_code == 200
    finally:
        server.stop()


def test_mutated_progressive_jpegs_are_4xx_or_rendered_never_5xx(tmp_path):
    """Pinhole's DC-only decoder reads untrusted bytes: 120 progressive 4:4:4 and grey JPEGs with flipped
    bytes, overwritten runs and truncations each render or get a 4xx, and the service keeps serving."""
    import io
    import random
    from PIL import Image
    photo = Image.open(CORPUS / "photo-kite-2560x1600.jpg").convert("RGB").crop((0, 0, 800, 480))
    sources = []
    for image, options in [(photo, {"subsampling": 0, "restart_marker_blocks": 5}), (photo.convert("L"), {})]:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90, progressive=True, **options)
        sources.append(buffer.getvalue())
    rng = random.Random(11)
    server = PinholeServer(file_root=str(tmp_path))
    try:
        statuses = set()
        for i in range(120):
            data = bytearray(sources[i % 2])
            kind = i % 3
            if kind == 0:
                for _ in range(rng.randrange(1, 20)):
                    data[rng.randrange(2, len(data))] = rng.randrange(256)
            elif kind == 1:
                data = data[:rng.randrange(2, len(data))]
            else:
                at = rng.randrange(2, 2000)
                data[at:at + rng.randrange(1, 40)] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            (tmp_path / f"m{i}.jpg").write_bytes(bytes(data))
            response = server.get(sign(f"fit-in/100x100/m{i}.jpg"))
            assert response.status_code == 200 or 400 <= response.status_code < 500, (i, response.status_code, response.text)
            statuses.add(response.status_code)
        assert 200 in statuses and any(400 <= s < 500 for s in statuses)
        assert server.get("/healthcheck").status_code == 200 and server.process.poll() is None
    finally:
        server.stop()
