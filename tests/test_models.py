"""Every model in its tiny configuration: forward shapes, ONNX export parity, trainer determinism
and resumption, and the runtime decoding of an exported CribNet."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")

from cribsight.train.models import REGISTRY, TINY, build_model  # noqa: E402


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_tiny_forward_shapes(name):
    torch.manual_seed(0)
    m = build_model(name, TINY[name]).eval()
    s = TINY[name]["input_size"]
    out = m(torch.randn(2, 3, s, s))
    assert set(m.OUTPUTS) <= set(out)
    for k, v in out.items():
        assert v.shape[0] == 2 and torch.isfinite(v).all(), k
    if "heatmaps" in out:
        assert out["heatmaps"].shape[1] == 68


def test_lponet_euler_ablation_trains_and_validates(tmp_path):
    # seed 003's ablation: FC 3 Euler angles with the direct loss instead of the 6D rotation
    from cribsight.train.trainer import train

    cfg = dict(TINY["lponet"], pose_6d=False)
    m = build_model("lponet", cfg).eval()
    out = m(torch.randn(2, 3, 64, 64))
    assert m.OUTPUTS == ("heatmaps", "mask", "euler") and out["euler"].shape == (2, 3) and "rot6d" not in out
    c = _cfg(tmp_path, _shards(tmp_path), tmp_path / "run", 3, "lponet")
    c.model_config = cfg
    run = train(c, log=lambda m: None)
    val = json.loads((run / "metrics.json").read_text())["val"][-1]
    assert np.isfinite(val["pose_mae"]) and val["pose_mae"] > 0


def test_mnn_encoder_only_mode():
    m = build_model("mnn", TINY["mnn"]).eval()
    out = m(torch.randn(1, 3, 32, 32), pose_only=True)
    assert set(out) == {"pose6", "pose6_proj"} and out["pose6"].shape == (1, 6)


def _shards(tmp_path, n=24, S=64, seed=0):
    rng = np.random.default_rng(seed)
    d = tmp_path / "shards"
    d.mkdir()
    lm = rng.uniform(10, 54, (n, 68, 2)).astype(np.float32)
    vis = rng.choice([0, 0, 0, 1, 2], (n, 68)).astype(np.int8)
    arrays = {
        "image": rng.integers(0, 255, (n, S, S, 3), dtype=np.uint8), "landmarks": lm, "visibility": vis,
        "pose": rng.uniform(-30, 30, (n, 3)).astype(np.float32), "mask": rng.integers(0, 2, (n, S, S), dtype=np.uint8),
        "face_mask": np.ones((n, S, S), np.uint8), "parts": rng.choice([-1, 0, 1], (n, 4, 2)).astype(np.int8),
        "cover_fraction": np.zeros((n, 4), np.float32), "eyes_open": rng.choice([-1, 0, 1], n).astype(np.int8),
        "family": np.zeros(n, np.int8), "angle": np.zeros(n, np.float32), "infrared": np.zeros(n, bool),
        "flipped": np.zeros(n, bool), "source": np.array(["t"] * n), "face": rng.choice([0, 1, 1], n).astype(np.int8),
    }
    np.savez(d / "shard-00000.npz", **arrays)
    (d / "manifest.json").write_text(json.dumps({"shards": ["shard-00000.npz"]}))
    return d


def _cfg(tmp_path, shards, out, steps, model="cribnet"):
    from cribsight.train.trainer import TrainConfig

    return TrainConfig(model=model, model_config=TINY[model], train=[{"path": str(shards), "ratio": 1.0}], val=str(shards),
                       out=str(out), steps=steps, batch_size=4, lr=1e-3, checkpoint_every=2, val_every=1000, val_limit=8,
                       mc_samples=3, threads=1)


@pytest.mark.parametrize("model", sorted(REGISTRY))
def test_every_model_trains_a_few_steps(tmp_path, model):
    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 3, model), log=lambda m: None)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4 and "loss" in rows[0]
    assert all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    assert (run / "config.yaml").exists() and (run / "checkpoint.pt").exists()
    # the last step is validated with the same figures for every model, so they can be compared
    val = json.loads((run / "metrics.json").read_text())["val"][-1]
    expected = {"bmtl": ["covered_f1.nose", "covered_f1.mouth", "part_ece"],
                "lponet": ["nme_interocular", "pose_mae"],
                "mnn": ["nme_interocular", "pose_mae", "visibility_auroc", "sigma_visible"],
                "kdn": ["nme_interocular", "sigma_visible", "sigma_occluded"],
                "cribnet": ["nme_interocular", "pose_mae", "visibility_auroc", "covered_f1.nose", "sigma_occluded",
                            "face_auroc"]}[model]
    for key in expected:
        assert key in val and np.isfinite(val[key]), (key, val)


def test_a_stopped_or_misconfigured_run_keeps_what_it_had(tmp_path):
    """A run stopped between checkpoints resumes without duplicate metric rows; a save interrupted
    mid-write leaves the last checkpoint whole; a corrupt checkpoint, a changed model_config, a
    stretched schedule or missing data is one typed error, and config.yaml is only written once the
    run has passed those checks."""
    from cribsight.errors import InputError
    from cribsight.train.trainer import TrainConfig, _atomic, train

    shards = _shards(tmp_path)
    run = tmp_path / "run"
    train(_cfg(tmp_path, shards, run, 6), log=lambda m: None, stop_after=4)
    # as if stopped at step 5, between checkpoints: rows of step 5 are in the csv, not in the checkpoint
    with open(run / "metrics.csv", "a") as fh:
        fh.write((run / "metrics.csv").read_text().splitlines()[-1].replace("4,", "5,", 1) + "\n")
    train(_cfg(tmp_path, shards, run, 6), log=lambda m: None)
    steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6]
    run2 = tmp_path / "run2"  # without metrics.json (deleted, an older run): the csv's rows are kept
    train(_cfg(tmp_path, shards, run2, 6), log=lambda m: None, stop_after=4)
    (run2 / "metrics.json").unlink()
    train(_cfg(tmp_path, shards, run2, 6), log=lambda m: None)
    assert [int(r.split(",")[0]) for r in (run2 / "metrics.csv").read_text().splitlines()[1:]] == [1, 2, 3, 4, 5, 6]

    good = (run / "checkpoint.pt").read_bytes()

    def half_then_fail(tmp):
        tmp.write_bytes(good[: len(good) // 2])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic(run / "checkpoint.pt", half_then_fail)
    assert (run / "checkpoint.pt").read_bytes() == good and not (run / "checkpoint.pt.tmp").exists()

    config = (run / "config.yaml").read_text()
    for change, says in ((dict(steps=9), "a one-cycle schedule cannot be stretched"),
                         (dict(model_config=dict(TINY["cribnet"], head_channels=TINY["cribnet"].get("head_channels", 16) * 2)),
                          "expected weights of this model and model_config"),
                         (dict(val=str(tmp_path / "nowhere"), kernel_sigma=2.0), "nowhere")):
        c = _cfg(tmp_path, shards, run, 6)
        for k, v in change.items():
            setattr(c, k, v)
        with pytest.raises(InputError, match=says):
            train(c, log=lambda m: None)
        assert (run / "config.yaml").read_text() == config  # not rewritten by a run that did not start

    (run / "checkpoint.pt").write_bytes(good[:1000])
    with pytest.raises(InputError, match="a file torch cannot load"):
        train(_cfg(tmp_path, shards, run, 6), log=lambda m: None)
    for bad, says in ((dict(steps="six"), "steps: expected int, found 'six'"), (dict(steps=0), "expected a whole number >= 1"),
                      (dict(loss_weights={"landmark": 0}), "expected loss terms from"),
                      (dict(model_config={"head_chanels": 8}), "model_config of cribnet: expected keys from")):
        with pytest.raises(InputError, match=says):
            c = TrainConfig.from_dict(bad)
            from cribsight.train.models import build_model as bm
            bm(c.model, c.model_config)


def test_resume_equals_a_straight_run(tmp_path):
    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    straight = train(_cfg(tmp_path, shards, tmp_path / "a", 6), log=lambda m: None)
    train(_cfg(tmp_path, shards, tmp_path / "b", 6), log=lambda m: None, stop_after=4)  # interrupted at step 4
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 4
    resumed = train(_cfg(tmp_path, shards, tmp_path / "b", 6), log=lambda m: None)
    sa = torch.load(straight / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(resumed / "checkpoint.pt", weights_only=False)["model"]
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k


def test_train_only_changes_the_named_head_and_nothing_else(tmp_path):
    import dataclasses

    from cribsight.errors import InputError
    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    base = train(_cfg(tmp_path, shards, tmp_path / "base", 2), log=lambda m: None)
    cfg = dataclasses.replace(_cfg(tmp_path, shards, tmp_path / "ft", 4), init_from=str(base / "checkpoint.pt"),
                              train_only=["face"])
    ft = train(cfg, log=lambda m: None)
    a = torch.load(base / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(ft / "checkpoint.pt", weights_only=False)["model"]
    moved = {k for k in a if not torch.equal(a[k], b[k])}
    # the face layer learnt; every other weight and every BatchNorm running statistic is as it was
    assert moved and all(k.startswith("face") for k in moved), moved
    assert any(k.endswith("running_mean") for k in a)
    bad = dataclasses.replace(cfg, out=str(tmp_path / "bad"), train_only=["no_such_layer"])
    with pytest.raises(InputError, match="no_such_layer"):
        train(bad, log=lambda m: None)


def test_ignore_part_labels_reads_the_named_sources_parts_as_unknown(tmp_path):
    from cribsight.errors import InputError
    from cribsight.train.data import ShardSet

    d = _shards(tmp_path)
    z = dict(np.load(d / "shard-00000.npz"))
    z["source"] = np.array(["syrip", "utkface"] * 12)
    np.savez(d / "shard-00000.npz", **z)
    idx = [(0, i) for i in range(24)]
    plain = ShardSet([{"path": str(d)}]).batch(idx, 64).parts.numpy()
    b = ShardSet([{"path": str(d)}], ignore_part_labels=["syrip"]).batch(idx, 64)
    parts = b.parts.numpy()
    assert (parts[0::2] == -1).all()  # SyRIP's: all unknown
    assert (parts[1::2] == plain[1::2]).all() and (plain[1::2] != -1).any()  # the others: as stored
    assert (b.eyes_open.numpy() == z["eyes_open"]).all()  # only part labels are dropped
    with pytest.raises(InputError, match="SyRIP"):  # a misspelt source must not silently keep the labels
        ShardSet([{"path": str(d)}], ignore_part_labels=["SyRIP"])
    del z["source"]
    np.savez(d / "shard-00000.npz", **z)
    with pytest.raises(InputError, match="source"):
        ShardSet([{"path": str(d)}], ignore_part_labels=["syrip"]).batch(idx, 64)


def test_covered_unknown_as_negative_reads_the_named_sources_unknown_covers_as_uncovered(tmp_path):
    from cribsight.errors import InputError
    from cribsight.train.data import ShardSet

    d = _shards(tmp_path)
    z = dict(np.load(d / "shard-00000.npz"))
    z["source"] = np.array(["syrip", "utkface"] * 12)
    parts = np.full((24, 4, 2), -1, np.int8)
    parts[:, 0] = [1, 1]  # eye_left occluded and covered
    parts[:, 1] = [1, -1]  # eye_right occluded, cover unknown
    parts[:, 2] = [0, 0]  # nose known uncovered
    z["parts"] = parts  # mouth: both unknown
    np.savez(d / "shard-00000.npz", **z)
    idx = [(0, i) for i in range(24)]
    ss = ShardSet([{"path": str(d)}], covered_unknown_as_negative=["syrip"])
    got = ss.batch(idx, 64).parts.numpy()
    assert (ss.parts[0]["parts"] == parts).all()  # the shards in memory keep their labels
    syrip, other = got[0::2], got[1::2]
    assert (syrip[:, :, 1] == [1, 0, 0, 0]).all()  # unknown covers -> 0, known ones kept
    assert (syrip[:, :, 0] == [1, 1, 0, -1]).all()  # occluded untouched
    assert (other == parts[1::2]).all()  # other sources as stored
    one = ShardSet([{"path": str(d)}], covered_unknown_as_negative="syrip")  # one name without brackets
    assert (one.batch(idx, 64).parts.numpy() == got).all()
    both = ShardSet([{"path": str(d)}], covered_unknown_as_negative=["syrip"], ignore_part_labels=["syrip"])
    assert (both.batch(idx, 64).parts.numpy()[0::2] == -1).all()  # ignoring wins
    with pytest.raises(InputError, match="covered_unknown_as_negative"):
        ShardSet([{"path": str(d)}], covered_unknown_as_negative=["SyRIP"])
    some = ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": ["eye_right"]})
    got = some.batch(idx, 64).parts.numpy()
    assert (got[0::2, :, 1] == [1, 0, 0, -1]).all()  # eye_right named: converted; the mouth stays unknown
    assert (got[1::2] == parts[1::2]).all()  # other sources as stored
    mouth_only = ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": "mouth"})
    assert (mouth_only.batch(idx, 64).parts.numpy()[0::2, :, 1] == [1, -1, 0, 0]).all()  # eye_right stays unknown
    with pytest.raises(InputError, match="lips"):
        ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": ["lips"]})
    with pytest.raises(InputError, match="covered_unknown_as_negative"):
        ShardSet([{"path": str(d)}], covered_unknown_as_negative={"SyRIP": ["mouth"]})
    assert ss.batch(idx, 64).cover_weight is None  # weight 1: the loss's plain Eq. 6
    weighted = ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": {"eye_right": 0.25, "mouth": 1}})
    wb = weighted.batch(idx, 64)
    assert (wb.parts.numpy()[0::2, :, 1] == [1, 0, 0, 0]).all()  # the labels as without a weight
    assert (wb.cover_weight.numpy()[0::2] == [1, 0.25, 1, 1]).all()  # converted eye_right: 0.25; the rest 1
    assert (wb.cover_weight.numpy()[1::2] == 1).all()  # other sources
    for bad in (0, 1.5, -0.1, "high", True):
        with pytest.raises(InputError, match="eye_left"):
            ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": {"eye_left": bad}})
    for bad in (0.1, True):  # a weight without a part
        with pytest.raises(InputError, match="a list of part names or a mapping"):
            ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": bad})
    known = ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": {"nose": 0.5, "mouth": 0.5, "eye_right": 1}})
    kb = known.batch(idx, 64)
    assert (kb.cover_weight.numpy()[0::2] == [1, 1, 1, 0.5]).all()  # the nose's label is known: weight 1
    occ = ShardSet([{"path": str(d)}], occluded_unknown_as_negative={"syrip": {"mouth": 0.1}})
    ob = occ.batch(idx, 64)
    assert (ob.parts.numpy()[0::2, :, 0] == [1, 1, 0, 0]).all()  # the mouth's unknown occluded label -> 0
    assert (ob.parts.numpy()[0::2, :, 1] == parts[0::2, :, 1]).all() and ob.cover_weight is None  # covers as stored
    assert np.allclose(ob.occluded_weight.numpy()[0::2], [1, 1, 1, 0.1]) and (ob.occluded_weight.numpy()[1::2] == 1).all()
    with pytest.raises(InputError, match="occluded_unknown_as_negative"):
        ShardSet([{"path": str(d)}], occluded_unknown_as_negative={"syrip": ["lips"]})


def test_covered_unknown_pitched_down_reweighs_converted_covers_of_crops_looking_down(tmp_path):
    from cribsight.errors import InputError
    from cribsight.train.data import ShardSet

    d = _shards(tmp_path)
    z = dict(np.load(d / "shard-00000.npz"))
    z["source"] = np.array(["syrip", "utkface"] * 12)
    parts = np.full((24, 4, 2), -1, np.int8)
    parts[:, 0] = [1, 1]  # eye_left covered (known)
    z["parts"] = parts  # eye_right, nose, mouth: cover unknown
    pose = np.zeros((24, 3), np.float32)
    pose[:, 1] = np.tile([-30.0, -30.0, -5.0, -5.0], 6)  # crops 0, 1 mod 4 look down; 2, 3 do not
    pose[8, 1] = np.nan  # pose unknown: not looking down
    pose[12, 1] = -20.0  # at the threshold: not below it
    z["pose"] = pose
    np.savez(d / "shard-00000.npz", **z)
    idx = [(0, i) for i in range(24)]
    conv = {"syrip": {"eye_left": 0.1, "eye_right": 0.1, "nose": 1.0, "mouth": 1.0}}
    plain = ShardSet([{"path": str(d)}], covered_unknown_as_negative=conv).batch(idx, 64)
    down = ShardSet([{"path": str(d)}], covered_unknown_as_negative=conv,
                    covered_unknown_pitched_down={"below_deg": -20, "weights": {"eye_left": 1.0, "eye_right": 0.5}})
    b = down.batch(idx, 64)
    assert (b.parts.numpy() == plain.parts.numpy()).all()  # the labels as without it
    w, w0 = b.cover_weight.numpy(), plain.cover_weight.numpy()
    assert np.allclose(w0[0::2], [1, 0.1, 1, 1])  # SyRIP without it: converted eye_right at 0.1
    looking_down = [i for i in range(0, 24, 2) if i % 4 == 0 and i not in (8, 12)]  # SyRIP crops at -30 degrees
    # eye_right converted: 0.5 where looking down; eye_left's cover is known: 1 (not converted)
    assert np.allclose(w[looking_down], [1, 0.5, 1, 1])
    rest = [i for i in range(24) if i not in looking_down]
    assert np.allclose(w[rest], w0[rest])  # level crops, the unknown pose and other sources unchanged
    for bad in ({"below_deg": 10, "weights": {"eye_left": 1}}, {"below_deg": -20, "weights": {"lips": 1}},
                {"below_deg": -20, "weights": {"eye_left": 0}}, {"below_deg": -20}):
        with pytest.raises(InputError, match="covered_unknown_pitched_down"):
            ShardSet([{"path": str(d)}], covered_unknown_as_negative=conv, covered_unknown_pitched_down=bad)
    with pytest.raises(InputError, match="nose"):  # a part no source converts: the weight would do nothing
        ShardSet([{"path": str(d)}], covered_unknown_as_negative={"syrip": ["eye_left"]},
                 covered_unknown_pitched_down={"below_deg": -20, "weights": {"nose": 0.5}})
    with pytest.raises(InputError, match="covered_unknown_as_negative"):  # nothing to reweigh
        ShardSet([{"path": str(d)}], covered_unknown_pitched_down={"below_deg": -20, "weights": {"eye_left": 1}})


def test_occluded_unknown_within_pose_converts_only_frontal_crops(tmp_path):
    from cribsight.errors import InputError
    from cribsight.train.data import ShardSet

    d = _shards(tmp_path)
    z = dict(np.load(d / "shard-00000.npz"))
    z["source"] = np.array(["syrip", "utkface"] * 12)
    parts = np.full((24, 4, 2), -1, np.int8)
    parts[:, 3, 0] = 1  # the mouth's occluded label known (a drawn occluder); the rest unknown
    z["parts"] = parts
    pose = np.zeros((24, 3), np.float32)
    pose[0] = [10, -5, 0]  # frontal
    pose[2] = [-40, 0, 0]  # turned: |yaw| 40 >= 30
    pose[4] = [5, -35, 0]  # face down: pitch below -20
    pose[6] = np.nan  # pose unknown
    pose[8] = [30, 0, 0]  # at the yaw bound: not below it
    pose[10] = [0, -20, 0]  # at the pitch bound: not above it
    pose[12] = [-29, 15, 0]  # within both (looking up)
    z["pose"] = pose
    np.savez(d / "shard-00000.npz", **z)
    idx = [(0, i) for i in range(24)]
    conv = {"syrip": {"nose": 0.1, "mouth": 0.1, "eye_left": 0.1}}
    plain = ShardSet([{"path": str(d)}], occluded_unknown_as_negative=conv).batch(idx, 64)
    gated = ShardSet([{"path": str(d)}], occluded_unknown_as_negative=conv,
                     occluded_unknown_within_pose={"abs_yaw_below": 30, "pitch_above": -20}).batch(idx, 64)
    occ, occ0 = gated.parts.numpy()[:, :, 0], plain.parts.numpy()[:, :, 0]
    assert (occ0[0::2] == [0, -1, 0, 1]).all()  # without the gate every SyRIP crop converts
    for i in (0, 12):  # within the bounds: converted as without the gate
        assert (occ[i] == [0, -1, 0, 1]).all() and np.allclose(gated.occluded_weight.numpy()[i], [0.1, 1, 0.1, 1])
    for i in (2, 4, 6, 8, 10):  # turned, face down, unknown pose, on a bound: unknown labels stay unknown
        assert (occ[i] == [-1, -1, -1, 1]).all()
    assert (occ[1::2] == occ0[1::2]).all()  # other sources as stored
    assert (gated.parts.numpy()[:, :, 1] == plain.parts.numpy()[:, :, 1]).all()  # covers untouched
    for bad in ({"abs_yaw_below": 0, "pitch_above": -20}, {"abs_yaw_below": 30, "pitch_above": 5},
                {"abs_yaw_below": True, "pitch_above": -20}, {"abs_yaw_below": 30}, [30, -20]):
        with pytest.raises(InputError, match="occluded_unknown_within_pose"):
            ShardSet([{"path": str(d)}], occluded_unknown_as_negative=conv, occluded_unknown_within_pose=bad)
    with pytest.raises(InputError, match="occluded_unknown_as_negative"):  # nothing to limit
        ShardSet([{"path": str(d)}], occluded_unknown_within_pose={"abs_yaw_below": 30, "pitch_above": -20})


@pytest.mark.parametrize("model", ["cribnet", "bmtl"])
def test_weighted_converted_covers_reach_the_cover_loss_and_train(tmp_path, model):
    from cribsight.train.data import ShardSet
    from cribsight.train.trainer import compute_losses, train

    shards = _shards(tmp_path)
    idx = [(0, i) for i in range(24)]
    cfg = _cfg(tmp_path, shards, tmp_path / "run", 2, model)
    net = build_model(model, TINY[model]).eval()
    full = ShardSet([{"path": str(shards)}], covered_unknown_as_negative=["t"]).batch(idx, TINY[model]["input_size"])
    light = {p: 0.1 for p in ("eye_left", "eye_right", "nose", "mouth")}
    low = ShardSet([{"path": str(shards)}], covered_unknown_as_negative={"t": light}).batch(idx, TINY[model]["input_size"])
    assert (low.parts == full.parts).all() and low.cover_weight is not None
    with torch.no_grad():
        out = net(full.image)
        a = compute_losses(model, out, full, cfg, torch.Generator().manual_seed(0))
        b = compute_losses(model, out, low, cfg, torch.Generator().manual_seed(0))
    assert a["cov"].item() != pytest.approx(b["cov"].item(), abs=1e-6)  # the weights change the cover term
    assert a["occ"].item() == pytest.approx(b["occ"].item(), abs=1e-9)  # and nothing else
    occ = ShardSet([{"path": str(shards)}], covered_unknown_as_negative=["t"],
                   occluded_unknown_as_negative={"t": light}).batch(idx, TINY[model]["input_size"])
    assert occ.occluded_weight is not None and (occ.parts[:, :, 1] == full.parts[:, :, 1]).all()
    with torch.no_grad():
        c = compute_losses(model, out, occ, cfg, torch.Generator().manual_seed(0))
        c1 = compute_losses(model, out, dataclasses.replace(occ, occluded_weight=None), cfg, torch.Generator().manual_seed(0))
    assert c["occ"].item() != pytest.approx(c1["occ"].item(), abs=1e-6)  # the weights change the occluded term
    assert c["cov"].item() == pytest.approx(a["cov"].item(), abs=1e-9)  # the covers' as before
    across = dataclasses.replace(cfg, label_weights_across_crops=["occ"])
    with torch.no_grad():
        d = compute_losses(model, out, occ, across, torch.Generator().manual_seed(0))
    assert d["occ"].item() < c["occ"].item()  # crops of converted labels at 0.1 now count less
    assert d["cov"].item() == pytest.approx(c["cov"].item(), abs=1e-9)  # only the term named
    if model == "bmtl":  # seed 000's classes: the eyes' cover takes the smaller eye weight
        import dataclasses as dc

        from cribsight.train import losses as L
        from cribsight.train.trainer import _bmtl_labels

        cw = torch.tensor([[0.2, 0.6, 1.0, 0.5]]).repeat(24, 1)
        hand = dc.replace(full, cover_weight=cw)
        with torch.no_grad():
            got = compute_losses(model, out, hand, cfg, torch.Generator().manual_seed(0))["cov"]
            _, cov3 = _bmtl_labels(full.parts)
            gen = torch.Generator().manual_seed(0)
            L.heteroscedastic_mc_loss(out["occ"], out["occ_sigma"], _bmtl_labels(full.parts)[0], cfg.mc_samples, gen)
            want = L.heteroscedastic_mc_loss(out["cov"], out["cov_sigma"], cov3, cfg.mc_samples, gen,
                                             weights=torch.tensor([[0.2, 1.0, 0.5]]).repeat(24, 1))
        assert got.item() == pytest.approx(want.item(), abs=1e-9)
    cfg.covered_unknown_as_negative = {"t": light}
    assert (train(cfg, log=lambda m: None) / "checkpoint.pt").exists()
    from cribsight.errors import InputError

    with pytest.raises(InputError, match="label_weights_across_crops"):
        train(dataclasses.replace(cfg, label_weights_across_crops=["landmarks"]), log=lambda m: None)


@pytest.mark.parametrize("model", sorted(REGISTRY))
def test_onnx_export_parity(tmp_path, model):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    from cribsight.train.trainer import export_onnx, train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 2, model), log=lambda m: None)
    path = export_onnx(run)
    m = build_model(model, TINY[model])
    m.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=False)["model"])
    m.eval()
    s = TINY[model]["input_size"]
    x = torch.randn(2, 3, s, s)
    with torch.no_grad():
        ref = m(x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input": x.numpy()})
    for name, o in zip(m.OUTPUTS, outs):
        assert np.abs(o - ref[name].numpy()).max() <= 1e-4, name
    entry = json.loads(path.with_suffix(".json").read_text())
    assert entry["input"]["shape"] == [1, 3, s, s] and list(entry["outputs"]) == list(m.OUTPUTS)


def test_cribnet_part_regions_start_from_a_checkpoint_without_them_and_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    import dataclasses

    from cribsight.train.trainer import export_onnx, train

    shards = _shards(tmp_path)
    base = train(_cfg(tmp_path, shards, tmp_path / "base", 2), log=lambda m: None)
    sd = torch.load(base / "checkpoint.pt", weights_only=False)["model"]
    plain = build_model("cribnet", TINY["cribnet"])
    plain.load_state_dict(sd)
    regions = build_model("cribnet", {**TINY["cribnet"], "part_regions": True})
    regions.load_state_dict(regions.adapt_state_dict(sd))
    x = torch.randn(3, 3, 64, 64)
    plain.eval(), regions.eval()
    with torch.no_grad():
        a, b = plain(x), regions(x)
    for k in plain.OUTPUTS:  # zero weights on the new inputs: the checkpoint's outputs exactly
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    with pytest.raises(RuntimeError):  # the plain checkpoint alone does not fit the wider layer
        build_model("cribnet", {**TINY["cribnet"], "part_regions": True}).load_state_dict(sd)
    # the part regions move the part outputs once their weights are trained; nothing else moves
    cfg = dataclasses.replace(_cfg(tmp_path, shards, tmp_path / "regions", 3),
                              model_config={**TINY["cribnet"], "part_regions": True},
                              init_from=str(base / "checkpoint.pt"), train_only=["parts"])
    run = train(cfg, log=lambda m: None)
    tuned = build_model("cribnet", {**TINY["cribnet"], "part_regions": True})
    tuned.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=False)["model"])
    tuned.eval()
    assert tuned.parts.weight[:, TINY["cribnet"]["head_channels"]:].abs().sum() > 0
    with torch.no_grad():
        c = tuned(x)
    assert torch.equal(c["heatmaps"], a["heatmaps"]) and torch.equal(c["face"], a["face"])
    sess = ort.InferenceSession(str(export_onnx(run)), providers=["CPUExecutionProvider"])
    for name, o in zip(tuned.OUTPUTS, sess.run(None, {"input": x.numpy()})):
        assert np.abs(o - c[name].numpy()).max() <= 1e-4, name


def test_export_records_where_a_fine_tuned_run_started(tmp_path):
    import dataclasses

    from cribsight.train.trainer import _how_trained, export_onnx, train

    shards = _shards(tmp_path)
    first = train(_cfg(tmp_path, shards, tmp_path / "first", 2), log=lambda m: None)
    entry = json.loads(export_onnx(first).with_suffix(".json").read_text())
    assert "fine_tuned_from" not in entry and _how_trained(entry) == "cribsight train, 2 steps"
    cfg = dataclasses.replace(_cfg(tmp_path, shards, tmp_path / "second", 3), init_from=str(first / "checkpoint.pt"),
                              train_only=["parts"])
    entry = json.loads(export_onnx(train(cfg, log=lambda m: None)).with_suffix(".json").read_text())
    assert entry["steps"] == 3
    assert entry["fine_tuned_from"]["steps"] == 2 and entry["fine_tuned_from"]["train_only"] == ["parts"]
    assert entry["fine_tuned_from"]["checkpoint"].endswith("checkpoint.pt")
    import hashlib

    assert entry["fine_tuned_from"]["sha256"] == hashlib.sha256((first / "checkpoint.pt").read_bytes()).hexdigest()
    assert _how_trained(entry).startswith("cribsight train, 2 steps, then 3 steps training only parts from")



def test_manifest_paths_are_relative_inside_the_working_directory(tmp_path, monkeypatch):
    from cribsight.train.trainer import _shown_path

    (tmp_path / "work" / "runs" / "r").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    assert _shown_path(tmp_path / "work" / "runs" / "r") == str(Path("runs") / "r")
    assert _shown_path(Path("runs/r")) == str(Path("runs") / "r")
    assert _shown_path(tmp_path / "elsewhere" / "checkpoint.pt") == "checkpoint.pt"  # no machine path


def test_synthetic_benchmark_scores_an_exported_model(tmp_path):
    from cribsight.eval import benchmarks as B
    from cribsight.train.trainer import export_onnx, train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 2), log=lambda m: None)
    path = export_onnx(run)
    r = B.synthetic(shards, model=str(path), limit=12)
    assert r["samples"] == 12
    assert 0.0 <= r["visibility_auroc"] <= 1.0 and 0.0 <= r["mask_miou"] <= 1.0
    assert r["sigma_visible_px"] > 0 and 0 < r["pose_mae_mean"] <= 180
    assert set(r["covered_f1"]) == {"eye_left", "eye_right", "nose", "mouth"}
    for part, f1 in r["covered_f1"].items():  # each F1 inside its bootstrap interval, or neither defined
        ci = r["covered_f1_ci95"][part]
        assert (ci is None and math.isnan(f1)) or ci[0] <= f1 <= ci[1]
    # the test shards' one source has uncovered labels too: nothing is left out of the two-sided F1
    assert r["one_sided_sources"] == [] and r["covered_f1_two_sided"] == r["covered_f1"]
    # half the crops from a covered-or-unknown source: the two-sided F1 is the F1 of the other half alone
    z = dict(np.load(shards / "shard-00000.npz"))
    z["source"] = np.array(["syrip", "t"] * 12)
    z["face"] = np.ones(24, np.int8)
    z["parts"][0::2, :, 1] = np.where(z["parts"][0::2, :, 1] == 0, 1, z["parts"][0::2, :, 1])
    mixed, rest = tmp_path / "mixed", tmp_path / "rest"
    for folder, rows in ((mixed, slice(None)), (rest, slice(1, None, 2))):
        folder.mkdir()
        np.savez(folder / "shard-00000.npz", **{k: v[rows] for k, v in z.items()})
        (folder / "manifest.json").write_text(json.dumps({"shards": ["shard-00000.npz"]}))
    rm, rr = B.synthetic(mixed, model=str(path)), B.synthetic(rest, model=str(path))
    assert rm["one_sided_sources"] == ["syrip"] and rm["covered_f1_two_sided"] == rr["covered_f1"]


def test_flip_parts_export_makes_runtime_and_benchmark_read_the_mirror(tmp_path):
    """``cribsight export --flip-parts``: the manifest entry asks for the part outputs averaged over the
    crop and its mirror; the runtime's CribNet and ``eval synthetic`` both apply it, and nothing else
    changes."""
    import subprocess
    import sys

    import cv2

    from cribsight.analyze.cribnet import CribNet, crop_from_landmarks
    from cribsight.analyze.decode import part_probabilities
    from cribsight.eval import benchmarks as B
    from cribsight.geometry import rotated_rect_affine
    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 2), log=lambda m: None)
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--flip-parts"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    path = run / "cribnet.onnx"
    assert json.loads(path.with_suffix(".json").read_text())["part_flip_average"] is True
    net = CribNet(str(path))
    assert net.part_flip_average
    rng = np.random.default_rng(0)
    img = (rng.random((120, 100, 3)) * 255).astype(np.uint8)
    lm = np.stack([rng.uniform(30, 70, 68), rng.uniform(30, 90, 68)], 1)
    res = net(img, lm)
    centre, side, angle = crop_from_landmarks(lm)  # the runtime's crop, by hand
    M = rotated_rect_affine(centre, side, angle, net.size)
    crop = cv2.warpAffine(img, M, (net.size, net.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    x = (crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - 0.5) / 0.5
    a = dict(zip(net.names, net.model(x)))
    b = dict(zip(net.names, net.model(np.ascontiguousarray(x[..., ::-1]))))
    want = part_probabilities(a, b)
    got = np.array([res.covered[p][0] for p in ("eye_left", "eye_right", "nose", "mouth")])
    assert np.allclose(got, want["cov"][0], atol=1e-6)
    assert not np.allclose(got, part_probabilities(a)["cov"][0], atol=1e-6)  # the mirror changed them
    flipped = B.synthetic(shards, model=str(path), limit=12)
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "part_flip_average" not in json.loads(path.with_suffix(".json").read_text())
    plain = B.synthetic(shards, model=str(path), limit=12)
    assert flipped["part_ece"] != plain["part_ece"]  # the parts are read differently
    assert flipped["visibility_auroc"] == plain["visibility_auroc"] and flipped["pose_mae_mean"] == plain["pose_mae_mean"]


def test_flip_parts_needs_part_outputs(tmp_path):
    import subprocess
    import sys

    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 1, "kdn"), log=lambda m: None)  # landmarks only
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--flip-parts"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--flip-parts" in proc.stderr + proc.stdout
    # a refused export leaves no half-made model behind
    assert not list(run.glob("*.onnx")) and sorted(p.name for p in run.glob("*.json")) == ["metrics.json"]
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--out", str(tmp_path / "notes.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "which the export's manifest entry would replace" in proc.stderr.replace("\n", "")
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}' and not (tmp_path / "notes.onnx").exists()
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--out", str(tmp_path / "k.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and json.loads((tmp_path / "k.json").read_text())["model"] == "kdn"
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["k.onnx"]
    ck = (run / "checkpoint.pt").read_bytes()
    for out, says in ((run / "checkpoint.pt", "expected an ONNX file path ending .onnx"), (tmp_path, "found a folder"),
                      (tmp_path / "nofolder" / "x.onnx", f"no folder {tmp_path / 'nofolder'}")):
        proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and says in proc.stderr.replace("\n", "") and "Traceback" not in proc.stderr
    assert (run / "checkpoint.pt").read_bytes() == ck


def test_export_fits_the_visibility_fusion_and_the_benchmark_applies_it(tmp_path):
    """``cribsight export --fit-visibility``: the stored coefficients are the maximum-likelihood
    logistic fit (zero gradient) of the landmark labels on (visibility logit, mask logit at the
    landmark), and ``eval synthetic`` scores exactly that fused probability."""
    import subprocess
    import sys

    from cribsight.analyze.calibrate import visibility_samples
    from cribsight.analyze.decode import sigmoid
    from cribsight.eval import benchmarks as B
    from cribsight.eval.metrics import auroc
    from cribsight.train.trainer import train

    shards = _shards(tmp_path)
    run = train(_cfg(tmp_path, shards, tmp_path / "run", 2), log=lambda m: None)
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "export", str(run), "--fit-visibility", str(shards),
                           "--fit-samples", "12"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "visibility fusion:" in proc.stdout
    path = run / "cribnet.onnx"
    fus = json.loads(path.with_suffix(".json").read_text())["visibility_fusion"]
    X, y = visibility_samples(str(path), shards, 12)
    assert fus["landmarks"] == len(y)
    w = np.array([fus["visibility"], fus["mask"]])
    p = sigmoid(X @ w + fus["bias"])
    grad = np.r_[X.T @ (p - y), (p - y).sum()] / len(y)
    assert np.abs(grad).max() < 1e-4, grad
    r = B.synthetic(shards, model=str(path), limit=12)
    assert r["visibility_fusion"] is True
    assert r["visibility_auroc"] == pytest.approx(auroc(X @ w + fus["bias"], y), abs=1e-12)


def test_install_weights_under_another_name(tmp_path, monkeypatch):
    import hashlib

    import cribsight.runtime as runtime
    from cribsight.errors import InputError
    from cribsight.train.trainer import install_weights

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "manifest.json").write_text(json.dumps({"files": {"cribnet.onnx": {"model": "cribnet", "sha256": "x"}}}))
    monkeypatch.setattr(runtime, "WEIGHTS_DIR", weights)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: cribnet\nmodel_config: {width: 0.75}\n")
    onnx = run / "cribnet.onnx"
    onnx.write_bytes(b"not really a network")
    onnx.with_suffix(".json").write_text(json.dumps({"model": "cribnet", "steps": 3000}))
    dest = install_weights(onnx, run, "cribnet_v216.onnx")
    assert dest == weights / "cribnet_v216.onnx" and dest.read_bytes() == onnx.read_bytes()
    man = json.loads((weights / "manifest.json").read_text())["files"]
    assert man["cribnet.onnx"] == {"model": "cribnet", "sha256": "x"}  # the default entry untouched
    assert man["cribnet_v216.onnx"]["sha256"] == hashlib.sha256(onnx.read_bytes()).hexdigest()
    assert "non-commercial" in man["cribnet_v216.onnx"]["license"]
    for bad in ("../cribnet_x.onnx", "bmtl.onnx", "cribnet_v2.16.onnx", "cribnet_x.pt", "cribnet_.onnx"):
        with pytest.raises(InputError, match="--install-as"):
            install_weights(onnx, run, bad)
    assert sorted(p.name for p in weights.iterdir()) == ["cribnet_v216.onnx", "manifest.json"]
    assert install_weights(onnx, run) == weights / "cribnet.onnx"  # no name: the default model's file
    assert json.loads((weights / "manifest.json").read_text())["files"]["cribnet.onnx"]["sha256"] == man["cribnet_v216.onnx"]["sha256"]
