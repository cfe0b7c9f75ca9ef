import numpy as np
import pytest

from cribsight.errors import InputError


def _one_face(result):
    assert len(result.faces) == 1, f"expected one face, found {len(result.faces)}"
    return result.faces[0]


def test_portrait_face_landmarks_and_pose(analyzer, portrait):
    face = _one_face(analyzer.analyze_image(portrait, "astronaut.jpg"))
    x1, y1, x2, y2 = face.box
    lm = np.asarray(face.landmarks.xy)
    assert lm.shape == (68, 2)
    # eyes, nose and mouth inside the detector box, in anatomical order
    for i in (30, 36, 45, 51, 57):
        assert x1 <= lm[i, 0] <= x2 and y1 <= lm[i, 1] <= y2
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()  # subject's right eye on the image left
    assert lm[36:48, 1].mean() < lm[30, 1] < lm[51, 1] < lm[8, 1]
    assert abs(face.pose.yaw) < 15 and abs(face.pose.roll) < 15
    assert face.eyes_open is not None and face.eyes_open.p > 0.8  # she looks at the camera
    # the occlusion-aware network fills sigma, visibility and the parts; nothing is hidden here
    assert all(0 < s < 0.1 * (x2 - x1) for s in face.landmarks.sigma)
    assert min(face.landmarks.visible) > 0.5
    assert all(0 <= st.covered < 0.5 and 0 <= st.occluded < 0.5 for st in face.parts.values())
    assert face.occlusion.visible_fraction > 0.9 and face.pose.sigma is None  # pose sigma: no model estimates it


def test_pretrained_path_leaves_unestimated_fields_null(portrait):
    from cribsight.pipeline import Analyzer

    face = _one_face(Analyzer(model="pretrained").analyze_image(portrait))
    assert face.landmarks.sigma is None and face.landmarks.visible is None and face.pose.sigma is None
    assert face.parts is None and face.occlusion.visible_fraction is None and face.occlusion.mask is None


def test_blanket_over_the_mouth_is_reported_covered(analyzer):
    from cribsight.demo import demo_frames

    frames = {i: img for i, _, img in demo_frames()}
    clear = _one_face(analyzer.analyze_image(frames[0]))
    covered = _one_face(analyzer.analyze_image(frames[24]))  # the blanket's highest point: over the mouth
    assert clear.parts["mouth"].covered < 0.5 and covered.parts["mouth"].covered > 0.5
    assert covered.parts["eye_left"].covered < 0.5 and covered.parts["eye_right"].covered < 0.5
    assert np.mean(covered.landmarks.visible[48:68]) < 0.5 < np.mean(covered.landmarks.visible[36:48])
    assert covered.occlusion.visible_fraction < clear.occlusion.visible_fraction
    assert covered.occlusion.mask  # polygons of the occluder on the face, image pixels


def test_fused_landmarks_take_the_mesh_point_where_cribnet_says_hidden(analyzer):
    from cribsight.demo import demo_frames
    from cribsight.pipeline import Analyzer

    img = {i: im for i, _, im in demo_frames()}[24]  # blanket over the mouth
    net = _one_face(analyzer.analyze_image(img)).landmarks
    mesh = _one_face(Analyzer(landmarks_from="mesh").analyze_image(img)).landmarks
    fused = _one_face(Analyzer(landmarks_from="fused").analyze_image(img)).landmarks
    hidden = np.array(net.visible) < 0.5
    assert 0 < hidden.sum() < 68
    pts = {k: np.array(v.xy) for k, v in (("net", net), ("mesh", mesh), ("fused", fused))}
    assert np.allclose(pts["fused"][hidden], pts["mesh"][hidden]) and np.allclose(pts["fused"][~hidden], pts["net"][~hidden])
    assert not np.allclose(pts["net"][hidden], pts["mesh"][hidden])
    assert fused.sigma == net.sigma and fused.visible == net.visible


def test_mirror_flips_yaw_and_roll_keeps_pitch(analyzer, portrait):
    a = _one_face(analyzer.analyze_image(portrait)).pose
    b = _one_face(analyzer.analyze_image(np.ascontiguousarray(portrait[:, ::-1]))).pose
    assert abs(a.yaw + b.yaw) < 3.0 and abs(a.roll + b.roll) < 3.0 and abs(a.pitch - b.pitch) < 3.0


def test_mirror_maps_landmarks_through_flip_pairs(analyzer, portrait):
    from cribsight.schema import IBUG68_FLIP

    w = portrait.shape[1]
    a = np.asarray(_one_face(analyzer.analyze_image(portrait)).landmarks.xy)
    b = np.asarray(_one_face(analyzer.analyze_image(np.ascontiguousarray(portrait[:, ::-1]))).landmarks.xy)
    b_back = np.stack([w - 1 - b[:, 0], b[:, 1]], 1)[list(IBUG68_FLIP)]
    iod = np.linalg.norm(a[36] - a[45])
    assert np.median(np.linalg.norm(a - b_back, axis=1)) / iod < 0.05


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotated_faces_are_found_and_mapped_back(analyzer, portrait, k):
    h, w = portrait.shape[:2]
    up = np.asarray(_one_face(analyzer.analyze_image(portrait)).landmarks.xy)
    face = _one_face(analyzer.analyze_image(np.ascontiguousarray(np.rot90(portrait, k))))
    lm = np.asarray(face.landmarks.xy)
    # rot90 (counter-clockwise) maps (x, y) -> (y, w - 1 - x); apply it k times to the upright points
    exp = up.copy()
    cw, ch = w, h
    for _ in range(k):
        exp = np.stack([exp[:, 1], cw - 1 - exp[:, 0]], 1)
        cw, ch = ch, cw
    iod = np.linalg.norm(up[36] - up[45])
    assert np.median(np.linalg.norm(lm - exp, axis=1)) / iod < 0.08
    expected_roll = {1: -90, 2: 180, 3: 90}[k]
    assert abs((face.pose.roll - expected_roll + 180) % 360 - 180) < 15


def test_rotation_search_can_be_switched_off(portrait):
    from cribsight.pipeline import Analyzer

    an = Analyzer(rotations=(), crop_fallback=False)
    assert an.analyze_image(np.ascontiguousarray(np.rot90(portrait, 2))).faces == ()


def test_tight_crop_is_found(analyzer, portrait):
    import cv2

    crop = np.ascontiguousarray(cv2.resize(portrait[55:195, 155:295], (200, 200)))
    face = _one_face(analyzer.analyze_image(crop))
    assert face.box[2] - face.box[0] > 100


def test_frame_candidate_is_the_centre_square_and_its_box_comes_from_landmarks():
    from cribsight.pipeline import box_from_landmarks, frame_detection

    d = frame_detection(np.zeros((100, 160, 3), np.uint8))
    assert d.score == 0.0 and d.detector == "frame"
    assert np.allclose(d.box_xyxy, [30, 0, 130, 100])
    assert d.keypoints_xy[0, 0] < d.keypoints_xy[1, 0]  # subject's right eye on the image's left, level
    assert d.keypoints_xy[0, 1] == d.keypoints_xy[1, 1]
    lm = np.array([[10.0, 20.0], [50.0, 30.0], [30.0, 100.0]])
    assert np.allclose(box_from_landmarks(lm, 200, 90), [0, 20, 70, 90])  # square of side 80 about (30, 60), clipped


def test_tiles_find_a_small_face_the_whole_frame_passes_miss(analyzer, portrait):
    import cv2

    from cribsight.pipeline import Analyzer

    canvas = np.full((720, 1280, 3), 110, np.uint8)
    canvas[400:600, 900:1100] = cv2.resize(portrait, (200, 200), interpolation=cv2.INTER_AREA)  # face ~40 px wide
    assert analyzer.analyze_image(canvas).faces == ()  # tiles are off by default
    face = _one_face(Analyzer(tiles=3).analyze_image(canvas))  # seen by several tiles, reported once
    assert face.detector.endswith("_tile") or face.detector.endswith("_tile+cribnet")
    x1, y1, x2, y2 = face.box
    assert 900 < x1 < x2 < 1100 and 400 < y1 < y2 < 600 and 20 < x2 - x1 < 100
    for bad in (1, 2, 9, True, 3.0):
        with pytest.raises(InputError, match="grid size"):
            Analyzer(tiles=bad)
    with pytest.raises(InputError, match="second stage"):  # tiles are only trusted with CribNet's P(face)
        Analyzer(tiles=3, model="pretrained")
    with pytest.raises(InputError, match="second stage"):
        Analyzer(frame_candidate=True, verify_face=0.0)


def test_unmirror_maps_boxes_and_keypoints_back_with_sides_swapped():
    from cribsight.detect.blazeface import Detection
    from cribsight.pipeline import MIRROR, unmirror

    kp = np.array([[30, 40], [60, 40], [45, 55], [45, 70], [10, 45], [80, 45]], np.float32)  # right eye first
    d = unmirror([Detection(np.array([5, 20, 85, 90], np.float32), kp, 0.7, "blazeface_full")], w=100)[0]
    assert np.allclose(d.box_xyxy, [14, 20, 94, 90]) and d.score == 0.7 and d.detector == "blazeface_full" + MIRROR
    # the mirror's "right eye" at x=30 is the subject's left eye, at 99 - 30 = 69 on the frame
    assert np.allclose(d.keypoints_xy, [[39, 40], [69, 40], [54, 55], [54, 70], [19, 45], [89, 45]])


def test_mirror_passes_follow_the_frame_passes_and_map_back(analyzer, portrait):
    from cribsight.pipeline import EXTRA, MIRROR, Analyzer

    # the default: full, 3 rotations, 2 short-range, the extra detector; then the first six mirrored
    assert len(list(analyzer.detection_stages(portrait, 0.4))) == 7
    assert len(list(analyzer.detection_stages(portrait, 0.4, mirror=True))) == 13
    assert list(analyzer.detection_stages(portrait, 0.4))[6]()[0].detector == "blazeface_full_ft" + EXTRA
    analyzer = Analyzer(extra_detector=None)
    stages = list(analyzer.detection_stages(portrait, 0.4))
    with_mirror = list(analyzer.detection_stages(portrait, 0.4, mirror=True))
    assert len(with_mirror) == 2 * len(stages) == 12  # full, 3 rotations, 2 short-range; then the same mirrored
    up = stages[0]()[0]
    back = with_mirror[len(stages)]()[0]  # full-range on the mirrored portrait, mapped back
    assert back.detector == up.detector + MIRROR
    iod = np.linalg.norm(up.keypoints_xy[0] - up.keypoints_xy[1])
    assert np.abs(back.box_xyxy - up.box_xyxy).max() < 0.1 * iod
    assert np.linalg.norm(back.keypoints_xy - up.keypoints_xy, axis=1).max() < 0.1 * iod  # sides swapped back
    # a face found upright never reaches the mirror passes
    assert MIRROR not in _one_face(Analyzer(mirror_search=True).analyze_image(portrait)).detector
    for bad in (1, "yes", None):
        with pytest.raises(InputError, match="mirror_search"):
            Analyzer(mirror_search=bad)
    with pytest.raises(InputError, match="second stage"):  # its detections are only trusted with CribNet's P(face)
        Analyzer(mirror_search=True, model="pretrained")


def test_overlapping_detections_are_reported_once():
    from cribsight.detect.blazeface import Detection
    from cribsight.pipeline import suppress_overlaps

    kp = np.zeros((6, 2), np.float32)
    full = Detection(np.array([962, 423, 1002, 463], np.float32), kp, 0.7, "full_tile")
    short = Detection(np.array([929, 412, 1034, 517], np.float32), kp, 0.6, "short_tile")  # around it: IoU 0.14
    shifted = Detection(np.array([965, 425, 1005, 465], np.float32), kp, 0.8, "full_tile")  # IoU 0.8 with full
    apart = Detection(np.array([100, 100, 140, 140], np.float32), kp, 0.5, "full_tile")
    kept = suppress_overlaps([full, short, shifted, apart])
    assert [d.score for d in kept] == [0.8, 0.5]


def test_tile_detections_face_the_stricter_rule():
    from cribsight.pipeline import AnalyzerConfig

    cfg = AnalyzerConfig()  # reject 0.5, verify 0.9, tile_verify 0.99
    assert cfg.second_stage_keeps(True, 0.6) and not cfg.second_stage_keeps(True, 0.6, strict=True)
    assert cfg.second_stage_keeps(False, 0.95) and not cfg.second_stage_keeps(False, 0.95, strict=True)
    assert cfg.second_stage_keeps(False, 0.995, strict=True) and cfg.second_stage_keeps(True, 0.995, strict=True)


def test_tile_and_mirror_detections_meet_the_stricter_rule_in_the_pipeline(portrait):
    from dataclasses import replace

    from cribsight.pipeline import MIRROR, TILE, Analyzer

    a = Analyzer()
    h, w = portrait.shape[:2]
    det = list(a.detection_stages(portrait, 0.4))[0]()[0]  # the upright full-range pass
    a.config.tile_verify = 1.01  # a bar no P(face) reaches: only the plain detection may pass
    assert a._face(portrait, det, w, h) is not None
    for suffix in (TILE, MIRROR):
        assert a._face(portrait, replace(det, detector=det.detector + suffix), w, h) is None
    a.config.tile_verify = 0.0  # and a bar every P(face) passes: they are kept
    for suffix in (TILE, MIRROR):
        assert a._face(portrait, replace(det, detector=det.detector + suffix), w, h) is not None


def test_opt_in_cribnet_weights(portrait):
    from cribsight.pipeline import Analyzer

    default, alt = Analyzer(), Analyzer(cribnet_weights="cribnet_v216.onnx")
    assert alt.cribnet.model.entry["sha256"] != default.cribnet.model.entry["sha256"]
    assert Analyzer(cribnet_weights="cribnet.onnx").cribnet.model.entry["sha256"] == default.cribnet.model.entry["sha256"]
    f, g = _one_face(default.analyze_image(portrait)), _one_face(alt.analyze_image(portrait))
    assert f.box == g.box and f.landmarks == g.landmarks  # the same base network: only the part layer differs
    # (on this clear portrait both say 'visible' with near certainty, the retrained layer's odds differ)
    assert any(not np.isclose(f.parts[p].occluded, g.parts[p].occluded, rtol=0.5, atol=0) for p in f.parts)
    for bad, says in ((dict(cribnet_weights="nope.onnx"), "a shipped CribNet file"),
                      (dict(cribnet_weights="face_landmark.onnx"), "a shipped CribNet file"),
                      (dict(cribnet_weights="cribnet_v216.onnx", model="pretrained"), "model cribnet or auto"),
                      (dict(cribnet_weights="cribnet.onnx", model="pretrained"), "model cribnet or auto")):
        with pytest.raises(InputError, match=says):
            Analyzer(**bad)


def test_detector_weights_by_path(portrait, tmp_path):
    # a detector .onnx outside the weights folder, with its manifest entry beside it, replaces the
    # full-range detector (the shipped file copied: the same faces); wrong files are typed errors
    import json
    import shutil

    from cribsight.errors import WeightsError
    from cribsight.pipeline import Analyzer
    from cribsight.runtime import manifest, weight_path

    dst = tmp_path / "det.onnx"
    shutil.copy(weight_path("face_detection_full_range.onnx"), dst)
    dst.with_suffix(".json").write_text(json.dumps(manifest()["files"]["face_detection_full_range.onnx"]))
    default, alt = Analyzer(), Analyzer(detector_weights=dst)
    assert alt.full.model.name == str(dst) and default.full.model.name == "face_detection_full_range.onnx"
    f, g = _one_face(default.analyze_image(portrait)), _one_face(alt.analyze_image(portrait))
    assert f.box == g.box and f.landmarks == g.landmarks
    with pytest.raises(WeightsError, match="expected a face detector"):
        Analyzer(detector_weights="cribnet.onnx")
    with pytest.raises(WeightsError, match="expected its manifest entry"):
        shutil.copy(dst, tmp_path / "bare.onnx")
        Analyzer(detector_weights=str(tmp_path / "bare.onnx"))
    with pytest.raises(InputError, match="detector_weights"):
        Analyzer(detector_weights=3)


def test_extra_detector_defaults_and_errors():
    from cribsight.pipeline import EXTRA_DETECTOR, Analyzer

    assert Analyzer().extra is not None and Analyzer().extra.name == "blazeface_full_ft"  # auto, with CribNet
    assert Analyzer().config.extra_strict is True
    assert Analyzer(model="pretrained").extra is None  # auto: no second stage, no extra pass
    assert Analyzer(verify_face=0).extra is None
    assert Analyzer(extra_detector=None).extra is None
    from cribsight.cli import _analyzer  # the CLI's --extra-detector off / OFF / none

    assert all(_analyzer(extra_detector=v).extra is None for v in ("off", "OFF", "none"))
    assert _analyzer(extra_detector=None).extra is not None  # option not given: the default
    with pytest.raises(InputError, match="second stage"):  # asked for by name, it needs CribNet's P(face)
        Analyzer(model="pretrained", extra_detector=EXTRA_DETECTOR)
    with pytest.raises(InputError, match="extra_detector"):
        Analyzer(extra_detector=1.5)
    with pytest.raises(InputError, match="extra_strict"):
        Analyzer(extra_strict="yes")


def test_blank_image_has_no_face(analyzer):
    res = analyzer.analyze_image(np.full((240, 320, 3), 128, np.uint8))
    assert res.faces == () and res.width == 320 and res.height == 240


@pytest.mark.parametrize("bad, found", [
    (np.zeros((10,), np.uint8), "shape (10,)"),
    (np.zeros((4, 4, 5), np.uint8), "shape (4, 4, 5)"),
    (np.zeros((1, 5, 3), np.uint8), "5x1"),
    ([[0, 0], [0, 0]], "list"),
    (np.zeros((8, 8, 3), np.complex64), "dtype complex64"),
    (np.full((8, 8, 3), None, object), "dtype object"),
])
def test_bad_arrays_raise_typed_errors(analyzer, bad, found):
    with pytest.raises(InputError) as e:
        analyzer.analyze_image(bad)
    assert "expected" in str(e.value) and found in str(e.value)


def test_unknown_option_is_rejected():
    from cribsight.pipeline import Analyzer

    with pytest.raises(InputError, match="rotations"):
        Analyzer(rotations=(45,))
    with pytest.raises(InputError, match="no_such_option"):
        Analyzer(no_such_option=1)
    with pytest.raises(InputError, match="cribnet, mesh or fused"):
        Analyzer(landmarks_from="average")


def test_gray_and_16bit_arrays_are_accepted(analyzer, portrait):
    gray = portrait.mean(2).astype(np.uint8)
    assert len(analyzer.analyze_image(gray).faces) == 1
    sixteen = (portrait.astype(np.uint16) * 40)  # 16-bit values up to 10200, not 65535
    assert len(analyzer.analyze_image(sixteen).faces) == 1


def test_shipped_model_reads_parts_on_the_crop_and_its_mirror(analyzer, portrait):
    """The shipped manifest asks for flip-averaged parts: the runtime's covered / occluded are the
    mixture of the crop's read and its left-right mirror's (eyes swapped back). Three patched
    portraits show the test can tell it from the wrong reads (values of the shipped model): a patch
    over one eye from the mirror unswapped, one over the mouth's corner from an upside-down crop, a
    faint one over the mouth (P(covered) about 0.95 alone) from the crop alone."""
    import cv2

    from cribsight.analyze.cribnet import crop_from_landmarks
    from cribsight.analyze.decode import part_probabilities
    from cribsight.eval.benchmarks import network_on_crop
    from cribsight.geometry import rotated_rect_affine

    net = analyzer.cribnet
    assert net.part_flip_average
    lm = np.asarray(_one_face(analyzer.analyze_image(portrait)).landmarks.xy)
    centre, side, angle = crop_from_landmarks(lm)  # the runtime's crop, by hand
    M = rotated_rect_affine(centre, side, angle, net.size)
    run = lambda t: dict(zip(net.names, net.model(np.ascontiguousarray(t))))  # noqa: E731
    parts = ("occ", "occ_sigma", "cov", "cov_sigma")

    def patched(points, alpha):
        img = portrait.astype(np.float32)
        x0, y0 = lm[points].min(0).astype(int) - 6
        x1, y1 = lm[points].max(0).astype(int) + 6
        img[y0:y1, x0:x1] = (1 - alpha) * img[y0:y1, x0:x1] + alpha * 128
        return img.astype(np.uint8)

    def far(a, b):  # the largest probability difference of two reads
        return max(np.abs(a[k][0] - b[k][0]).max() for k in ("occ", "cov"))

    for points, alpha, wrong in ((list(range(36, 42)), 1.0, "unswapped"), ([48, 49, 59, 60, 67], 1.0, "upside down"),
                                 (list(range(48, 68)), 0.7, "alone")):
        img = patched(points, alpha)
        res = net(img, lm)
        crop = cv2.warpAffine(img, M, (net.size, net.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = (crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - 0.5) / 0.5
        a, mirror = run(x), run(x[..., ::-1])
        want = part_probabilities(a, mirror)
        for kind, got in (("cov", res.covered), ("occ", res.occluded)):
            assert np.allclose([got[p][0] for p in got], want[kind][0], atol=1e-9)
            assert np.allclose([got[p][1] for p in got], want[kind][1], atol=1e-9)
        other = {"unswapped": lambda: part_probabilities(a, {k: v[:, [1, 0, 2, 3]] if k in parts else v
                                                             for k, v in mirror.items()}),
                 "upside down": lambda: part_probabilities(a, run(x[..., ::-1, :])),
                 "alone": lambda: part_probabilities(a)}[wrong]()
        assert far(other, want) > 0.01, wrong
        out, *_ = network_on_crop(net.model, crop)  # the synthetic benchmark's read: the same mirror
        assert all(np.allclose(out["mirrored"][k], mirror[k], atol=1e-5) for k in parts)
    # a second-stage rejection comes back before the mirror read and the decoding
    calls = []
    model = net.model
    net.model = lambda t: calls.append(t.shape) or model(t)
    try:
        assert net(img, lm, keep=lambda face_p: False) is None and len(calls) == 1
        assert net(img, lm, keep=lambda face_p: True) is not None and len(calls) == 3
    finally:
        net.model = model


def test_one_face_found_twice_is_reported_once():
    """Faces are one when their 68-point boxes overlap (the rule of ``suppress_overlaps``), whatever
    their detector boxes: the clip's frame 276 had one box on the face and one on the ear."""
    from cribsight.pipeline import box_agreement, landmark_box, suppress_overlaps
    from cribsight.types import Face, Landmarks

    def face(box, x0, y0, side, score):
        xy = tuple((x0 + side * (i % 17) / 16, y0 + side * (i // 17) / 3) for i in range(68))
        return Face(box=box, score=score, detector="blazeface_full", landmarks=Landmarks("ibug68", xy))

    on_face = face((217, 214, 447, 444), 219, 206, 222, 0.43)
    on_ear = face((254, 112, 467, 326), 245, 170, 183, 0.45)  # boxes: IoU 0.28, 47% inside - under both rules
    elsewhere = face((762, 139, 1052, 428), 755, 91, 300, 0.6)
    assert landmark_box(on_ear) == (245, 170, 428, 353)
    assert box_agreement(on_face) > 0.8 > 0.6 > box_agreement(on_ear)
    # one of the pair is kept - the box that sits on its own landmarks, not the higher detector score
    kept = suppress_overlaps([on_face, on_ear, elsewhere], box=landmark_box, better=box_agreement)
    assert kept == [on_face, elsewhere]
    assert suppress_overlaps([on_face, on_ear, elsewhere], box=landmark_box) == [on_ear, elsewhere]
    assert suppress_overlaps([on_face, on_ear, elsewhere], box=lambda f: f.box) == [on_face, on_ear, elsewhere]


def test_analyzer_api_for_integrators(analyzer, portrait):
    """What a service meets: one Analyzer shared by threads gives the single-threaded results (and
    per-thread timings); the config given is copied, not changed; labels are checked and converted;
    analyze_frames takes the library's own video frames; bad arguments are typed errors."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from cribsight.io.video import VideoFrame
    from cribsight.pipeline import Analyzer, AnalyzerConfig
    from cribsight.types import FrameResult

    imgs = [np.ascontiguousarray(np.roll(portrait, 9 * i, axis=1)) for i in range(4)]
    want = [analyzer.analyze_image(im, "p").to_json() for im in imgs]
    mine = analyzer.times  # this thread's last call's timings
    threads: set[int] = set()

    def one(i):
        threads.add(threading.get_ident())
        return analyzer.analyze_image(imgs[i % 4], "p").to_json()

    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(one, range(16)))
    assert got == [want[i % 4] for i in range(16)] and len(threads) >= 2
    assert analyzer.times is mine  # the other threads' calls did not replace them

    cfg = AnalyzerConfig()
    a = Analyzer(cfg, model="pretrained", score_thresh=0.6)
    assert (cfg.model, cfg.score_thresh) == ("auto", 0.4) and (a.config.model, a.config.score_thresh) == ("pretrained", 0.6)
    cfg.score_thresh = 5.0  # changing the caller's object later changes nothing
    assert a.config.score_thresh == 0.6

    r = a.analyze_image(portrait, source=Path("dir/p.jpg"), frame=np.int64(3), timestamp_ms=np.float32(2.5))
    assert r.to_json().startswith('{"source":"dir/p.jpg","frame":3,"timestamp_ms":2.5,')
    frames = [VideoFrame(i, i * 100.0, portrait) for i in range(2)]
    assert [(x.frame, x.timestamp_ms) for x in a.analyze_frames(frames, "v")] == [(0, 0.0), (1, 100.0)]
    assert [x.frame for x in a.analyze_frames([(7, 0.0, portrait)], "v")] == [7]
    for bad in (lambda: Analyzer("pretrained"), lambda: Analyzer(rotations=90),
                lambda: a.analyze_image(portrait, source=5), lambda: a.analyze_image(portrait, frame=-1),
                lambda: a.analyze_image(portrait, timestamp_ms="now"), lambda: FrameResult.from_json("{}"),
                lambda: FrameResult.from_json("[1]")):
        with pytest.raises(InputError):
            bad()
