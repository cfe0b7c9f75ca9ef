"""Evaluation reports: a self-contained HTML page (plots embedded, also written as PNG files) and a
Markdown table; ``compare`` puts two runs side by side with their differences.

Needs matplotlib (``pip install 'cribsight[eval]'``).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError

HEADLINES = {
    "syrip-dev": ["visible_faces", "visible_face_recall", "mouth_covered_auroc", "mouth_covered_positives",
                  "mouth_covered_false_alarm_rate", "mouth_covered_recall", "mouth_landmarks_hidden_auroc",
                  "mouth_landmarks_hidden_false_alarm_rate", "mouth_landmarks_hidden_recall",
                  "eyes_covered_false_alarm_rate", "eyes_covered_when_uncovered_seen_rate",
                  "eyes_covered_when_uncovered_not_seen_rate", "eyes_covered_recall", "nose_covered_false_alarm_rate",
                  "nose_occluded_when_uncovered_rate", "mouth_occluded_when_uncovered_rate",
                  "eyes_open_auroc", "eyes_closed_scored", "turned_away_or_face_down", "all_clear_rate_when_turned_away"],
    "video-dev": ["frames", "face_found_rate", "frames_with_more_than_one_face", "eye_right_covered_positives",
                  "eye_right_covered_recall", "eye_right_covered_false_alarm_rate", "eye_right_covered_auroc",
                  "eye_left_covered_false_alarm_rate", "nose_covered_false_alarm_rate", "mouth_covered_positives",
                  "mouth_covered_recall", "mouth_covered_false_alarm_rate", "nose_or_mouth_covered_false_alarm_rate",
                  "eye_left_occluded_when_uncovered_rate", "eye_right_occluded_when_uncovered_rate",
                  "nose_occluded_when_uncovered_rate", "mouth_occluded_when_uncovered_rate", "eyes_open_auroc",
                  "eyes_reported_open_when_open_rate"],
    "synthetic": ["samples", "face_samples", "face_auroc", "covered_f1.eye_left", "covered_f1.eye_right", "covered_f1.nose", "covered_f1.mouth",
                  "covered_f1_two_sided.eye_left", "covered_f1_two_sided.eye_right", "covered_f1_two_sided.nose",
                  "covered_f1_two_sided.mouth",
                  "covered_auroc.nose", "covered_auroc.mouth", "occluded_f1.nose", "occluded_f1.mouth", "part_ece",
                  "visibility_auroc", "visibility_ece", "visibility_fusion", "sigma_visible_px", "sigma_occluded_px", "sigma_ratio_occluded_to_visible",
                  "det_cov_sqrt_ratio_occluded_to_visible",
                  "nme_visible", "nme_occluded", "mask_miou", "pose_mae_mean"],
    "syrip": ["images_scored", "recall", "false_boxes_per_image", "nme3_mean", "nme3_median"],
    "utkface": ["groups.age_0_3.detection_rate", "groups.age_4_plus.detection_rate", "groups.age_0_3.images",
                "groups.age_4_plus.images"],
    "facemask": ["groups.with_mask.detection_rate", "groups.without_mask.detection_rate", "covered.auroc",
                 "covered.f1", "covered.ece", "covered.auroc_found_faces", "covered.found_faces",
                 "never_trained_on.images", "never_trained_on.with_mask_detection_rate", "never_trained_on.covered.auroc",
                 "never_trained_on.covered.f1", "never_trained_on.covered.auroc_found_faces"],
    "aflw2000": ["images", "detected", "nme_interocular_mean", "nme_interocular_median", "auc@0.08",
                 "failure_rate@0.08", "nme_box_mean", "pose_mae_yaw", "pose_mae_pitch", "pose_mae_roll", "pose_mae_mean"],
}


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of a nested result as dotted keys (lists are skipped: curves, not figures)."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif not isinstance(d, list):
        out[prefix[:-1]] = d
    return out


def headline(result: dict) -> dict[str, Any]:
    flat = flatten(result)
    b = result.get("benchmark")
    if b == "aflw2000-so":
        keys = [f"variants.{v}.{m}" for v in result["variants"] for m in ("detected", "nme_interocular_mean", "pose_mae_mean")]
        keys += [k for k in flat if k.startswith("detection.") and k != "detection.n_gt"]
    elif b == "robustness":
        keys = []
        for fam, pts in result["curves"].items():
            for p in pts:
                for m in ("detection_rate", "nme_interocular_mean"):
                    flat[f"{fam}={p['level']}.{m}"] = p[m]
                    keys.append(f"{fam}={p['level']}.{m}")
    else:
        keys = HEADLINES.get(b, [k for k, v in flat.items() if isinstance(v, (int, float))])
    return {k: flat.get(k) for k in keys}


def interval(result: dict | None, key: str) -> list[float] | str | None:
    """The 95% interval stored beside a dotted headline key (``<key>_ci95``, or for ``a.b`` the
    ``b`` entry of a sibling mapping ``a_ci95``): [lo, hi], None where the benchmark could not give
    one (a perfect AUROC), "" where the figure has none."""
    node: Any = result
    parts = key.split(".")
    for p in parts[:-2]:
        node = node.get(p) if isinstance(node, dict) else None
    parent = node
    if len(parts) > 1:
        node = node.get(parts[-2]) if isinstance(node, dict) else None
    name = parts[-1] + "_ci95"
    if isinstance(node, dict) and name in node:
        return node[name]
    sibling = parent.get(parts[-2] + "_ci95") if len(parts) > 1 and isinstance(parent, dict) else None
    return sibling[parts[-1]] if isinstance(sibling, dict) and parts[-1] in sibling else ""


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, list) and len(v) == 2:
        return f"[{v[0]:.3f}, {v[1]:.3f}]"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("matplotlib", "eval") from None
    return plt


def _reliability_fig(plt, rel: dict, xlabel: str, ylabel: str, title: str):
    n = len(rel["count"])
    centres = [(i + 0.5) / n for i in range(n)]
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    count = rel["count"]
    total = max(1, sum(count))
    freq = [f or 0 for f in rel["frequency"]]
    # a bin's opacity follows its share of the samples, and its count is printed: a bin of one
    # sample at frequency 1.0 is not evidence of miscalibration
    colors = [(0.29, 0.5, 0.71, 0.25 + 0.75 * min(1.0, 10 * c / total)) for c in count]
    ax.bar(centres, freq, width=1 / n, color=colors, edgecolor="k", label="observed frequency")
    conf = [(x, c) for x, c, k in zip(centres, rel["confidence"], count) if k]
    ax.plot([x for x, _ in conf], [c for _, c in conf], "o", color="C3", label="mean confidence")
    for x, f, c in zip(centres, freq, count):
        if c:
            ax.text(x, min(f, 1.0) + 0.02, f"n={c}", ha="center", fontsize=6, rotation=90, va="bottom")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(0, 1.25))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return fig


def plots(result: dict, baseline: dict | None = None, labels: tuple[str, str] = ("model", "baseline (pretrained)")
          ) -> list[tuple[str, Any]]:
    """(file stem, matplotlib figure) for one benchmark result; where the plot allows it, the
    baseline (pretrained pipeline) is drawn beside the model."""
    plt = _plt()
    b = result.get("benchmark", "result")
    figs = []
    if b == "syrip":
        fc = result["f1_confidence"]
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for k, style in (("f1", "-"), ("precision", "--"), ("recall", ":")):
            ax.plot(fc["confidence"], fc[k], style, label=k)
        bfc = (baseline or {}).get("f1_confidence")
        if bfc:
            ax.plot(bfc["confidence"], bfc["f1"], "-", color="grey", lw=1, label=f"f1, {labels[1]}")
        ax.axvline(fc["best_threshold"], color="grey", lw=0.8)
        ax.set(xlabel="detector confidence threshold", ylabel="value", ylim=(0, 1.02),
               title=f"SyRIP F1-confidence (best F1 {fc['best_f1']:.3f} at {fc['best_threshold']:.2f})")
        ax.legend()
        figs.append(("syrip_f1_confidence", fig))
        post = result["recall_by_posture"]
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        names = list(post)
        ax.bar(names, [post[n]["recall"] for n in names], color="#4a7fb5")
        for i, n in enumerate(names):
            ax.text(i, post[n]["recall"] + 0.02, f"{post[n]['recall']:.2f}\n(n={post[n]['images']})", ha="center", fontsize=8)
        ax.set(ylim=(0, 1.15), ylabel="face recall", title="SyRIP recall by posture")
        figs.append(("syrip_recall_by_posture", fig))
    elif b in ("utkface", "facemask"):
        g = result["groups"]
        fig, ax = plt.subplots(figsize=(5, 3))
        bg = (baseline or {}).get("groups")
        w = 0.4 if bg else 0.8
        xs = list(range(len(g)))
        ax.bar([x - (w / 2 if bg else 0) for x in xs], [g[k]["detection_rate"] or 0 for k in g], width=w, color="#4a7fb5",
               label=labels[0])
        for i, k in enumerate(g):
            ax.text(i - (w / 2 if bg else 0), (g[k]["detection_rate"] or 0) + 0.02,
                    f"{_fmt(g[k]['detection_rate'])}\n(n={g[k]['images']})", ha="center", fontsize=7)
        if bg:
            vals = [(bg.get(k) or {}).get("detection_rate") or 0 for k in g]
            ax.bar([x + w / 2 for x in xs], vals, width=w, color="#bbbbbb", label=labels[1])
            for i, v in enumerate(vals):
                ax.text(i + w / 2, v + 0.02, _fmt(v), ha="center", fontsize=7)
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(xs, list(g))
        ax.set(ylim=(0, 1.2), ylabel="detection rate", title=f"{b}: faces found")
        figs.append((f"{b}_detection", fig))
        cov = result.get("covered")
        if cov:
            figs.append(("facemask_reliability", _reliability_fig(plt, cov["reliability"], "P(nose or mouth covered)",
                                                                  "fraction masked", f"Reliability (ECE {cov['ece']:.3f})")))
            c = cov["confusion"]
            fig, ax = plt.subplots(figsize=(3.6, 3.2))
            m = [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]
            ax.imshow(m, cmap="Blues")
            for i in range(2):
                for j in range(2):
                    ax.text(j, i, str(m[i][j]), ha="center", va="center")
            ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred clear", "pred covered"],
                   yticklabels=["unmasked", "masked"], title=f"Confusion at {cov['threshold']} (no face found = clear)")
            figs.append(("facemask_confusion", fig))
    elif b == "synthetic" and result.get("part_reliability"):
        figs.append(("synthetic_reliability", _reliability_fig(plt, result["part_reliability"], "predicted part probability",
                                                               "fraction positive", f"Part reliability (ECE {_fmt(result['part_ece'])})")))
    elif b == "aflw2000":
        ced = result["ced_interocular"]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(ced["x"], ced["y"], label=f"{labels[0]} (AUC {_fmt(result['auc@0.08'])})")
        if baseline and baseline.get("ced_interocular"):
            bc = baseline["ced_interocular"]
            ax.plot(bc["x"], bc["y"], "--", color="grey", label=f"{labels[1]} (AUC {_fmt(baseline['auc@0.08'])})")
            ax.legend(fontsize=8, loc="lower right")
        ax.set(xlabel="NME (inter-ocular)", ylabel="fraction of images", ylim=(0, 1.02),
               title=f"AFLW2000 CED (AUC@0.08 {_fmt(result['auc@0.08'])})")
        figs.append(("aflw2000_ced", fig))
    elif b == "aflw2000-so":
        v = result["variants"]
        bv = (baseline or {}).get("variants") or {}
        names = list(v)
        xs = list(range(len(names)))
        w = 0.4 if bv else 0.8
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for a, key, color, label in ((axes[0], "pose_mae_mean", "#b5654a", "pose MAE (deg)"),
                                     (axes[1], "nme_interocular_mean", "#4a7fb5", "NME (inter-ocular)")):
            a.bar([x - (w / 2 if bv else 0) for x in xs], [v[n][key] or 0 for n in names], width=w, color=color, label=labels[0])
            top = max([v[n][key] or 0 for n in names] + [(bv.get(n) or {}).get(key) or 0 for n in names])
            if bv:
                a.bar([x + w / 2 for x in xs], [(bv.get(n) or {}).get(key) or 0 for n in names], width=w, color="#bbbbbb",
                      label=labels[1])
                a.legend(fontsize=7, loc="upper left", ncol=2)
            a.set_ylim(0, 1.3 * top if top > 0 else 1)  # room for the legend above the bars
            a.set_xticks(xs, names)
            a.set(ylabel=label, title=f"AFLW2000-SO {label.split(' (')[0]}")
            a.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        figs.append(("aflw2000_so", fig))
    elif b == "robustness":
        fams = result["curves"]
        bf = (baseline or {}).get("curves") or {}
        fig, axes = plt.subplots(2, len(fams), figsize=(3.2 * len(fams), 5.2), squeeze=False)
        nan = float("nan")
        for j, (fam, pts) in enumerate(fams.items()):
            for curve, style, color, label in ((pts, "o-", None, labels[0]), (bf.get(fam), "s--", "grey", labels[1])):
                if not curve:
                    continue
                lv = [p["level"] for p in curve]
                axes[0, j].plot(lv, [p["detection_rate"] for p in curve], style, color=color or "C0", label=label)
                axes[1, j].plot(lv, [p["nme_interocular_mean"] if p["nme_interocular_mean"] is not None else nan
                                     for p in curve], style, color=color or "C1", label=label)
            axes[0, j].set(title=fam, ylim=(0, 1.05), ylabel="detection rate" if j == 0 else "")
            axes[1, j].set(xlabel=fam, ylabel="NME" if j == 0 else "")
            if fam == "resolution_factor":
                for a in axes[:, j]:
                    a.set_xscale("log", base=2)
                    a.invert_xaxis()
        if bf:
            axes[0, 0].legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        figs.append(("robustness", fig))
    return figs


def _table_html(rows: list[tuple[str, list[Any]]], header: list[str]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr><td>" + html.escape(k) + "</td>" + "".join(f"<td>{_fmt(v)}</td>" for v in vals) + "</tr>"
                   for k, vals in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _table_md(rows: list[tuple[str, list[Any]]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + k + " | " + " | ".join(_fmt(v) for v in vals) + " |" for k, vals in rows]
    return "\n".join(lines)


DESCRIPTIONS = {
    "syrip-dev": "390 SyRIP images labelled by eye by the developers (src/cribsight/eval/syrip_dev_labels.csv). A face "
                 "turned away or face down must never come out 'all clear' (target rate <= 0.05).",
    "video-dev": "Every 5th frame of the real infant clip (../shared/data/video), labelled by eye by the developers "
                 "(src/cribsight/eval/video_dev_labels.csv): a hand passes over the infant's right eye and mouth. One "
                 "infant, correlated frames: intervals are optimistic.",
    "synthetic": "The data engine's held-out set (other faces, seeds and textures; seed-003 rectangles included): "
                 "labels exact by construction.",
    "syrip": "Infant scenes. Recall over images whose nose and both eyes are labelled visible: a face is found when a box "
             "contains the nose and an eye; every other box is a false box. NME3 = mean of nose and eye-centre errors "
             "over sqrt(w h) of the five face keypoints' box.",
    "utkface": "Aligned 200x200 face crops: fraction in which a face is found, infants (0-3) vs older.",
    "facemask": "Real photos with and without a face mask: faces found per folder; P(nose or mouth covered) AUROC/F1 "
                "when the model estimates it.",
    "aflw2000": "68-point NME (inter-ocular = outer eye corners; box = sqrt(w h) of the points), AUC and failure rate at "
                "0.08, pose MAE in degrees against Pose_Para.",
    "aflw2000-so": "AFLW2000 with the seed-003 rectangle occlusions: 40% of the face box removed on the image left, top, "
                   "image right, bottom, or a centred 40% block. Detection (seed 001 metrics) against the 68 points' box, "
                   "which has no forehead, so mAP@0.5:0.95 is low by construction; recall by variant = by difficulty tier.",
    "robustness": "AFLW2000 under Gaussian noise, blur, lower resolution and infrared simulation (seed 002 Fig. 5 style). "
                  "NME and pose MAE are over the faces still found, so they can fall when only the easy faces survive.",
}


def _matrix(result: dict) -> tuple[list[tuple[str, list[Any]]], list[str]] | None:
    """Wide tables for the benchmarks whose figures form a grid."""
    b = result.get("benchmark")
    if b == "aflw2000-so":
        cols = ["detected", "nme_interocular_mean", "pose_mae_yaw", "pose_mae_pitch", "pose_mae_roll", "pose_mae_mean"]
        return [(v, [r[c] for c in cols]) for v, r in result["variants"].items()], ["occluded part"] + cols
    if b == "robustness":
        cols = ["detection_rate", "nme_interocular_mean", "pose_mae_mean"]
        rows = [(f"{fam} = {p['level']}", [p[c] for c in cols]) for fam, pts in result["curves"].items() for p in pts]
        return rows, ["condition"] + cols
    return None


def _rows(result: dict, baseline: dict | None, labels: tuple[str, str] = ("model", "baseline (pretrained)")
          ) -> tuple[list[tuple[str, list[Any]]], list[str]]:
    a = headline(result)
    if baseline is None:
        return [(k, [v, interval(result, k)]) for k, v in a.items()], ["figure", "value", "95% interval"]
    b = headline(baseline)
    rows = []
    for k, v in a.items():
        bv = b.get(k)
        diff = v - bv if isinstance(v, (int, float)) and isinstance(bv, (int, float)) else None
        rows.append((k, [v, interval(result, k), bv, interval(baseline, k), diff]))
    return rows, ["figure", labels[0], "95% interval", labels[1], "95% interval", f"{labels[0]} - {labels[1]}"]


CSS = """body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 14px}td,th{border:1px solid #ccc;padding:3px 9px;text-align:right;font-size:13px}
td:first-child,th:first-child{text-align:left}th{background:#f1f4f8}img{max-width:100%;margin:4px 8px 4px 0;border:1px solid #eee;vertical-align:top}
.note{color:#555;font-size:13px}"""


def write_report(results: list[dict], out_dir: Path, title: str = "cribsight evaluation",
                 baselines: list[dict | None] | None = None, notes: list[str] | None = None,
                 labels: tuple[str, str] = ("model", "baseline (pretrained)")) -> Path:
    """Write ``report.html``, ``report.md``, ``results.json`` and one PNG per plot into ``out_dir``;
    ``labels`` name the results and their baselines in tables and plots."""
    plt = _plt()
    out_dir.mkdir(parents=True, exist_ok=True)
    baselines = baselines or [None] * len(results)
    parts_html = [f"<h1>{html.escape(title)}</h1>"]
    parts_md = [f"# {title}\n"]
    for n in notes or []:
        parts_html.append(f"<p class='note'>{html.escape(n)}</p>")
        parts_md.append(f"_{n}_\n")
    for res, base in zip(results, baselines):
        name = res.get("benchmark", "result")
        rows, header = (_matrix(res) if base is None else None) or _rows(res, base, labels)
        desc = DESCRIPTIONS.get(name, "")
        parts_html.append(f"<h2>{html.escape(name)}</h2><p class='note'>{html.escape(desc)}</p>" + _table_html(rows, header))
        parts_md.append(f"## {name}\n\n{desc}\n\n" + _table_md(rows, header) + "\n")
        for note_key in ("covered_note",):
            if res.get(note_key):
                parts_html.append(f"<p class='note'>{html.escape(res[note_key])}</p>")
                parts_md.append(f"_{res[note_key]}_\n")
        if res.get("failed"):
            parts_html.append(f"<p class='note'>{len(res['failed'])} inputs failed; first: {html.escape(res['failed'][0])}</p>")
        for stem, fig in plots(res, base, labels):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            png = buf.getvalue()
            (out_dir / f"{stem}.png").write_bytes(png)
            parts_html.append(f"<img alt='{stem}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
            parts_md.append(f"![{stem}]({stem}.png)\n")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>{''.join(parts_html)}</body></html>"
    (out_dir / "report.html").write_text(page)
    (out_dir / "report.md").write_text("\n".join(parts_md))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return out_dir / "report.html"


def compare(a: list[dict] | dict, b: list[dict] | dict) -> list[tuple[str, Any, Any, Any, Any, Any]]:
    """Side-by-side figures of two runs (as written by ``--json`` or ``results.json``): rows of
    (benchmark: figure, A, A's 95% interval, B, B's interval, A - B) - the report's difference too."""
    a_list = a if isinstance(a, list) else [a]
    b_list = b if isinstance(b, list) else [b]
    by_name = {r.get("benchmark"): r for r in b_list}
    rows = []
    for ra in a_list:
        rb = by_name.get(ra.get("benchmark"))
        ha, hb = headline(ra), headline(rb) if rb else {}
        for k in ha:
            va, vb = ha[k], hb.get(k)
            d = va - vb if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
            rows.append((f"{ra.get('benchmark')}: {k}", va, interval(ra, k), vb, interval(rb, k), d))
    return rows
