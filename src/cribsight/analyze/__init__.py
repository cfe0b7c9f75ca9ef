"""Per-face analysis stages (landmarks, pose, eyes)."""
