"""Print the final validation figures of training runs side by side as a Markdown table.

    python tools/compare_runs.py runs/compare/*

Each run folder holds ``metrics.json`` (written by ``cribsight train``); the table shows the last
validation of each run, the seconds per training step over the run, and the figures every model
family shares (a figure a model does not estimate is '-').
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = [("nme_interocular", "NME"), ("pose_mae", "pose MAE"), ("visibility_auroc", "visibility AUROC"),
        ("sigma_visible", "sigma vis"), ("sigma_occluded", "sigma occ"), ("covered_f1.nose", "covered F1 nose"),
        ("covered_f1.mouth", "covered F1 mouth"), ("covered_auroc.nose", "covered AUROC nose"),
        ("covered_auroc.mouth", "covered AUROC mouth"), ("part_ece", "part ECE"), ("face_auroc", "face AUROC")]


def row(run: Path) -> list[str]:
    m = json.loads((run / "metrics.json").read_text())
    val = m["val"][-1]
    tr = m["train"]
    sec = tr[-1]["sec"] / tr[-1]["step"] if tr else float("nan")
    cells = [run.name, str(val["step"]), f"{sec:.2f}"]
    for k, _ in KEYS:
        v = val.get(k)
        cells.append("-" if v is None else f"{v:.3f}")
    return cells


def main(argv: list[str]) -> int:
    runs = [Path(a) for a in argv if (Path(a) / "metrics.json").is_file()]
    if not runs:
        print("no run folders with metrics.json given", file=sys.stderr)
        return 2
    header = ["run", "steps", "s/step"] + [h for _, h in KEYS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in runs:
        print("| " + " | ".join(row(r)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
