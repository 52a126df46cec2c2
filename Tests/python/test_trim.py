"""Trim (spec §4.6) against real Thumbor 7.8.0 on generated images with uniform and noisy borders."""
import random

import pytest
from PIL import Image

from conftest import CORPUS, PHOTOS, image_size, mean_difference, servers_on, sign


@pytest.fixture(scope="module")
def trim_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("trim-images")
    photo = Image.open(CORPUS / PHOTOS[3]).convert("RGB").resize((400, 250))
    canvas = Image.new("RGB", (640, 400), (255, 255, 255))
    canvas.paste(photo, (37, 51))
    canvas.save(root / "white-border.png")
    canvas.save(root / "white-border.jpg", quality=90)
    # Top-left and bottom-right references differ: dark band on the right and bottom.
    two = canvas.copy()
    for x in range(560, 640):
        for y in range(400):
            two.putpixel((x, y), (10, 20, 30))
    for y in range(330, 400):
        for x in range(640):
            two.putpixel((x, y), (10, 20, 30))
    two.save(root / "two-borders.png")
    # A noisy border: only a tolerance finds the photo.
    rng = random.Random(5)
    noisy = Image.new("RGB", (500, 300))
    noisy.putdata([tuple(128 + rng.randint(-6, 6) for _ in range(3)) for _ in range(500 * 300)])
    noisy.paste(photo.resize((300, 180)), (90, 70))
    noisy.save(root / "noisy-border.png")
    Image.new("RGB", (200, 100), (40, 90, 200)).save(root / "uniform.png")
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    rgba.paste(photo.resize((120, 80)).convert("RGBA"), (100, 60))
    rgba.save(root / "transparent-border.png")
    return root


@pytest.fixture(scope="module")
def servers(trim_root):
    with servers_on(trim_root) as pair:
        yield pair


@pytest.mark.parametrize("path", [
    "trim/white-border.png", "trim:top-left/white-border.png", "trim/300x200/white-border.png",
    "trim/fit-in/200x200/white-border.png", "trim/10x10:300x200/white-border.png", "trim:bottom-right/two-borders.png",
    "trim/two-borders.png", "trim:10/two-borders.png", "trim/noisy-border.png", "trim:top-left:20/noisy-border.png",
    "trim:top-left:15/fit-in/100x100/noisy-border.png", "trim/uniform.png", "trim:top-left:30/white-border.jpg",
    "trim/white-border.jpg", "trim/transparent-border.png", "trim:top-left:500/white-border.png",
])
def test_trim_matches_thumbor(servers, path):
    pinhole, thumbor = servers
    url = sign(path)
    ours, theirs = pinhole.get(url), thumbor.get(url)
    assert theirs.status_code == 200 and ours.status_code == 200, (ours.text, theirs.status_code)
    assert image_size(ours.content) == image_size(theirs.content)
    assert mean_difference(ours.content, theirs.content) < 6
