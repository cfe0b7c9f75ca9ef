import numpy as np

from cribsight import schema
from cribsight.runtime import WEIGHTS_DIR


def test_groups_partition_68_points():
    allidx = sorted(i for g in schema.IBUG68_GROUPS.values() for i in g)
    assert allidx == list(range(68))


def test_flip_pairs_are_an_involution_and_swap_eyes():
    f = np.array(schema.IBUG68_FLIP)
    assert sorted(f) == list(range(68))
    assert np.array_equal(f[f], np.arange(68))
    assert sorted(f[list(schema.IBUG68_GROUPS["eye_right"])]) == list(schema.IBUG68_GROUPS["eye_left"])
    assert f[30] == 30 and f[8] == 8 and f[0] == 16 and f[36] == 45 and f[48] == 54


def test_mesh_to_ibug68_table_is_valid():
    t = np.array(schema.MESH468_TO_IBUG68)
    assert t.shape == (68,) and t.min() >= 0 and t.max() < 468
    assert len(set(t.tolist())) == 68  # no vertex serves two iBUG points


def test_mesh_to_ibug68_is_mirror_consistent_on_the_canonical_face():
    # The canonical face is left-right symmetric (x -> -x). A correct table maps each iBUG point and
    # its flip partner to mirror-image vertices, and puts the subject's right side at x < 0.
    canon = np.load(WEIGHTS_DIR / "canonical_face_468.npy").astype(np.float64)
    pts = canon[list(schema.MESH468_TO_IBUG68)]
    flip = list(schema.IBUG68_FLIP)
    mirrored = pts[flip] * [-1, 1, 1]
    assert np.median(np.linalg.norm(pts - mirrored, axis=1)) < 0.5  # cm, on a face ~15 cm wide
    assert pts[0, 0] < 0 < pts[16, 0]  # jaw runs from the subject's right to left
    assert pts[36:42, 0].mean() < 0 < pts[42:48, 0].mean()  # 36-41 is the subject's right eye
    assert pts[8, 1] < pts[30, 1] < pts[27, 1]  # chin below nose tip below nose bridge (y up)
