"""`smart` crops keep the subject. Thumbor without OpenCV detectors ignores `smart` (a centred crop);
Pinhole finds the subject (colour rarity by default, libvips' attention on request) and centres the
crop there. Subjects' bounding boxes were measured once by eye on the full-size photos (2560x1600)."""
import pytest

from conftest import PinholeServer, sign

# photo: (left, top, right, bottom) of the subject
SUBJECTS = {
    "photo-kite-2560x1600.jpg": (1645, 480, 1824, 653),          # the kite, right of centre
    "photo-onestandsout-2560x1600.jpg": (1568, 704, 1792, 896),  # the one orange star among green ones
    "photo-fallenleaf-2560x1600.jpg": (780, 260, 1120, 620),     # the red leaf's core, left of centre (blurred; whole leaf 520–1220 wide)
}


def crop_of(server, path):
    meta = server.get(sign("meta/" + path)).json()["thumbor"]
    crops = [op for op in meta["operations"] if op["type"] == "crop"]
    assert crops, meta
    return crops[0], meta["focal_points"]


@pytest.mark.parametrize("photo", sorted(SUBJECTS))
def test_smart_crop_keeps_the_subject(pinhole, photo):
    left, top, right, bottom = SUBJECTS[photo]
    crop, points = crop_of(pinhole, f"100x300/smart/{photo}")
    assert crop["left"] <= left and right <= crop["right"], (crop, SUBJECTS[photo])
    assert points and points[0]["origin"] == "detection"
    # Without smart the centred crop loses it: the test is not passing by luck.
    plain, _ = crop_of(pinhole, f"100x300/{photo}")
    assert not (plain["left"] <= left and right <= plain["right"])


def test_smart_landscape_crop_keeps_the_kite(pinhole):
    left, top, right, bottom = SUBJECTS["photo-kite-2560x1600.jpg"]
    crop, _ = crop_of(pinhole, "300x60/smart/photo-kite-2560x1600.jpg")
    assert crop["top"] <= top and bottom <= crop["bottom"], crop


def test_explicit_focal_point_outweighs_detection(pinhole):
    # focal() on the left edge (weight = its area) pulls the crop away from the detected kite (weight 1).
    crop, points = crop_of(pinhole, "100x300/smart/filters:focal(0x600:400x1000)/photo-kite-2560x1600.jpg")
    assert crop["left"] == 0
    assert [p["origin"] for p in points] == ["Explicit", "detection"]


def test_detector_none_is_thumbors_centred_crop():
    server = PinholeServer(smart_detector="none")
    try:
        crop, points = crop_of(server, "100x300/smart/photo-kite-2560x1600.jpg")
        assert points[0]["origin"] == "alignment"
        assert crop["left"] == (2560 - 533) // 2 or abs(crop["left"] - (2560 - 533) / 2) <= 1
    finally:
        server.stop()
