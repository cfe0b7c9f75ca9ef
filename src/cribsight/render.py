"""Drawing of results on images: boxes, 68 landmarks, head-pose axes, labels."""
from __future__ import annotations

import cv2
import numpy as np

from .geometry import matrix_from_euler
from .types import Face, FrameResult


def draw_face(img_bgr: np.ndarray, face: Face) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    size = max(x2 - x1, y2 - y1)
    th = max(1, size // 80)
    cv2.rectangle(img_bgr, (x1, y1), (x2, y2), (0, 200, 255), th, cv2.LINE_AA)
    label = f"{face.score:.2f}"
    if face.occlusion is not None and face.occlusion.mask:
        for poly in face.occlusion.mask:
            pts = np.round(np.asarray(poly)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img_bgr, [pts], True, (255, 0, 255), th, cv2.LINE_AA)
    if face.landmarks is not None:
        lm = np.asarray(face.landmarks.xy)
        vis = face.landmarks.visible
        r = max(1, size // 90)
        for i, (x, y) in enumerate(lm):
            colour = (80, 255, 80) if vis is None or vis[i] >= 0.5 else (60, 60, 255)  # BGR: green seen, red hidden
            cv2.circle(img_bgr, (int(round(x)), int(round(y))), r, colour, -1, cv2.LINE_AA)
        if face.pose is not None:
            R = matrix_from_euler(face.pose.yaw, face.pose.pitch, face.pose.roll)
            origin = lm[30]
            length = 0.5 * size
            # head axes in the camera frame (orthographic projection): x subject's left (red),
            # up = -y (green), out of the face = -z (blue)
            for axis, colour in ((R[:, 0], (0, 0, 255)), (-R[:, 1], (0, 255, 0)), (-R[:, 2], (255, 0, 0))):
                end = origin + length * axis[:2]
                cv2.line(img_bgr, tuple(int(round(v)) for v in origin), tuple(int(round(v)) for v in end),
                         colour, max(1, th), cv2.LINE_AA)
            label += f" y{face.pose.yaw:+.0f} p{face.pose.pitch:+.0f} r{face.pose.roll:+.0f}"
    if face.eyes_open is not None:
        label += f" eyes {face.eyes_open.p:.2f}"
    scale = max(0.4, size / 300)
    lines = [label]
    if face.parts:
        for name, st in face.parts.items():
            if st.covered is not None and st.covered >= 0.5:
                lines.append(f"{name} COVERED {st.covered:.2f}")
            elif st.occluded is not None and st.occluded >= 0.5:
                lines.append(f"{name} occluded {st.occluded:.2f}")
    step = int(22 * scale) + 4
    for k, text in enumerate(lines):
        y = max(12, y1 - 6) if k == 0 else y2 + k * step
        colour = (255, 255, 255) if k == 0 else (80, 80, 255)
        cv2.putText(img_bgr, text, (x1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img_bgr, text, (x1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def render(image_rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    """Return an RGB copy of the image with every face drawn."""
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    for f in result.faces:
        draw_face(bgr, f)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
