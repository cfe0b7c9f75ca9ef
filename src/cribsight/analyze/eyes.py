"""Eyes open from the eye aspect ratio (EAR) of the iBUG-68 eye contours - a first estimate.

EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) per eye (Soukupova and Cech, 2016), on iBUG points
36-41 (right eye) and 42-47 (left eye). p(open) = sigmoid((EAR - EAR_MID) / EAR_SLOPE).

Limits (documented, not hidden):
* The face mesh draws an eye contour even where the eye is hidden by a blanket or a hand, so a
  covered eye can look "closed". We therefore report ``None`` (unknown) when the face is turned so
  far that an eye is self-occluded (|yaw| > 45 degrees uses only the nearer eye; |yaw| > 70 or
  |pitch| > 45 gives None) or when the mesh presence score is below 0.9 (partly hidden face).
* EAR depends on eye shape; infants' eyes read somewhat rounder. The mid-point 0.20 and slope 0.03
  are the usual adult figures; ``sigma`` is None because nothing here estimates it.
"""
from __future__ import annotations

import math

import numpy as np

from ..types import Probability

EAR_MID = 0.20
EAR_SLOPE = 0.03


def eye_aspect_ratio(p: np.ndarray) -> float:
    p = np.asarray(p, np.float64)
    horiz = np.linalg.norm(p[0] - p[3])
    if horiz <= 1e-9:
        return float("nan")
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * horiz))


def eyes_open_from_landmarks(lm68: np.ndarray, yaw_deg: float, pitch_deg: float, presence: float) -> Probability | None:
    if presence < 0.9 or abs(yaw_deg) > 70 or abs(pitch_deg) > 45:
        return None
    right = eye_aspect_ratio(lm68[36:42])
    left = eye_aspect_ratio(lm68[42:48])
    if abs(yaw_deg) > 45:
        # yaw > 0: face turned towards the image left, the subject's left eye (image right) is nearer
        ear = left if yaw_deg > 0 else right
    else:
        ear = (left + right) / 2
    if not math.isfinite(ear):
        return None
    return Probability(1.0 / (1.0 + math.exp(-(ear - EAR_MID) / EAR_SLOPE)), None)
