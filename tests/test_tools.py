"""tools/tune_second_stage.py's replay of the acceptance rule and its written-down selection rule,
on hand-made detection records whose outcome under every setting is known."""
import importlib.util
from pathlib import Path

import pytest

from cribsight.pipeline import AnalyzerConfig

TOOL = Path(__file__).resolve().parents[1] / "tools" / "tune_second_stage.py"


@pytest.fixture(scope="module")
def tune():
    spec = importlib.util.spec_from_file_location("tune_second_stage", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def det(box, score, presence, face_p):
    return {"box": box, "score": score, "presence": presence, "face_p": face_p, "covered": 0.0}


KP = [[50, 50], [40, 40], [60, 40]]  # nose, eyes
FACE_BOX = [0, 0, 100, 100]
DATA = {
    "syrip": [
        {"kp": KP, "passes": [[det(FACE_BOX, 0.8, 0.9, 0.95)]]},  # a plain face: every setting keeps it
        {"kp": KP, "passes": [[det(FACE_BOX, 0.35, 0.1, 0.98)]]},  # doubtful face: candidate <= 0.3, verify <= 0.97
        {"kp": KP, "passes": [[det([200, 200, 300, 300], 0.8, 0.9, 0.3)]]},  # false box: gone at reject 0.5
        {"kp": KP, "passes": [[]]},
    ],
    "with_mask": [
        {"passes": [[], [det(FACE_BOX, 0.35, 0.0, 0.6)]]},  # found by a later pass at verify 0.5
        {"passes": [[det(FACE_BOX, 0.9, 0.9, 0.99)]]},
    ],
    "without_mask": [{"passes": [[det(FACE_BOX, 0.9, 0.9, 0.99)]]}],
    "utkface": [{"passes": [[det(FACE_BOX, 0.9, 0.9, 0.99)]]}],
}


def test_scores_replay_the_acceptance_rule(tune):
    first_only = tune.scores(DATA, AnalyzerConfig(candidate_score=0.4, verify_face=0.0, reject_face=0.0))
    assert first_only == {"recall": 0.25, "false_boxes": 0.25, "with_mask": 0.5, "without_mask": 1.0, "utkface": 1.0}
    loose = tune.scores(DATA, AnalyzerConfig(candidate_score=0.3, verify_face=0.5, reject_face=0.5))
    assert loose == {"recall": 0.5, "false_boxes": 0.0, "with_mask": 1.0, "without_mask": 1.0, "utkface": 1.0}
    # halves by position: half 0 is the plain face and the false box, half 1 the doubtful face and nothing
    assert tune.scores(DATA, AnalyzerConfig(candidate_score=0.3, verify_face=0.97, reject_face=0.2), fold=0)["false_boxes"] == 0.5
    assert tune.scores(DATA, AnalyzerConfig(candidate_score=0.3, verify_face=0.97, reject_face=0.2), fold=1)["recall"] == 0.5


def test_pick_maximises_faces_under_the_false_box_bound(tune):
    cfg = tune.pick(DATA)
    assert (cfg.candidate_score, cfg.verify_face, cfg.reject_face) == (0.3, 0.5, 0.5)
    # half 1 (the doubtful face, the empty scene, the plain masked face) has no false box to drop:
    # the first setting in grid order that keeps the doubtful face wins, with no rejection
    cfg1 = tune.pick(DATA, fold=1)
    assert (cfg1.candidate_score, cfg1.verify_face, cfg1.reject_face) == (0.3, 0.5, 0.0)
    no_way = {**DATA, "syrip": [{"kp": KP, "passes": [[det([200, 200, 300, 300], 0.8, 0.9, 0.9)]]}]}
    assert tune.pick(no_way) is None
