"""Golden images where Thumbor is no reference: smart crops (Thumbor has no detector) and colour
management (Thumbor copies profiles unconverted and cannot read EXR or 16-bit TIFF). The references in
Tests/golden/ were rendered once by Pinhole and reviewed by eye on 2026-11-29: the kite, the orange star
and the red leaf are inside their smart crops; the CMYK, 16-bit TIFF, RGBA PNG, palette PNG and
half-float EXR thumbnails all show photo-eveningglow's orange sky, blue water and brown boats.
Because Pinhole made them, each is also checked against an independent rendering by Pillow (its own
decoders, LittleCMS for profiles, LANCZOS), colour and alpha, and against its expected size.
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


def srgb(image):
    """RGB(A) pixels in sRGB: through the image's ICC profile when it has one (LittleCMS, as Pillow ships it)."""
    import io
    from PIL import ImageCms
    icc = image.info.get("icc_profile")
    mode = "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
    image = image.convert(mode)
    if icc:
        image = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                          renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode=mode)
    return image


def pillow_fit_in(path, box=200):
    """An independent reference: Pillow's own decode and LANCZOS resize of a source, as RGBA."""
    from PIL import Image
    with Image.open(path) as source:
        source.load()
        image = srgb(source).convert("RGBA")
    scale = min(box / image.width, box / image.height)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


def channel_means(a, b):
    """Mean absolute difference of the colour channels and of alpha, between two RGBA images of one size."""
    from PIL import ImageChops, ImageStat
    means = ImageStat.Stat(ImageChops.difference(a, b)).mean
    return sum(means[:3]) / 3, means[3]


# Golden → (the source Pillow reads for it, or the photo every derived file was made from, when Pillow
# cannot read the source; whether the golden carries the corpus' RGBA alpha), measured bounds below.
REFERENCES = {
    "colour-cmyk-200.png": ("cmyk-640x400.jpg", False),
    "colour-rgb16-200.png": ("photo-eveningglow-2560x1600.jpg", False),
    "colour-rgba-200.png": ("format-rgba-1280x800.png", True),
    "colour-palette-200.png": ("palette-640x400.png", False),
    "colour-exr-200.png": ("photo-eveningglow-2560x1600.jpg", True),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_colour_goldens_match_an_independent_rendering(name):
    """The goldens were made by Pinhole: an independent decoder and resampler (Pillow) must agree with
    them, colour and alpha, or the goldens themselves are wrong."""
    import io
    from PIL import Image
    from conftest import CORPUS
    source, has_alpha = REFERENCES[name]
    golden = Image.open(GOLDEN / name).convert("RGBA")
    assert golden.size == (200, 125), name
    reference = pillow_fit_in(CORPUS / source)
    assert reference.size == golden.size
    alpha_source = pillow_fit_in(CORPUS / "format-rgba-1280x800.png") if has_alpha else reference
    _, alpha = channel_means(golden, alpha_source)
    assert alpha < 2, f"{name}: alpha differs by {alpha:.2f}"
    # Colour where the golden is opaque (a transparent pixel's colour is anyone's guess).
    mask = golden.getchannel("A").point(lambda a: 255 if a == 255 else 0)
    opaque_golden, opaque_reference = Image.new("RGBA", golden.size), Image.new("RGBA", golden.size)
    opaque_golden.paste(golden, mask=mask)
    opaque_reference.paste(reference.convert("RGB").convert("RGBA"), mask=mask)
    colour, _ = channel_means(opaque_golden, opaque_reference)
    assert colour < 5, f"{name}: colour differs from Pillow's rendering by {colour:.2f}"


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith("smart-")))
def test_smart_goldens_are_the_crop_meta_declares(pinhole, name):
    """Each smart golden is its source cropped where /meta says and resized (checked with Pillow), and
    100x300."""
    import io
    import json
    from PIL import Image
    from conftest import CORPUS
    golden = Image.open(GOLDEN / name).convert("RGB")
    assert golden.size == (100, 300)
    path = CASES[name]
    meta = json.loads(pinhole.get(sign("meta/" + path)).text)["thumbor"]
    source = srgb(Image.open(CORPUS / path.split("/")[-1]))
    crop = next(op for op in meta["operations"] if op["type"] == "crop")
    resize = next(op for op in meta["operations"] if op["type"] == "resize")
    def reference(shift):
        region = source.crop((crop["left"] + shift, crop["top"], crop["right"] + shift, crop["bottom"]))
        buffer = io.BytesIO()
        region.resize((int(resize["width"]), int(resize["height"])), Image.LANCZOS).save(buffer, "PNG")
        return buffer.getvalue()
    golden_bytes = (GOLDEN / name).read_bytes()
    # Measured: 0.4-4.4 from the declared crop (fine detail resamples differently: Pinhole decodes the
    # JPEG at a DCT scale), 2.5-22.7 from the same crop 10 source pixels to the right.
    aligned, shifted = mean_difference(golden_bytes, reference(0), size=None), mean_difference(golden_bytes, reference(10), size=None)
    assert aligned < 5 and aligned < 0.3 * shifted, (name, aligned, shifted)
