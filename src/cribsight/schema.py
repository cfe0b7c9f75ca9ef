"""Landmark schemes, part groups and flip pairs.

iBUG-68 (0-based): 0-16 jaw (subject's right to left, i.e. image left to right in a frontal view),
17-21 right brow, 22-26 left brow, 27-30 nose bridge, 31-35 nostrils, 36-41 right eye, 42-47 left
eye, 48-59 outer lip, 60-67 inner lip. "Right" is the subject's own right (image left).
"""
from __future__ import annotations

IBUG68 = "ibug68"

IBUG68_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "brow_right": tuple(range(17, 22)),
    "brow_left": tuple(range(22, 27)),
    "nose": tuple(range(27, 36)),
    "eye_right": tuple(range(36, 42)),
    "eye_left": tuple(range(42, 48)),
    "mouth": tuple(range(48, 68)),
}

# Horizontal-flip partner of each iBUG-68 point.
IBUG68_FLIP: tuple[int, ...] = (
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,  # jaw
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  # brows
    27, 28, 29, 30,  # bridge
    35, 34, 33, 32, 31,  # nostrils
    45, 44, 43, 42, 47, 46,  # right eye -> left eye
    39, 38, 37, 36, 41, 40,  # left eye -> right eye
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lip
    64, 63, 62, 61, 60, 67, 66, 65,  # inner lip
)

# MediaPipe face mesh (468 vertices) -> iBUG-68. Derived from data, not by hand:
# tools/derive_mesh_to_ibug68.py picks, for each iBUG point, the mesh vertex nearest on average to
# the AFLW2000-3D ground truth (../shared/data/aflw2000_sample, 16 images, inter-ocular normalised);
# its leave-one-image-out NME is reported in docs/landmarks.md.
MESH468_TO_IBUG68: tuple[int, ...] = (
    234, 93, 132, 58, 172, 136, 149, 176, 152, 400, 378, 365, 397, 288, 361, 323, 356,  # jaw
    70, 63, 52, 65, 107, 336, 295, 282, 283, 276,  # brows
    6, 197, 5, 4, 240, 99, 2, 328, 305,  # nose
    7, 160, 158, 155, 153, 144, 362, 385, 386, 249, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 306, 404, 315, 16, 85, 90,  # outer lip
    62, 81, 13, 312, 292, 317, 14, 178,  # inner lip
)

# Mesh vertices of the eye contours used for the eye aspect ratio (6 points per eye, iBUG order
# p1 outer corner .. p4 inner corner for the right eye): taken from the table above.
EAR_RIGHT = (36, 37, 38, 39, 40, 41)
EAR_LEFT = (42, 43, 44, 45, 46, 47)
