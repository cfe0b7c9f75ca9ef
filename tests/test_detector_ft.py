"""The detector fine-tune's samples and targets (cribsight.train.detector): targets decode back to
their faces through the runtime's own decoder, cut-off and tiny samples are what they say, and the
distillation loss leaves a student equal to its teacher untouched where nothing was added."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")
pytest.importorskip("onnx2torch", reason="the detector fine-tune needs onnx2torch (train extra)")

from cribsight.detect.blazeface import BlazeFace  # noqa: E402
from cribsight.runtime import weight_path  # noqa: E402
from cribsight.train.detector import (SIZE, Face, Net, flip, loss_fn, match_anchors, sample_away,  # noqa: E402
                                      sample_cutoff, sample_tiny, targets)

DET = "face_detection_full_range.onnx"


def _face(x0, y0, x1, y1) -> Face:
    box = np.array([x0, y0, x1, y1], np.float32)
    w, h = x1 - x0, y1 - y0
    kps = np.array([[x0 + 0.3 * w, y0 + 0.4 * h], [x0 + 0.7 * w, y0 + 0.4 * h], [x0 + 0.5 * w, y0 + 0.6 * h],
                    [x0 + 0.5 * w, y0 + 0.8 * h], [x0, y0 + 0.5 * h], [x1, y0 + 0.5 * h]], np.float32)
    return Face(box, kps, 0.9)


@pytest.mark.parametrize("box_px", [(90, 90, 95, 96), (20, 30, 120, 140), (-40, -60, 150, 170)])
def test_targets_decode_to_their_face(box_px):
    # tiny, ordinary and running off the input: the runtime decoder gives the box and keypoints back
    f = _face(*box_px)
    f = Face(f.box / SIZE, f.kps / SIZE, 1.0)
    pos, reg, scale = targets([f])
    assert pos.sum() >= 1
    det = BlazeFace(DET)
    out = det.decode(reg, np.where(pos > 0, 6.0, -12.0), 1.0, 0.0, 0.0)
    assert len(out) == 1
    assert np.allclose(out[0].box_xyxy, np.array(box_px), atol=0.01)
    assert np.allclose(out[0].keypoints_xy, f.kps * SIZE, atol=0.01)
    assert np.isclose(scale[pos > 0][0], max(box_px[2] - box_px[0], box_px[3] - box_px[1]), atol=1e-3)


def test_anchor_matching_is_local():
    small = match_anchors(np.array([0.5, 0.5, 0.52, 0.52]))  # a 4 px face: its nearest anchor
    assert 1 <= len(small) <= 4
    big = match_anchors(np.array([0.2, 0.2, 0.8, 0.8]))  # 115 px: a few anchors round the centre
    assert 4 <= len(big) <= 40


def test_cutoff_samples_run_off_the_frame():
    rng = np.random.default_rng(0)
    photo = np.full((400, 400, 3), 128, np.uint8)
    face = _face(100, 100, 300, 300)
    cut = 0
    for _ in range(60):
        img, faces = sample_cutoff(rng, photo, [face])
        assert img.shape == (SIZE, SIZE, 3)
        b = faces[0].box * SIZE
        content = np.nonzero(img.max(2).max(0) > 0)[0], np.nonzero(img.max(2).max(1) > 0)[0]
        x0, x1, y0, y1 = content[0][0], content[0][-1] + 1, content[1][0], content[1][-1] + 1
        cut += b[0] < x0 - 1 or b[2] > x1 + 1 or b[1] < y0 - 1 or b[3] > y1 + 1
    assert cut >= 50  # nearly always cut by the photo's edge (a window as large as the face may hold it)


def test_tiny_faces_are_tiny_inside_the_photo_and_apart():
    rng = np.random.default_rng(1)
    bg = (np.full((300, 400, 3), 60, np.uint8), [_face(20, 20, 120, 130)])
    donor = (np.full((200, 200, 3), 200, np.uint8), [_face(50, 40, 150, 160)])
    for _ in range(20):
        img, faces = sample_tiny(rng, bg, [donor] * 4)
        assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
        boxes = [f.box * SIZE for f in faces[1:]]
        assert 1 <= len(boxes) <= 4
        for b in boxes:
            assert 4.5 <= b[3] - b[1] <= 16.5  # face height in input pixels
            assert 0 <= b[0] and b[2] <= SIZE and 24 <= b[1] and b[3] <= SIZE - 24  # inside the 400x300 photo's band
        bg_box = faces[0].box * SIZE
        for b in boxes:  # never pasted onto the background's own face
            assert b[2] <= bg_box[0] or b[0] >= bg_box[2] or b[3] <= bg_box[1] or b[1] >= bg_box[3]


def test_away_samples_hold_no_part_of_the_face():
    rng = np.random.default_rng(2)
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[100:160, 180:240] = 255  # the face, grown by its size: x 120-300, y 40-220
    img, faces = sample_away(rng, photo, [_face(180, 100, 240, 160)])
    assert faces == [] and img.max() == 0  # the largest strip: x 0-120 (or 300-400), all of it dark
    assert sample_away(rng, photo[60:200, 150:270], [_face(30, 40, 90, 100)]) is None  # no strip 48 px wide


def test_flip_swaps_sides():
    f = _face(10, 20, 50, 70)
    f = Face(f.box / SIZE, f.kps / SIZE, 1.0)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:, :5] = 255
    out, (g,) = flip(img, [f])
    assert out[:, -5:].min() == 255
    assert np.allclose(g.box * SIZE, [SIZE - 50, 20, SIZE - 10, 70], atol=1e-4)
    assert np.allclose(g.kps[0, 0] * SIZE, SIZE - f.kps[1, 0] * SIZE, atol=1e-4)  # right eye <- mirrored left eye


def test_converted_detector_matches_onnx_and_distillation_starts_at_rest():
    import onnxruntime as ort

    path = weight_path(DET)
    net = Net(path).eval()
    torch.manual_seed(0)
    x = torch.rand(2, SIZE, SIZE, 3) * 2 - 1
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for i in range(2):
        reg, logit = sess.run(None, {sess.get_inputs()[0].name: x[i:i + 1].numpy()})
        with torch.no_grad():
            r, lg = net(x[i:i + 1])
        assert np.abs(r.numpy().reshape(-1) - reg.reshape(-1)).max() < 1e-3
        assert np.abs(lg.numpy().reshape(-1) - logit.reshape(-1)).max() < 1e-4
    # a batch is the images one by one
    with torch.no_grad():
        rb, lb = net(x)
        r1, l1 = net(x[1:])
    assert torch.allclose(lb[1], l1[0], atol=1e-5) and torch.allclose(rb[1], r1[0], atol=1e-3)
    # student == teacher, no known face: the classification gradient vanishes and the regression loss is 0
    with torch.no_grad():
        teacher = net(x)
    out = net(x)
    zeros = torch.zeros(2, lb.shape[1])
    cls, regl = loss_fn(out, teacher, zeros, torch.zeros(2, lb.shape[1], 16), torch.ones(2, lb.shape[1]))
    (g,) = torch.autograd.grad(cls, out[1])
    assert g.abs().max() < 1e-5 and float(regl.detach()) == 0.0
    # a known face: pulls its anchors' logits up
    pos = zeros.clone()
    pos[0, 1000] = 1.0
    cls, _ = loss_fn(out, teacher, pos, torch.zeros(2, lb.shape[1], 16), torch.ones(2, lb.shape[1]))
    (g,) = torch.autograd.grad(cls, out[1])
    assert g[0, 1000] < 0 and g.abs().sum() == pytest.approx(g[0, 1000].abs().item(), rel=1e-3)
    # an image known to hold no face: every anchor is pulled down, whatever the teacher says
    cls, _ = loss_fn(out, teacher, zeros, torch.zeros(2, lb.shape[1], 16), torch.ones(2, lb.shape[1]), torch.tensor([0.0, 1.0]))
    (g,) = torch.autograd.grad(cls, out[1])
    assert (g[1] > 0).all() and g[0].abs().max() < 1e-5
