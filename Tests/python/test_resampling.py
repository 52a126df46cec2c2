"""Resampling: Pinhole resizes 8-bit images with Thumbor's own arithmetic (Pillow's LANCZOS), so where
both start from the same pixels (PNG, no shrink-on-load) the thumbnails are identical to Thumbor 7.8.0's,
pixel for pixel. Stronger reductions (below ½) go through libvips and only look alike."""
import io

import pytest
from PIL import Image, ImageChops

from conftest import CORPUS, mean_difference, servers_on, sign

SOURCE = "format-rgb-1280x800.png"


def pixels(body):
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.mark.parametrize("option", [
    "800x500",            # plain reduction (0.625)
    "1000x400",           # crop, then reduce
    "700x0",              # proportional height
    "1280x640",           # crop only: no resampling at all
    "900x800",            # one axis kept, the other cropped
])
def test_identical_to_thumbor(pinhole, thumbor, option):
    path = sign(f"{option}/filters:format(png)/{SOURCE}")
    ours, theirs = pinhole.get(path), thumbor.get(path)
    assert ours.status_code == theirs.status_code == 200
    a, b = pixels(ours.content), pixels(theirs.content)
    assert a.size == b.size and a.mode == b.mode == "RGB"
    assert ImageChops.difference(a, b).getbbox() is None, f"{option}: pixels differ from Thumbor's"


def test_identical_to_pillow_when_enlarging(pinhole):
    # upscale() makes Thumbor enlarge too; Pillow's LANCZOS with an unscaled kernel.
    ours = pixels(pinhole.get(sign(f"1600x1000/filters:upscale():format(png)/{SOURCE}")).content)
    reference = Image.open(CORPUS / SOURCE).convert("RGB").resize((1600, 1000), Image.LANCZOS)
    assert ours.size == (1600, 1000)
    assert ImageChops.difference(ours, reference).getbbox() is None


def test_grayscale_identical_to_thumbor(tmp_path):
    Image.open(CORPUS / SOURCE).convert("L").save(tmp_path / "gray.png")
    with servers_on(tmp_path) as (pinhole, thumbor):
        for option in ("640x400", "fit-in/999x999", "512x512"):
            path = sign(f"{option}/filters:format(png)/gray.png")
            ours, theirs = pinhole.get(path), thumbor.get(path)
            assert ours.status_code == theirs.status_code == 200
            a, b = pixels(ours.content).convert("L"), pixels(theirs.content).convert("L")
            assert a.size == b.size
            assert ImageChops.difference(a, b).getbbox() is None, option


def test_strong_reductions_still_look_alike(pinhole, thumbor):
    path = sign(f"300x200/filters:format(png)/{SOURCE}")
    ours, theirs = pinhole.get(path), thumbor.get(path)
    assert pixels(ours.content).size == pixels(theirs.content).size == (300, 200)
    assert mean_difference(ours.content, theirs.content) < 2


def test_tiny_and_extreme_sources_identical_to_thumbor(tmp_path):
    """Degenerate sizes and Pillow's pass order for very tall images."""
    import random
    rng = random.Random(5)
    # Pillow shrinks images over 100 times taller than wide vertically first (tall.png, edge.png).
    sources = {"one.png": (1, 1), "three.png": (3, 2), "tall.png": (2, 500), "wide.png": (500, 3),
               "edge.png": (3, 301), "hundred.png": (3, 300)}
    for name, size in sources.items():
        image = Image.new("RGB", size)
        image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
        image.save(tmp_path / name)
    cases = ["one.png:0x0", "one.png:7x5/filters:upscale()", "three.png:2x1", "three.png:9x6/filters:upscale()",
             "tall.png:1x300", "tall.png:0x260", "wide.png:260x0", "wide.png:300x2", "wide.png:fit-in/499x499",
             "edge.png:2x200", "edge.png:0x160", "hundred.png:2x200", "hundred.png:0x160"]
    with servers_on(tmp_path) as (pinhole, thumbor):
        differing = []
        for case in cases:
            name, option = case.split(":", 1)
            path = sign(f"{option}/filters:format(png)/{name}".replace("/filters:upscale()/filters:", "/filters:upscale():"))
            ours, theirs = pinhole.get(path), thumbor.get(path)
            assert ours.status_code == theirs.status_code == 200, case
            a, b = pixels(ours.content).convert("RGB"), pixels(theirs.content).convert("RGB")
            assert a.size == b.size, case
            if ImageChops.difference(a, b).getbbox() is not None:
                differing.append(case)
        assert differing == []
