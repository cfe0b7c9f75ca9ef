import json

from cribsight.types import PART_NAMES, Face, FrameResult, Landmarks, Pose, Probability


def _frame():
    lm = Landmarks("ibug68", tuple((float(i), float(2 * i)) for i in range(68)))
    face = Face(box=(1.0, 2.0, 30.5, 40.25), score=0.93, detector="blazeface_full", landmarks=lm,
                pose=Pose(10.5, -3.25, 1.0), eyes_open=Probability(0.8, None))
    return FrameResult("a.jpg", 3, 100.0, 640, 480, (face,), ())


def test_contract_keys_and_nulls():
    d = json.loads(_frame().to_json())
    assert list(d) == ["source", "frame", "timestamp_ms", "width", "height", "faces", "alerts"]
    f = d["faces"][0]
    assert set(f) == {"box", "score", "detector", "track_id", "landmarks", "pose", "eyes_open", "parts", "occlusion"}
    assert f["landmarks"]["sigma"] is None and f["landmarks"]["visible"] is None
    assert len(f["landmarks"]["xy"]) == 68
    assert set(f["parts"]) == set(PART_NAMES)
    assert all(v is None for p in f["parts"].values() for v in p.values())
    assert f["occlusion"] == {"visible_fraction": None, "mask": None}
    assert f["pose"]["sigma"] is None and f["eyes_open"]["sigma"] is None


def test_json_round_trip():
    fr = _frame()
    back = FrameResult.from_json(fr.to_json())
    assert back.to_json() == fr.to_json()
    assert back.faces[0].landmarks.xy[5] == (5.0, 10.0)


def test_no_face_is_empty_list():
    d = json.loads(FrameResult("b.png", 0, 0.0, 10, 10).to_json())
    assert d["faces"] == [] and d["alerts"] == []


def test_non_finite_values_become_null():
    d = json.loads(FrameResult("c.png", 0, float("nan"), 10, 10).to_json())
    assert d["timestamp_ms"] is None
