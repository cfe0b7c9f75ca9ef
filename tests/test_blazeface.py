import numpy as np

from cribsight.detect.blazeface import letterbox, ssd_anchors, weighted_nms


def test_anchor_counts_and_centres():
    short = ssd_anchors(128, [8, 16, 16, 16], 1.0)
    full = ssd_anchors(192, [4], 0.0)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # first stride-8 cell has two anchors at (0.5/16, 0.5/16); the stride-16 block has 6 per cell
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(full[1], [1.5 / 48, 0.5 / 48]) and np.allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decode_known_regression(analyzer):
    det = analyzer.full
    S = det.size
    reg = np.zeros((2304, 16), np.float32)
    logit = np.full(2304, -20.0, np.float32)
    a = 48 * 20 + 30  # anchor at cell (x=30, y=20)
    logit[a] = 3.0
    reg[a, :4] = [4.0, -2.0, 40.0, 30.0]  # dx, dy, w, h in input pixels
    reg[a, 4:6] = [-8.0, -6.0]  # right-eye offset
    dets = det.decode(reg, logit, scale=1.0, px=0.0, py=0.0)
    assert len(dets) == 1
    xc, yc = (30.5 / 48) * S + 4.0, (20.5 / 48) * S - 2.0
    assert np.allclose(dets[0].box_xyxy, [xc - 20, yc - 15, xc + 20, yc + 15], atol=1e-3)
    assert np.allclose(dets[0].keypoints_xy[0], [(30.5 / 48) * S - 8, (20.5 / 48) * S - 6], atol=1e-3)
    assert np.isclose(dets[0].score, 1 / (1 + np.exp(-3.0)))


def test_weighted_nms_blends_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    kps = np.zeros((3, 6, 2))
    kps[1] += 1.0
    scores = np.array([0.9, 0.3, 0.8])
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    assert len(s) == 2 and np.allclose(s, [0.9, 0.8])
    assert np.allclose(b[0], [0.25, 0, 10.25, 10])  # (0.9 * 0 + 0.3 * 1) / 1.2
    assert np.allclose(k[0], 0.25)


def test_letterbox_geometry():
    img = np.zeros((100, 400, 3), np.uint8)
    img[:, 200:] = 255
    sq, scale, px, py = letterbox(img, 128)
    assert sq.shape == (128, 128, 3) and scale == 128 / 400 and px == 0 and py == 48
    # original x = (square x - px) / scale: the white half starts at x = 200 -> 64 in the square
    assert sq[64, 70].min() > 200 and sq[64, 58].max() < 50 and sq[10, 64].max() == 0
