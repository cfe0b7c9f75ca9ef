"""Dataset adapters: tiny fixtures written in each real format, plus the real data in ../shared/data."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import scipy.io as sio

from cribsight.data import adapters as A
from cribsight.data.sample import EXTERNAL, SELF, UNKNOWN, VISIBLE, FaceSample
from cribsight.errors import InputError
from cribsight.geometry import matrix_from_euler

from .conftest import shared_path


def _img(path, h=24, w=32, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((h, w, 3), value, np.uint8)
    a[0, 0] = (255, 0, 0)
    assert cv2.imwrite(str(path), a)
    return path


def _pts_text(pts, n=None):
    n = len(pts) if n is None else n
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    return f"version: 1\nn_points:  {n}\n{{\n{body}\n}}\n"


def _expected_error(excinfo):
    assert "expected" in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# 1. iBUG .pts
def _ibug_points():
    k = np.arange(68, dtype=np.float64)
    return np.stack([10 + k, 100 + 0.5 * k], axis=1)


def test_ibug_pts_one_based_shift_and_lazy_image(tmp_path):
    pts = _ibug_points()
    (tmp_path / "a.pts").write_text(_pts_text(pts))
    _img(tmp_path / "a.jpg")
    out = A.load_ibug_pts(tmp_path)
    assert len(out) == 1 and out.skipped == []
    s = out[0]
    assert isinstance(s, FaceSample)
    np.testing.assert_allclose(s.landmarks, pts - 1, atol=1e-4)
    assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
    assert (s.visibility == UNKNOWN).all()
    np.testing.assert_allclose(s.box, [9, 99, 9 + 67, 99 + 33.5], atol=1e-4)
    assert s.dataset == "300W" and s.license == "300W: research only"
    assert s.image_array is None and s.path == tmp_path / "a.jpg"
    assert s.image.shape == (24, 32, 3)  # lazy load works
    # a single file, 0-based option
    s0 = A.load_ibug_pts(tmp_path / "a.pts", one_based=False)[0]
    np.testing.assert_allclose(s0.landmarks, pts, atol=1e-4)


def test_ibug_pts_png_beside_and_skip_missing(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.pts").write_text(_pts_text(_ibug_points()))
    _img(tmp_path / "sub" / "b.png")
    (tmp_path / "c.pts").write_text(_pts_text(_ibug_points()))  # no image
    out = A.load_ibug_pts(tmp_path)
    assert [s.path.name for s in out] == ["b.png"]
    assert len(out.skipped) == 1 and "c.pts" in out.skipped[0][0]


@pytest.mark.parametrize("text", [
    _pts_text(_ibug_points()[:67]),  # 67 points
    _pts_text(_ibug_points(), n=68).replace("10.000 100.000", "10.000"),  # malformed line
    _pts_text(_ibug_points()).replace("}", ""),  # no closing brace
    "version: 1\n{\n1 2\n}\n",  # no n_points
])
def test_ibug_pts_malformed(tmp_path, text):
    (tmp_path / "a.pts").write_text(text)
    _img(tmp_path / "a.jpg")
    with pytest.raises(InputError) as e:
        A.load_ibug_pts(tmp_path)
    _expected_error(e)


def test_ibug_pts_missing_inputs(tmp_path):
    with pytest.raises(InputError) as e:
        A.load_ibug_pts(tmp_path)  # no .pts at all
    _expected_error(e)
    (tmp_path / "a.pts").write_text(_pts_text(_ibug_points()))
    with pytest.raises(InputError) as e:
        A.load_ibug_pts(tmp_path / "a.pts")  # single file, no image
    _expected_error(e)
    with pytest.raises(InputError) as e:
        A.load_ibug_pts(tmp_path)  # folder whose only image is missing
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 2. WFLW
def _wflw_line(rel="0--Parade/x.jpg", attrs=(1, 0, 0, 1, 1, 0)):
    k = np.arange(98)
    pts = np.stack([k, 1000 + k], axis=1).ravel()  # x = WFLW index, y = 1000 + index
    nums = [f"{v:.1f}" for v in pts] + ["5", "6", "150", "160"] + [str(a) for a in attrs]
    return " ".join(nums + [rel])


def test_wflw_98_to_68_and_attributes(tmp_path):
    _img(tmp_path / "img" / "0--Parade" / "x.jpg")
    ann = tmp_path / "list.txt"
    ann.write_text(_wflw_line() + "\n\n")
    out = A.load_wflw(ann, tmp_path / "img")
    assert len(out) == 1
    s = out[0]
    idx = s.landmarks[:, 0].astype(int)
    assert list(idx) == list(A.WFLW98_TO_IBUG68)
    np.testing.assert_array_equal(s.landmarks[:, 1], 1000 + idx)
    assert list(idx[:17]) == list(range(0, 33, 2))
    assert list(idx[17:27]) == [33, 34, 35, 36, 37, 42, 43, 44, 45, 46]
    assert list(idx[27:36]) == list(range(51, 60))
    assert list(idx[36:48]) == [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75]
    assert list(idx[48:]) == list(range(76, 96))
    assert len(set(A.WFLW98_TO_IBUG68)) == 68
    assert s.extra["wflw98"].shape == (98, 2)
    np.testing.assert_array_equal(s.box, [5, 6, 150, 160])
    assert s.extra["wflw_attributes"] == {"pose": 1, "expression": 0, "illumination": 0, "make-up": 1,
                                          "occlusion": 1, "blur": 0}
    assert (s.visibility == UNKNOWN).all() and s.dataset == "WFLW" and s.license == "WFLW: research only"
    assert s.image_array is None and s.path.name == "x.jpg"


@pytest.mark.parametrize("line", [
    " ".join(_wflw_line().split()[:150]),  # too few fields
    _wflw_line().replace("17.0", "abc", 1),  # non-numeric
    _wflw_line(attrs=(2, 0, 0, 0, 0, 0)),  # flag not 0/1
])
def test_wflw_malformed(tmp_path, line):
    _img(tmp_path / "0--Parade" / "x.jpg")
    ann = tmp_path / "list.txt"
    ann.write_text(line + "\n")
    with pytest.raises(InputError) as e:
        A.load_wflw(ann, tmp_path)
    _expected_error(e)


def test_wflw_wrong_image_root(tmp_path):
    ann = tmp_path / "list.txt"
    ann.write_text(_wflw_line() + "\n")
    with pytest.raises(InputError) as e:
        A.load_wflw(ann, tmp_path)  # image not there
    _expected_error(e)
    with pytest.raises(InputError) as e:
        A.load_wflw(tmp_path / "nope.txt", tmp_path)
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 3. AFLW2000-3D
def test_aflw2000_synthetic(tmp_path):
    p3 = np.stack([np.linspace(10, 50, 68), np.linspace(20, 70, 68), np.zeros(68)])
    pp = np.array([[0.1, -0.2, 0.3, 1, 2, 3, 0.001]])
    sio.savemat(tmp_path / "image00001.mat", {"Pose_Para": pp, "pt3d_68": p3, "roi": np.array([[1, 2, 3, 4]])})
    _img(tmp_path / "image00001.jpg")
    s = A.load_aflw2000(tmp_path)[0]
    np.testing.assert_allclose(s.pose, np.degrees([-0.2, 0.1, 0.3]), atol=1e-4)  # yaw, pitch, roll
    np.testing.assert_allclose(s.landmarks, p3[:2].T, atol=1e-4)
    np.testing.assert_allclose(s.box, [10, 20, 50, 70], atol=1e-4)
    assert s.extra["pt3d_68"].shape == (68, 3) and s.extra["pose_para"].shape == (7,)
    assert s.dataset == "AFLW2000-3D" and s.license == "AFLW: non-commercial research"


def test_aflw2000_malformed(tmp_path):
    with pytest.raises(InputError) as e:
        A.load_aflw2000(tmp_path)  # no .mat
    _expected_error(e)
    sio.savemat(tmp_path / "image00001.mat", {"Pose_Para": np.zeros((1, 7))})
    with pytest.raises(InputError) as e:
        A.load_aflw2000(tmp_path)  # no pt3d_68
    _expected_error(e)
    sio.savemat(tmp_path / "image00001.mat", {"Pose_Para": np.zeros((1, 7)), "pt3d_68": np.zeros((3, 21))})
    with pytest.raises(InputError) as e:
        A.load_aflw2000(tmp_path)  # wrong point count
    _expected_error(e)


def test_aflw2000_real():
    root = shared_path("aflw2000_sample")
    out = A.load_aflw2000(root)
    assert len(out) == len(list(root.glob("*.mat"))) and out.skipped == []
    for s in out:
        assert s.landmarks.shape == (68, 2) and np.isfinite(s.landmarks).all()
        assert s.pose.shape == (3,) and np.all(np.abs(s.pose) < 180)
        assert s.box[0] < s.box[2] and s.box[1] < s.box[3]
        assert s.image_array is None
    img = out[0].image  # one lazy load
    h, w = img.shape[:2]
    inside = (out[0].landmarks[:, 0] >= -5) & (out[0].landmarks[:, 0] <= w + 5) & \
             (out[0].landmarks[:, 1] >= -5) & (out[0].landmarks[:, 1] <= h + 5)
    assert inside.mean() > 0.9
    m = sio.loadmat(out[0].path.with_suffix(".mat"))  # the pose is Pose_Para reordered, no sign flip
    pitch, yaw, roll = np.degrees(m["Pose_Para"][0, :3])
    np.testing.assert_allclose(out[0].pose, [yaw, pitch, roll], atol=1e-3)


# --------------------------------------------------------------------------------------------------
# 4. COFW
def _cofw_mat(path, prefix="T", n_cols=87):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (30, 40), dtype=np.uint8)
    rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    ims = np.empty((2, 1), dtype=object)
    ims[0, 0], ims[1, 0] = gray, rgb
    phis = np.zeros((2, n_cols))
    phis[:, :29] = np.arange(29) + 1  # x, 1-based
    phis[:, 29:58] = np.arange(29) + 101  # y
    if n_cols == 87:
        # face 0: nose 2 of 4 occluded, mouth 2 of 6, one eye side 3 of 5 -> eyes ambiguous
        for i in (18, 19, 22, 23, 8, 10, 12):
            phis[0, 58 + i] = 1
        # face 1: both eye sides occluded (all 10 eye points)
        for i in range(8, 18):
            phis[1, 58 + i] = 1
    boxes = np.array([[5, 6, 20, 10], [1, 1, 39, 29]], np.float64)
    sio.savemat(path, {f"Is{prefix}": ims, f"phis{prefix}": phis, f"bboxes{prefix}": boxes})
    return gray, rgb


def test_cofw_v5_mat(tmp_path):
    gray, rgb = _cofw_mat(tmp_path / "COFW_test.mat")
    out = A.load_cofw(tmp_path / "COFW_test.mat")
    assert len(out) == 2
    s0, s1 = out
    assert s0.landmarks is None and s0.path is None
    assert s0.image_array.shape == (30, 40, 3) and s0.image_array.dtype == np.uint8
    np.testing.assert_array_equal(s0.image_array[..., 0], gray)
    np.testing.assert_array_equal(s0.image_array[..., 2], gray)
    np.testing.assert_array_equal(s1.image_array, rgb)
    np.testing.assert_allclose(s0.extra["cofw29"][:, 0], np.arange(29))  # 1-based -> 0-based
    np.testing.assert_allclose(s0.extra["cofw29"][:, 1], np.arange(29) + 100)
    assert s0.extra["cofw29"].shape == (29, 2) and s0.extra["cofw29_occluded"].shape == (29,)
    assert s0.extra["cofw29_occluded"].sum() == 7
    np.testing.assert_allclose(s0.box, [4, 5, 24, 15])
    assert s0.parts["nose"] == {"occluded": 1, "covered": -1}  # 2 of 4: half rule
    assert s0.parts["mouth"] == {"occluded": 0, "covered": 0}  # 2 of 6
    assert s0.parts["eye_left"]["occluded"] == -1 and s0.parts["eye_right"]["occluded"] == -1
    assert s1.parts["eye_left"] == {"occluded": 1, "covered": -1} == s1.parts["eye_right"]
    assert s1.parts["nose"] == {"occluded": 0, "covered": 0}
    assert s0.dataset == "COFW" and s0.license == "COFW: research only" and s0.extra["split"] == "test"


def test_cofw_train_names(tmp_path):
    _cofw_mat(tmp_path / "COFW_train.mat", prefix="Tr")
    out = A.load_cofw(tmp_path / "COFW_train.mat")
    assert len(out) == 2 and out[0].extra["split"] == "train"
    with pytest.raises(InputError) as e:
        A.load_cofw(tmp_path / "COFW_train.mat", split="test")
    _expected_error(e)


def test_cofw_malformed(tmp_path):
    _cofw_mat(tmp_path / "bad.mat", n_cols=80)
    with pytest.raises(InputError) as e:
        A.load_cofw(tmp_path / "bad.mat")
    _expected_error(e)
    sio.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(InputError) as e:
        A.load_cofw(tmp_path / "other.mat")
    _expected_error(e)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(InputError) as e:
        A.load_cofw(tmp_path / "junk.mat")
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 5. MERL-RAV
def test_merl_rav_visibility_and_half_rule(tmp_path):
    pts = _ibug_points()
    raw = pts.copy()
    ext = [42, 43, 44,  # eye_left: 3 of 6 EXTERNAL -> covered 1, occluded 1
           36, 37,  # eye_right: 2 EXTERNAL + 1 SELF -> covered 0, occluded 1
           27, 28, 29, 30]  # nose: 4 of 9 EXTERNAL -> both 0 (needs 5)
    selfs = [38] + list(range(48, 58))  # mouth: 10 of 20 SELF -> occluded 1, covered 0
    raw[ext] = -raw[ext]
    raw[selfs] = -1
    d = tmp_path / "frontal" / "testset"
    d.mkdir(parents=True)
    (d / "image00002.pts").write_text(_pts_text(raw))
    _img(d / "image00002.jpg")
    s = A.load_merl_rav(tmp_path)[0]
    assert (s.visibility[ext] == EXTERNAL).all()
    assert (s.visibility[selfs] == SELF).all()
    others = np.setdiff1d(np.arange(68), ext + selfs)
    assert (s.visibility[others] == VISIBLE).all()
    np.testing.assert_allclose(s.landmarks[ext], pts[ext], atol=1e-4)  # absolute value
    assert np.isnan(s.landmarks[selfs]).all()
    np.testing.assert_allclose(s.landmarks[others], pts[others], atol=1e-4)
    assert s.parts["eye_left"] == {"occluded": 1, "covered": 1}
    assert s.parts["eye_right"] == {"occluded": 1, "covered": 0}
    assert s.parts["nose"] == {"occluded": 0, "covered": 0}
    assert s.parts["mouth"] == {"occluded": 1, "covered": 0}
    known = pts[np.setdiff1d(np.arange(68), selfs)]
    np.testing.assert_allclose(s.box, [known[:, 0].min(), known[:, 1].min(), known[:, 0].max(), known[:, 1].max()],
                               atol=1e-4)
    assert s.extra["view"] == "frontal" and s.dataset == "MERL-RAV" and s.license == "MERL-RAV: see AFLW terms"


def test_merl_rav_malformed(tmp_path):
    (tmp_path / "a.pts").write_text(_pts_text(_ibug_points()[:60]))
    _img(tmp_path / "a.jpg")
    with pytest.raises(InputError) as e:
        A.load_merl_rav(tmp_path)
    _expected_error(e)
    with pytest.raises(InputError) as e:
        A.load_merl_rav(tmp_path / "missing_dir")
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 6. BIWI
def _biwi_pose_file(path, R, t):
    rows = "\n".join(" ".join(f"{v:.8f}" for v in r) for r in R)
    path.write_text(rows + " \n\n" + " ".join(f"{v:.3f}" for v in t) + " \n")


@pytest.mark.parametrize("ypr", [(25.0, -10.0, 5.0), (-40.0, 15.0, -20.0), (0.0, 30.0, 0.0)])
def test_biwi_pose_self_consistent(tmp_path, ypr):
    seq = tmp_path / "07"
    seq.mkdir()
    _biwi_pose_file(seq / "frame_00004_pose.txt", matrix_from_euler(*ypr), (12.5, -40.0, 950.0))
    _img(seq / "frame_00004_rgb.png")
    out = A.load_biwi(tmp_path)
    assert len(out) == 1
    s = out[0]
    np.testing.assert_allclose(s.pose, ypr, atol=1e-4)
    np.testing.assert_allclose(s.extra["biwi_translation_mm"], [12.5, -40.0, 950.0])
    assert s.extra["sequence"] == "07" and s.extra["frame"] == 4
    assert s.path.name == "frame_00004_rgb.png" and s.image_array is None
    assert s.dataset == "BIWI" and s.license == "BIWI: research only"
    # a single sequence folder works too
    assert len(A.load_biwi(seq)) == 1


def test_biwi_single_axis_signs():
    # a rotation about the camera's y axis (down) by +a turns the face normal (-z) towards -x, the
    # image's left: yaw > 0 per cribsight.geometry
    a = np.radians(20)
    Ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    np.testing.assert_allclose(A.biwi_to_pose(Ry), [20, 0, 0], atol=1e-4)


def test_biwi_malformed(tmp_path):
    _img(tmp_path / "frame_00001_rgb.png")
    (tmp_path / "frame_00001_pose.txt").write_text("1 0 0\n0 1 0\n\n0 0 0\n")  # 3 lines
    with pytest.raises(InputError) as e:
        A.load_biwi(tmp_path)
    _expected_error(e)
    _biwi_pose_file(tmp_path / "frame_00001_pose.txt", 2 * np.eye(3), (0, 0, 0))  # not a rotation
    with pytest.raises(InputError) as e:
        A.load_biwi(tmp_path)
    _expected_error(e)
    with pytest.raises(InputError) as e:
        A.load_biwi(tmp_path / "empty_does_not_exist")
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 7. CelebAMask-HQ (C-CM binary masks)
def test_celebamask(tmp_path):
    _img(tmp_path / "images" / "0.jpg", h=16, w=16)
    _img(tmp_path / "images" / "1.jpg", h=16, w=16)
    _img(tmp_path / "images" / "2.jpg", h=16, w=16)  # no mask -> skipped
    m0 = np.zeros((16, 16), np.uint8)
    m0[4:12, 2:10] = 255
    m0[5, 5] = 100  # below the threshold
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "0.png"), m0)
    m1 = np.zeros((8, 8), np.uint8)  # half size: resized to the image
    m1[:4] = 255
    cv2.imwrite(str(tmp_path / "masks" / "1.png"), m1)
    out = A.load_celebamask(tmp_path)
    assert len(out) == 2 and len(out.skipped) == 1
    s0, s1 = list(out)
    expected = (m0 > 127).astype(np.uint8)
    np.testing.assert_array_equal(s0.face_mask, expected)
    assert s0.face_mask[5, 5] == 0 and s0.mask is None
    assert s1.face_mask.shape == (16, 16) and s1.face_mask[:8].all() and not s1.face_mask[8:].any()
    assert s0.image_array is None and s0.dataset == "CelebAMask-HQ"
    assert s0.license == "CelebAMask-HQ: non-commercial research" and s0.extra["id"] == "0"
    assert out[1].extra["id"] == "1"


def test_celebamask_malformed(tmp_path):
    _img(tmp_path / "images" / "0.jpg")
    with pytest.raises(InputError) as e:
        A.load_celebamask(tmp_path)  # no masks/
    _expected_error(e)
    (tmp_path / "masks").mkdir()
    with pytest.raises(InputError) as e:
        A.load_celebamask(tmp_path)  # masks/ without a matching mask
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
# 8. COCO keypoints (SyRIP)
def _coco(tmp_path, **over):
    _img(tmp_path / "images" / "test1.jpg")
    kp = [10, 12, 2, 14, 10, 2, 6, 10, 1, 0, 0, 0, 3, 11, 2] + [1, 1, 2] * 12
    d = {"images": [{"id": 7, "file_name": "test1.jpg", "posture": "Prone", "width": 32, "height": 24}],
         "annotations": [{"id": 3, "image_id": 7, "keypoints": kp, "bbox": [1, 2, 20, 15], "iscrowd": 0}],
         "categories": [{"id": 1, "name": "person", "keypoints": list(A.COCO_FACE5) + ["left_shoulder"]}]}
    d.update(over)
    (tmp_path / "ann.json").write_text(json.dumps(d))
    return tmp_path / "ann.json", tmp_path / "images"


def test_coco_keypoints(tmp_path):
    out = A.load_coco_keypoints(*_coco(tmp_path))
    assert len(out) == 1
    s = out[0]
    np.testing.assert_array_equal(s.extra["coco_face5"], [[10, 12, 2], [14, 10, 2], [6, 10, 1], [0, 0, 0], [3, 11, 2]])
    assert s.extra["coco_face5"].shape == (5, 3) and s.extra["coco_keypoints"].shape == (17, 3)
    np.testing.assert_array_equal(s.extra["body_box"], [1, 2, 21, 17])
    np.testing.assert_array_equal(s.box, [3, 10, 14, 12])  # labelled face keypoints only (v > 0)
    assert s.extra["posture"] == "Prone" and s.extra["image_id"] == 7 and s.extra["annotation_id"] == 3
    assert s.landmarks is None and s.dataset == "SyRIP" and s.license == "SyRIP: non-commercial research"
    assert s.image_array is None and s.image.shape == (24, 32, 3)


def test_coco_keypoints_malformed(tmp_path):
    ann, imgs = _coco(tmp_path)
    d = json.loads(ann.read_text())
    del d["annotations"]
    ann.write_text(json.dumps(d))
    with pytest.raises(InputError) as e:
        A.load_coco_keypoints(ann, imgs)
    _expected_error(e)
    ann, imgs = _coco(tmp_path, categories=[{"id": 1, "name": "person", "keypoints": ["left_eye", "nose"]}])
    with pytest.raises(InputError) as e:
        A.load_coco_keypoints(ann, imgs)
    _expected_error(e)
    ann, imgs = _coco(tmp_path, annotations=[{"id": 1, "image_id": 7, "keypoints": [1, 2], "bbox": [0, 0, 1, 1]}])
    with pytest.raises(InputError) as e:
        A.load_coco_keypoints(ann, imgs)
    _expected_error(e)
    ann.write_text("{not json")
    with pytest.raises(InputError) as e:
        A.load_coco_keypoints(ann, imgs)
    _expected_error(e)


def test_coco_keypoints_syrip_real():
    root = shared_path("syrip")
    out = A.load_coco_keypoints(root / "annotations.json", root / "images")
    d = json.loads((root / "annotations.json").read_text())
    assert len(out) == len(d["annotations"]) and out.skipped == []
    assert {s.extra["posture"] for s in out} <= {"Prone", "Supine", "Sitting", "Standing"}
    for s in out:
        f5 = s.extra["coco_face5"]
        assert f5.shape == (5, 3) and set(np.unique(f5[:, 2])) <= {0, 1, 2}
        bb = s.extra["body_box"]
        assert bb[2] > bb[0] and bb[3] > bb[1]
        assert s.path.is_file() and s.image_array is None
    assert out[0].image.ndim == 3  # one lazy load


# --------------------------------------------------------------------------------------------------
# 9. UTKFace
def test_utkface(tmp_path):
    _img(tmp_path / "1_0_2_20161219140530307.jpg.chip.jpg")
    (tmp_path / "26_1_4_20170117195130523.jpg.chip.jpg").write_bytes(b"")  # never decoded
    (tmp_path / "39_1_20170116174525125.jpg.chip.jpg").write_bytes(b"")  # no race: skipped
    (tmp_path / "5_7_1_20170117195130523.jpg.chip.jpg").write_bytes(b"")  # gender 7: skipped
    (tmp_path / "README.txt").write_text("x")  # ignored
    out = A.load_utkface(tmp_path)
    assert len(out) == 2 and len(out.skipped) == 2
    s = out[0]
    assert s.extra == {"age": 1, "gender": 0, "gender_name": "male", "race": 2, "race_name": "Asian",
                       "datetime": "20161219140530307"}
    assert out[1].extra["age"] == 26 and out[1].extra["gender"] == 1 and out[1].extra["race"] == 4
    assert {n for n, _ in out.skipped} == {"39_1_20170116174525125.jpg.chip.jpg",
                                           "5_7_1_20170117195130523.jpg.chip.jpg"}
    assert s.dataset == "UTKFace" and s.license == "UTKFace: non-commercial research"
    assert s.image_array is None and s.image.shape == (24, 32, 3)


def test_utkface_malformed(tmp_path):
    with pytest.raises(InputError) as e:
        A.load_utkface(tmp_path)  # empty folder
    _expected_error(e)
    (tmp_path / "face.jpg").write_bytes(b"")
    with pytest.raises(InputError) as e:
        A.load_utkface(tmp_path)  # nothing parseable
    _expected_error(e)


def test_utkface_real():
    root = shared_path("utkface")
    out = A.load_utkface(root)
    assert len(out) + len(out.skipped) == sum(1 for _ in root.glob("*.jpg"))
    assert len(out) > 1000
    ages = np.array([s.extra["age"] for s in out])
    assert ages.min() >= 1 and ages.max() <= 120 and (ages <= 3).sum() > 100
    assert out[0].image.shape == (200, 200, 3)


# --------------------------------------------------------------------------------------------------
# 10. Class folders (face-mask)
def test_class_folders(tmp_path):
    _img(tmp_path / "with_mask" / "with_mask-1.jpg")
    _img(tmp_path / "without_mask" / "without_mask-1.png")
    (tmp_path / "without_mask" / "notes.txt").write_text("x")
    out = A.load_class_folders(tmp_path)
    assert len(out) == 2 and len(out.skipped) == 1
    by = {s.extra["class"]: s for s in out}
    assert by["with_mask"].parts["nose"] == {"occluded": 1, "covered": 1}
    assert by["with_mask"].parts["mouth"] == {"occluded": 1, "covered": 1}
    assert by["with_mask"].parts["eye_left"] == {"occluded": -1, "covered": -1}
    assert all(v == {"occluded": -1, "covered": -1} for v in by["without_mask"].parts.values())
    assert by["with_mask"].dataset == "face-mask" and by["with_mask"].license == "face-mask images: research only"
    strict = A.load_class_folders(tmp_path, covered_classes={"with_mask": ("mouth",)})
    s = next(s for s in strict if s.extra["class"] == "with_mask")
    assert s.parts["nose"]["covered"] == -1 and s.parts["mouth"]["covered"] == 1


def test_class_folders_malformed(tmp_path):
    with pytest.raises(InputError) as e:
        A.load_class_folders(tmp_path)  # no class folders
    _expected_error(e)
    _img(tmp_path / "with_mask" / "a.jpg")
    with pytest.raises(InputError) as e:
        A.load_class_folders(tmp_path, covered_classes={"with_mask": ("chin",)})
    _expected_error(e)


def test_class_folders_facemask_real():
    root = shared_path("facemask")
    out = A.load_class_folders(root)
    classes = {s.extra["class"] for s in out}
    assert classes == {"with_mask", "without_mask"}
    for s in out:
        assert s.path.name.startswith(s.extra["class"])  # the README: names start with their folder's name
        covered = s.parts["mouth"]["covered"]
        assert covered == (1 if s.extra["class"] == "with_mask" else -1)
    assert max(out[0].image.shape[:2]) <= 320


# --------------------------------------------------------------------------------------------------
# 11. YunInfants
YUN_CASES = [
    # occ_eye occ_eyes occ_nose occ_mouth cov_eyes cov_nose cov_mouth eye_open -> eye occluded
    ((0, 0, 0, 1, 0, 0, 1, 1), 0),
    ((1, 1, 1, 0, 1, 1, 0, 0), 1),
    ((1, 0, 0, 0, 0, 0, 0, 1), -1),  # one eye hidden, which one unknown
    ((-1, -1, -1, -1, -1, -1, -1, -1), -1),
    ((-1, 1, 0, 0, 0, 0, 0, -1), 1),
    ((0, -1, 0, 0, 0, 0, 0, 1), 0),
]


def test_yuninfants_mapping(tmp_path):
    lines = []
    for k, (v, _) in enumerate(YUN_CASES):
        _img(tmp_path / "imgs" / f"b {k}.jpg")  # a path with a space
        lines.append(f"b {k}.jpg " + " ".join(str(x) for x in v))
    (tmp_path / "labels.txt").write_text("# header comment\n" + "\n".join(lines) + "\n\n")
    out = A.load_yuninfants(tmp_path / "labels.txt", tmp_path / "imgs")
    assert len(out) == len(YUN_CASES)
    for s, (v, eye_occ) in zip(out, YUN_CASES):
        np.testing.assert_array_equal(s.extra["yun_labels"], v)
        for eye in ("eye_left", "eye_right"):
            assert s.parts[eye] == {"occluded": eye_occ, "covered": v[4]}
        assert s.parts["nose"] == {"occluded": v[2], "covered": v[5]}
        assert s.parts["mouth"] == {"occluded": v[3], "covered": v[6]}
        assert s.eyes_open == v[7]
        assert s.dataset == "YunInfants" and s.image_array is None
    assert out[0].path.name == "b 0.jpg"


@pytest.mark.parametrize("line", ["a.jpg 0 0 0 0 0 0 0 2", "a.jpg 0 0 0 0 0 0 0", "a.jpg 0 0 0 0 0 x 0 1"])
def test_yuninfants_malformed(tmp_path, line):
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.txt").write_text(line + "\n")
    with pytest.raises(InputError) as e:
        A.load_yuninfants(tmp_path / "labels.txt", tmp_path)
    _expected_error(e)


def test_yuninfants_missing_images(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "labels.txt").write_text("a.jpg 0 0 0 0 0 0 0 1\nb.jpg 0 0 0 0 0 0 0 1\n")
    out = A.load_yuninfants(tmp_path / "labels.txt", tmp_path)
    assert len(out) == 1 and len(out.skipped) == 1
    (tmp_path / "labels.txt").write_text("b.jpg 0 0 0 0 0 0 0 1\n")
    with pytest.raises(InputError) as e:
        A.load_yuninfants(tmp_path / "labels.txt", tmp_path)
    _expected_error(e)


# --------------------------------------------------------------------------------------------------
def test_registry():
    assert set(A.ADAPTERS) == {"ibug", "wflw", "aflw2000", "cofw", "merl_rav", "biwi", "celebamask",
                               "coco_keypoints", "utkface", "class_folders", "yuninfants"}
    assert all(callable(f) and f.__doc__ for f in A.ADAPTERS.values())
    assert A.get_adapter("MERL-RAV") is A.load_merl_rav
    with pytest.raises(InputError) as e:
        A.get_adapter("imagenet")
    _expected_error(e)
