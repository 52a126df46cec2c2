"""Golden images where Thumbor is no reference: smart crops (Thumbor has no detector) and colour
management (Thumbor copies profiles unconverted and cannot read EXR or 16-bit TIFF). The references in
Tests/golden/ were rendered once by Pinhole and reviewed by eye on 2026-11-29: the kite, the orange star
and the red leaf are inside their smart crops; the CMYK, 16-bit TIFF, RGBA PNG, palette PNG and
half-float EXR thumbnails all show photo-eveningglow's orange sky, blue water and brown boats.
Regenerate them only after reviewing the new pictures the same way."""
from pathlib import Path

import pytest

from conftest import mean_difference, sign

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

CASES = {
    "smart-kite-100x300.png": "100x300/smart/filters:format(png)/photo-kite-2560x1600.jpg",
    "smart-onestandsout-100x300.png": "100x300/smart/filters:format(png)/photo-onestandsout-2560x1600.jpg",
    "smart-fallenleaf-100x300.png": "100x300/smart/filters:format(png)/photo-fallenleaf-2560x1600.jpg",
    "colour-cmyk-200.png": "fit-in/200x200/filters:format(png)/cmyk-640x400.jpg",
    "colour-rgb16-200.png": "fit-in/200x200/filters:format(png)/format-rgb16-1280x800.tif",
    "colour-rgba-200.png": "fit-in/200x200/format-rgba-1280x800.png",
    "colour-palette-200.png": "fit-in/200x200/palette-640x400.png",
    "colour-exr-200.png": "fit-in/200x200/filters:format(png)/vfx-rgba-half-1280x800.exr",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_the_reviewed_golden_image(pinhole, name):
    response = pinhole.get(sign(CASES[name]))
    assert response.status_code == 200, response.text
    # Same code on the same libvips gives the same pixels; the margin allows a libvips or libjpeg
    # update to round differently, not a different crop or colour conversion (those move it by 10+).
    assert mean_difference(response.content, (GOLDEN / name).read_bytes()) < 1.5, name


def test_golden_colour_images_agree_with_each_other():
    """They were all made from one photo: any pair differs by little (the RGBA file's semi-transparent
    areas over white, and the palette's quantisation, account for the most)."""
    names = [n for n in CASES if n.startswith("colour-")]
    for a in names:
        for b in names:
            assert mean_difference((GOLDEN / a).read_bytes(), (GOLDEN / b).read_bytes()) < 8, (a, b)   # measured max 6.0; unrelated photos: 50+
