import math

import numpy as np
import pytest

from cribsight import geometry as G
from cribsight.errors import InputError


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, 0, 0), (0, 20, 0), (0, 0, -15), (40, -25, 10), (-80, 30, 170)])
def test_euler_round_trip(ypr):
    R = G.matrix_from_euler(*ypr)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(G.euler_from_matrix(R), ypr, atol=1e-9)


def test_euler_sign_conventions():
    # out-of-face direction in camera coordinates is -z of the head frame
    out = lambda R: R @ np.array([0.0, 0.0, -1.0])  # noqa: E731
    assert out(G.matrix_from_euler(30, 0, 0))[0] < 0  # yaw > 0: the face turns towards the image left
    assert out(G.matrix_from_euler(0, 20, 0))[1] < 0  # pitch > 0: looks up (image y points down)
    # roll > 0: clockwise on screen, the subject's left side (head +x) moves down
    x_axis = G.matrix_from_euler(0, 0, 25) @ np.array([1.0, 0, 0])
    assert x_axis[1] > 0 and np.isclose(math.degrees(math.atan2(x_axis[1], x_axis[0])), 25)


def test_rot6d_gram_schmidt():
    R = G.matrix_from_euler(33, -12, 71)
    assert np.allclose(G.rot6d_to_matrix(G.matrix_to_rot6d(R)), R, atol=1e-12)
    # a non-orthogonal, unnormalised 6D input: b1 = a1/|a1|, b2 = the part of a2 orthogonal to b1
    R2 = G.rot6d_to_matrix(np.array([2.0, 0, 0, 1.0, 3.0, 0]))
    assert np.allclose(R2, np.eye(3))
    batch = G.rot6d_to_matrix(np.random.default_rng(0).normal(size=(5, 6)))
    assert np.allclose(batch @ np.swapaxes(batch, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(batch), 1.0)


def test_geodesic_distance():
    assert G.geodesic_deg(np.eye(3), G.rot_z(math.radians(40))) == pytest.approx(40)
    assert G.geodesic_deg(G.matrix_from_euler(10, 0, 0), G.matrix_from_euler(-20, 0, 0)) == pytest.approx(30)


def test_box_iou_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert np.allclose(G.box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_rotated_rect_affine_centre_and_axes():
    m = G.rotated_rect_affine((100.0, 50.0), 64.0, 0.0, 32)
    # the rectangle's centre maps to the crop centre (15.5, 15.5 in pixel-centre coordinates)
    assert np.allclose(G.apply_affine(m, [[100.0, 50.0]]), [[15.5, 15.5]])
    # with angle a, the crop x axis points along (cos a, -sin a): a point 32 px along it lands 16 crop px right
    a = math.radians(30)
    m = G.rotated_rect_affine((0.0, 0.0), 64.0, a, 32)
    p = np.array([[32 * math.cos(a), -32 * math.sin(a)]])
    assert np.allclose(G.apply_affine(m, p), [[31.5, 15.5]])
    with pytest.raises(InputError):
        G.rotated_rect_affine((0, 0), 0, 0, 32)


def test_pnp_recovers_known_pose():
    from cribsight.runtime import WEIGHTS_DIR

    model = np.load(WEIGHTS_DIR / "canonical_face_468.npy").astype(np.float64) * [1, -1, -1]
    R = G.matrix_from_euler(25, -10, 8)
    t = np.array([3.0, -2.0, 60.0])
    K = G.camera_matrix(640, 480)
    cam = model @ R.T + t
    uv = cam[:, :2] / cam[:, 2:] * K[0, 0] + K[:2, 2]
    R_est, t_est, rms = G.solve_head_pose(uv, model, 640, 480)
    assert rms < 1e-3
    assert np.allclose(G.euler_from_matrix(R_est), (25, -10, 8), atol=1e-3)
    assert np.allclose(t_est, t, atol=1e-2)
