"""Output formats and Accept negotiation (spec §5.4), and /meta (spec §5.6) including JSONP."""
import io

import pytest
import requests
from PIL import Image

from conftest import PHOTOS, PinholeServer, image_format, image_size, sign

PHOTO = "photo-eveningglow-2560x1600.jpg"


@pytest.fixture(scope="module")
def negotiating():
    server = PinholeServer(auto_webp="true", auto_avif="true", result_cache="true")
    yield server
    server.stop()


@pytest.mark.parametrize("accept,expected", [
    ("image/avif,image/webp,*/*", "WEBP"),              # both listed: WebP first, as Thumbor orders them
    ("image/avif,*/*;q=0.8", "AVIF"),
    ("image/webp;q=0,image/avif;q=0.5", "AVIF"),        # q=0 means no (Thumbor's substring test says yes)
    ("image/webp;q=0", "JPEG"),
    ("*/*", "JPEG"),                                    # wildcards never switch formats
    ("image/*", "JPEG"),
    (None, "JPEG"),
])
def test_accept_chooses_the_format(negotiating, accept, expected):
    headers = {"Accept": accept} if accept else {}
    response = negotiating.get(sign(f"fit-in/300x300/{PHOTO}"), headers=headers)
    assert response.status_code == 200
    assert image_format(response.content) == expected
    assert response.headers["Content-Type"] == "image/" + expected.lower()
    assert response.headers["Vary"] == "Accept"
    assert image_size(response.content) == (300, 188)


def test_variants_are_cached_apart(negotiating):
    path = sign(f"fit-in/222x222/{PHOTOS[1]}")
    first_webp = negotiating.get(path, headers={"Accept": "image/webp"})
    first_jpeg = negotiating.get(path, headers={"Accept": "*/*"})
    again_webp = negotiating.get(path, headers={"Accept": "image/webp"})
    again_jpeg = negotiating.get(path)
    assert first_webp.headers["X-Pinhole-Cache"] == "miss" and first_jpeg.headers["X-Pinhole-Cache"] == "miss"
    assert again_webp.headers["X-Pinhole-Cache"] == "hit" and again_jpeg.headers["X-Pinhole-Cache"] == "hit"
    assert again_webp.content == first_webp.content and image_format(again_webp.content) == "WEBP"
    assert again_jpeg.content == first_jpeg.content and image_format(again_jpeg.content) == "JPEG"
    assert again_webp.headers["Vary"] == again_jpeg.headers["Vary"] == "Accept"


def test_no_vary_when_negotiation_cannot_change_the_answer(negotiating, pinhole):
    # A format() filter fixes the format; /meta is JSON; without auto_* nothing depends on Accept.
    fixed = negotiating.get(sign(f"100x100/filters:format(png)/{PHOTO}"), headers={"Accept": "image/webp"})
    assert image_format(fixed.content) == "PNG" and "Vary" not in fixed.headers
    meta = negotiating.get(sign(f"meta/100x100/{PHOTO}"), headers={"Accept": "image/webp"})
    assert meta.headers["Content-Type"].startswith("application/json") and "Vary" not in meta.headers
    plain = pinhole.get(sign(f"100x100/{PHOTO}"), headers={"Accept": "image/webp"})
    assert image_format(plain.content) == "JPEG" and "Vary" not in plain.headers


def test_negotiation_agrees_with_thumbor_auto_webp():
    from conftest import ThumborServer
    thumbor = ThumborServer(extra="AUTO_WEBP = True\n")
    server = PinholeServer(auto_webp="true")
    try:
        for accept in ["image/webp,*/*", "*/*"]:
            path = sign(f"fit-in/200x200/{PHOTO}")
            ours = server.get(path, headers={"Accept": accept})
            theirs = thumbor.get(path, headers={"Accept": accept})
            assert image_format(ours.content) == image_format(theirs.content), accept
            assert image_size(ours.content) == image_size(theirs.content)
            assert ours.headers.get("Vary") == theirs.headers.get("Vary") == "Accept"
    finally:
        thumbor.stop()
        server.stop()


def test_auto_png_to_jpg():
    server = PinholeServer(auto_png_to_jpg="true")
    try:
        opaque = server.get(sign("fit-in/200x200/format-rgb-1280x800.png"))
        transparent = server.get(sign("fit-in/200x200/format-rgba-1280x800.png"))
        forced = server.get(sign("fit-in/200x200/filters:format(png)/format-rgb-1280x800.png"))
        assert image_format(opaque.content) == "JPEG"
        assert image_format(transparent.content) == "PNG"      # it has transparent pixels
        assert image_format(forced.content) == "PNG"
    finally:
        server.stop()


def test_jpeg_xl_output(pinhole):
    response = pinhole.get(sign(f"fit-in/160x160/filters:format(jxl)/{PHOTO}"))
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jxl"
    body = response.content
    assert body[:2] == b"\xff\x0a" or body[:12] == b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a"   # codestream or container


@pytest.mark.parametrize("fmt", ["webp", "avif", "png", "gif", "jpeg"])
def test_every_output_format_decodes(pinhole, fmt):
    response = pinhole.get(sign(f"fit-in/160x160/filters:format({fmt})/format-rgba-1280x800.png"))
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as image:
        image.load()
        assert image.size == (160, 100)
        if fmt in ("webp", "avif", "png"):
            assert "A" in image.mode                      # alpha kept where the format carries it
        if fmt == "jpeg":
            assert image.mode in ("RGB", "L")              # flattened


# /meta

def test_meta_matches_thumbor_but_reports_the_true_source_size(pinhole, thumbor):
    for path in [f"meta/300x200/{PHOTO}", f"meta/fit-in/300x300/{PHOTO}", f"meta/-300x200/left/{PHOTOS[2]}",
                 f"meta/100x100:900x700/200x0/{PHOTO}", "meta/300x200/exif-orientation6-640x400.jpg"]:
        ours = pinhole.get(sign(path)).json()["thumbor"]
        theirs = thumbor.get(sign(path)).json()["thumbor"]
        assert ours["operations"] == theirs["operations"], path
        assert ours["target"] == theirs["target"], path
        assert ours["focal_points"] == theirs["focal_points"], path
        assert ours["source"]["url"] == theirs["source"]["url"]
    ours = pinhole.get(sign(f"meta/300x200/{PHOTO}")).json()["thumbor"]
    assert (ours["source"]["width"], ours["source"]["height"]) == (2560, 1600)   # Thumbor says 300x200 (its bug)
    rotated = pinhole.get(sign("meta/300x200/exif-orientation6-640x400.jpg")).json()["thumbor"]
    assert (rotated["source"]["width"], rotated["source"]["height"]) == (640, 400)   # as displayed


def test_meta_jsonp(pinhole):
    response = pinhole.get(sign(f"meta/300x200/{PHOTO}") + "?callback=app.onMeta")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.text.startswith("app.onMeta({") and response.text.endswith("});")
    plain = pinhole.get(sign(f"meta/300x200/{PHOTO}"))
    assert response.text == f"app.onMeta({plain.text});"
    for bad in ["alert(1)//", "a b", "1abc", "x;y", "%3Cscript%3E", ""]:
        rejected = pinhole.get(sign(f"meta/300x200/{PHOTO}") + "?callback=" + bad)
        assert rejected.status_code == 400, bad
        assert "callback" in rejected.text


def test_meta_callback_name_from_configuration():
    server = PinholeServer(meta_callback_name="thumbor_meta")
    try:
        response = server.get(sign(f"meta/100x100/{PHOTO}"))
        assert response.text.startswith("thumbor_meta({") and response.headers["Content-Type"].startswith("text/javascript")
    finally:
        server.stop()


# Animation

def frames_of(body):
    with Image.open(io.BytesIO(body)) as image:
        count = getattr(image, "n_frames", 1)
        durations = []
        for i in range(count):
            image.seek(i)
            durations.append(image.info.get("duration"))
        return image.format, image.size, count, durations, image.info.get("loop")


def test_animated_gif_stays_animated_like_thumbor(pinhole, thumbor):
    for path in ["fit-in/160x160/anim-320x200.gif", "100x100/anim-320x200.gif", "-120x80/filters:grayscale()/anim-320x200.gif"]:
        ours, theirs = pinhole.get(sign(path)), thumbor.get(sign(path))
        assert ours.status_code == theirs.status_code == 200, (path, ours.text[:100])
        mine, reference = frames_of(ours.content), frames_of(theirs.content)
        assert mine[:3] == reference[:3], (path, mine, reference)   # format, size, frame count
        assert mine[3] == [200, 200, 200]   # delays kept (Thumbor 7.8.0's PIL engine drops them: README)
    # Frames differ from each other (not one frame repeated).
    with Image.open(io.BytesIO(pinhole.get(sign("fit-in/160x160/anim-320x200.gif")).content)) as image:
        image.seek(0); first = image.convert("RGB").tobytes()
        image.seek(2); last = image.convert("RGB").tobytes()
        assert first != last


def test_animated_gif_to_webp_keeps_animation(pinhole):
    body = pinhole.get(sign("fit-in/160x160/filters:format(webp)/anim-320x200.gif")).content
    fmt, size, count, _, _ = frames_of(body)
    assert (fmt, size, count) == ("WEBP", (160, 100), 3)


def test_first_frame_when_configured_or_for_jpeg(pinhole):
    jpeg = pinhole.get(sign("fit-in/160x160/filters:format(jpeg)/anim-320x200.gif")).content
    assert frames_of(jpeg)[:3] == ("JPEG", (160, 100), 1)
    server = PinholeServer(keep_animation="false")
    try:
        single = server.get(sign("fit-in/160x160/anim-320x200.gif")).content
        assert frames_of(single)[:3] == ("GIF", (160, 100), 1)
    finally:
        server.stop()
