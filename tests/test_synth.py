"""The data engine's labels are correct by construction."""
import numpy as np
import pytest

from cribsight.data.occluders import FAMILIES, Occluder, TextureBank
from cribsight.data.parts import PART_CLASS_NAMES, part_boxes, yolo_lines
from cribsight.data.sample import EXTERNAL, OUTSIDE, SELF, VISIBLE, FaceSample
from cribsight.data.synth import SynthConfig, face_geometry, synthesize

PARTS = ("eye_left", "eye_right", "nose", "mouth")


@pytest.fixture(scope="module")
def face(analyzer, portrait):
    f = analyzer.analyze_image(portrait).faces[0]
    return FaceSample(image_array=portrait, landmarks=np.asarray(f.landmarks.xy, np.float32),
                      pose=np.zeros(3, np.float32), eyes_open=1,
                      parts={p: {"occluded": 0, "covered": 0} for p in PARTS})


@pytest.fixture(scope="module")
def bank():
    return TextureBank(0, n=10)


def _rect_over(points: slice, pad: float = 1.5):
    def draw(lm, S):
        p = lm[points]
        x1, y1 = np.floor(p.min(0) - pad).astype(int)
        x2, y2 = np.ceil(p.max(0) + pad).astype(int)
        a = np.zeros((S, S), np.float32)
        a[max(0, y1):y2 + 1, max(0, x1):x2 + 1] = 1.0
        return Occluder("rect", a, np.zeros((S, S, 3), np.float32), np.ones((S, S), np.float32))
    return draw


def _clean(face, bank, **kw):
    return synthesize(face, np.random.default_rng(0), SynthConfig(), bank, angle=kw.pop("angle", 0.0),
                      flip=kw.pop("flip", False), camera_effects=False, **kw)


def test_rectangle_over_the_mouth(face, bank):
    r = _clean(face, bank, occluder=_rect_over(slice(48, 68)))
    parts = dict(zip(PARTS, r["parts"].tolist()))
    assert parts["mouth"] == [1, 1]
    assert parts["nose"] == [0, 0] and parts["eye_left"] == [0, 0] and parts["eye_right"] == [0, 0]
    vis = r["visibility"]
    assert np.all(vis[48:68] == EXTERNAL)
    others = np.r_[0:48]
    # jaw points just beside the mouth box may fall under the padded rectangle; the rest are visible
    assert np.all(vis[17:48] == VISIBLE) and (vis[others] == VISIBLE).mean() > 0.9
    assert r["cover_fraction"][3] == pytest.approx(1.0)
    assert r["mask"][int(r["landmarks"][57, 1]), int(r["landmarks"][57, 0])] == 1


def test_no_occluder_means_nothing_covered(face, bank):
    r = _clean(face, bank, family="none")
    assert r["parts"].sum() == 0 and np.all(r["visibility"] == VISIBLE) and r["mask"].sum() == 0
    assert r["eyes_open"] == 1


def test_flip_swaps_eye_labels_and_visibility(face, bank):
    src = face.with_(visibility=np.where(np.isin(np.arange(68), range(36, 42)), EXTERNAL, VISIBLE).astype(np.int8),
                     parts={**face.parts, "eye_right": {"occluded": 1, "covered": 1}})
    a = _clean(src, bank, family="none", flip=False)
    b = _clean(src, bank, family="none", flip=True)
    assert dict(zip(PARTS, a["parts"].tolist()))["eye_right"] == [1, 1]
    assert dict(zip(PARTS, a["parts"].tolist()))["eye_left"] == [0, 0]
    assert dict(zip(PARTS, b["parts"].tolist()))["eye_left"] == [1, 1]
    assert dict(zip(PARTS, b["parts"].tolist()))["eye_right"] == [0, 0]
    assert np.all(b["visibility"][42:48] == EXTERNAL) and np.all(b["visibility"][36:42] == VISIBLE)
    # the flipped face is a mirror image: subject's right eye (36-41) stays on the image left
    assert b["landmarks"][36:42, 0].mean() < b["landmarks"][42:48, 0].mean()
    S = a["image"].shape[1]
    from cribsight.schema import IBUG68_FLIP

    assert np.allclose(b["landmarks"][:, 0], (S - 1 - a["landmarks"][:, 0])[list(IBUG68_FLIP)], atol=1e-4)


def test_flip_negates_yaw_and_roll(face, bank):
    src = face.with_(pose=np.array([20.0, 5.0, 10.0], np.float32))
    b = _clean(src, bank, family="none", flip=True)
    assert np.allclose(b["pose"], [-20.0, 5.0, -10.0])


@pytest.mark.parametrize("angle", [90.0, -90.0, 180.0])
def test_rotation_keeps_image_and_landmarks_aligned(face, bank, angle):
    # paint a distinct colour at every landmark of the source, then check it is under each moved landmark
    img = np.full_like(face.image, 128)
    lm = face.landmarks
    colours = np.stack([np.arange(68) * 3 + 20, 255 - np.arange(68) * 3, np.full(68, 77)], 1).astype(np.uint8)
    for (x, y), c in zip(lm, colours):
        xi, yi = int(round(x)), int(round(y))
        img[yi - 1:yi + 2, xi - 1:xi + 2] = c
    src = face.with_(image_array=img)
    r = synthesize(src, np.random.default_rng(1), SynthConfig(size=320, margin=1.6), bank, angle=angle, flip=False,
                   family="none", camera_effects=False)
    got = r["image"][np.round(r["landmarks"][:, 1]).astype(int), np.round(r["landmarks"][:, 0]).astype(int)]
    # points whose painted squares overlap a neighbour's are not comparable
    d = np.linalg.norm(lm[:, None] - lm[None], axis=-1) + np.eye(68) * 1e9
    isolated = d.min(1) >= 4
    assert isolated.sum() > 40
    assert np.abs(got.astype(int) - colours.astype(int))[isolated].max() <= 12
    assert r["pose"][2] == pytest.approx((angle + 180) % 360 - 180)


def test_real_mask_region_follows_a_rotation(face, bank):
    src = face.with_(extra={"class": "with_mask"}, parts={**face.parts, "nose": {"occluded": 1, "covered": 1},
                                                          "mouth": {"occluded": 1, "covered": 1}})
    r = _clean(src, bank, family="none", angle=90.0)
    parts = dict(zip(PARTS, r["parts"].tolist()))
    assert parts["nose"] == [1, 1] and parts["mouth"] == [1, 1] and parts["eye_left"] == [0, 0]
    assert np.all(r["visibility"][48:68] == EXTERNAL) and np.all(r["visibility"][36:48] == VISIBLE)


def test_self_occlusion_at_large_yaw_is_occluded_not_covered(face, bank):
    g = face_geometry()
    assert not g.self_occluded(0, 0, 0)[list(range(17, 68))].any()
    src = face.with_(pose=np.array([80.0, 0.0, 0.0], np.float32))
    r = _clean(src, bank, family="none")
    parts = dict(zip(PARTS, r["parts"].tolist()))
    # yaw > 0 turns the face to the image left: the subject's right eye (36-41) goes to the far side
    assert parts["eye_right"] == [1, 0] and parts["eye_left"] == [0, 0]
    assert (r["visibility"][36:42] == SELF).sum() >= 3


def test_points_outside_the_image_are_occluded_not_covered(face, bank):
    img = face.image[:136].copy()  # cut the image between the nose (y <= 134) and the mouth (y >= 137)
    r = _clean(face.with_(image_array=img), bank, family="none")
    assert np.all(r["visibility"][48:68] == OUTSIDE)
    assert dict(zip(PARTS, r["parts"].tolist()))["mouth"] == [1, 0]


@pytest.mark.parametrize("family", [f for f in FAMILIES])
def test_every_family_draws_and_labels_consistently(face, bank, family):
    r = synthesize(face, np.random.default_rng(7), SynthConfig(), bank, family=family)
    assert r["image"].shape == (160, 160, 3) and r["mask"].shape == (160, 160)
    # a point is EXTERNAL exactly when the occluder mask is set under it (inside the crop)
    lm = np.round(r["landmarks"]).astype(int)
    inside = (lm >= 0).all(1) & (lm < 160).all(1)
    under = np.zeros(68, bool)
    under[inside] = r["mask"][lm[inside, 1], lm[inside, 0]] > 0
    assert np.array_equal(r["visibility"][inside] == EXTERNAL, under[inside])
    # covered implies occluded
    assert np.all(r["parts"][:, 1] <= r["parts"][:, 0])


def test_determinism(face, bank):
    a = synthesize(face, np.random.default_rng(5), SynthConfig(), bank)
    b = synthesize(face, np.random.default_rng(5), SynthConfig(), bank)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["parts"], b["parts"])


def test_part_boxes_skip_hidden_parts_and_export_yolo(face):
    lm = face.landmarks
    vis = np.full(68, VISIBLE)
    vis[48:68] = EXTERNAL
    boxes = part_boxes(lm, vis)
    names = [PART_CLASS_NAMES[k] for k, _ in boxes]
    assert "mouth" not in names and "eyes" in names and "nose" in names and len(PART_CLASS_NAMES) == 10
    eyes = dict((PART_CLASS_NAMES[k], b) for k, b in boxes)["eyes"]
    assert np.allclose(eyes, [lm[36:48, 0].min(), lm[36:48, 1].min(), lm[36:48, 0].max(), lm[36:48, 1].max()])
    line = yolo_lines([(0, np.array([10.0, 20.0, 30.0, 60.0]))], 100, 200)[0]
    assert line == "0 0.200000 0.200000 0.200000 0.200000"


def test_closed_eyes_move_the_lids_and_change_only_the_eyes(face, bank):
    from cribsight.data.eyelids import EYES, close_eyes

    base = _clean(face, bank)
    img, lm = base["image"], base["landmarks"]
    shut, new = close_eyes(img, lm, np.random.default_rng(0))
    for _, ua, ub, _, lb, la in EYES:  # upper and lower lid points meet, 20% up from the lower lid
        np.testing.assert_allclose(new[ua], new[la], atol=1e-5)
        np.testing.assert_allclose(new[ua], lm[la] + 0.2 * (lm[ua] - lm[la]), atol=1e-4)
    moved = np.abs(new - lm).sum(1) > 1e-6
    assert set(np.nonzero(moved)[0]) <= {37, 38, 40, 41, 43, 44, 46, 47}
    diff = np.abs(shut.astype(int) - img.astype(int)).sum(2) > 0
    ys, xs = np.nonzero(diff)
    eyes = lm[36:48]
    margin = 0.6 * np.ptp(eyes[:, 0]) / 2
    assert diff.any() and xs.min() >= eyes[:, 0].min() - margin and xs.max() <= eyes[:, 0].max() + margin
    assert ys.min() >= eyes[:, 1].min() - margin and ys.max() <= eyes[:, 1].max() + margin


def test_synthesize_closes_eyes_with_the_label(face, bank):
    cfg = SynthConfig(close_eyes_prob=1.0)
    out = synthesize(face, np.random.default_rng(0), cfg, bank, family="none", angle=0.0, flip=False, camera_effects=False)
    assert out["eyes_open"] == 0
    np.testing.assert_allclose(out["landmarks"][37], out["landmarks"][41], atol=1e-5)
    # a cover over both eyes hides them: the label is unknown, not "closed"
    out = synthesize(face, np.random.default_rng(0), cfg, bank, angle=0.0, flip=False, camera_effects=False,
                     occluder=_rect_over(slice(36, 48), pad=4))
    assert out["eyes_open"] == -1 and out["parts"][0, 1] == 1 and out["parts"][1, 1] == 1
