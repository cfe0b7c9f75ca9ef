"""The data folder: $CRIBSIGHT_DATA when set, else ../shared/data beside the checkout; eval says
where it looked when the data is not there."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cribsight.datadir import data_root

ROOT = Path(__file__).resolve().parents[1]


def test_default_is_the_checkouts_sibling(monkeypatch):
    monkeypatch.delenv("CRIBSIGHT_DATA", raising=False)
    assert data_root() == ROOT.parent / "shared" / "data"
    monkeypatch.setenv("CRIBSIGHT_DATA", "  ")  # blank: as unset
    assert data_root() == ROOT.parent / "shared" / "data"


def test_environment_variable_moves_it(monkeypatch, tmp_path):
    monkeypatch.setenv("CRIBSIGHT_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CRIBSIGHT_DATA", "~/d")
    assert data_root() == tmp_path / "d"


def test_eval_names_the_folder_it_looked_in(tmp_path):
    env = {"CRIBSIGHT_DATA": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "cribsight.cli", "eval", "aflw2000", "--no-baseline"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert f"expected data at {tmp_path / 'nowhere' / 'aflw2000_sample'}, found nothing" in r.stderr.replace("\n", "")
    assert "CRIBSIGHT_DATA" in r.stderr


def test_build_configs_name_the_data_folder(monkeypatch, tmp_path):
    """A data build config's "{data}/..." source paths follow $CRIBSIGHT_DATA; ./ and ../ paths stay
    relative to the config file; the shipped configs use the data folder."""
    from cribsight.data.build import load_config

    cfg = tmp_path / "b.yaml"
    cfg.write_text("samples: 10\nsources:\n  - {name: a, adapter: utkface, args: {dir: \"{data}/utkface\"}}\n"
                   "  - {name: b, adapter: utkface, args: {dir: ../here}}\n")
    monkeypatch.setenv("CRIBSIGHT_DATA", str(tmp_path / "elsewhere"))
    got = [s["args"]["dir"] if isinstance(s, dict) else s.args["dir"] for s in load_config(cfg).sources]
    assert got == [str(tmp_path / "elsewhere" / "utkface"), str((tmp_path.parent / "here").resolve())]
    shipped = load_config(ROOT / "configs" / "data" / "train.yaml")
    assert all(str(v).startswith(str(tmp_path / "elsewhere")) for s in shipped.sources
               for v in (s["args"] if isinstance(s, dict) else s.args).values())
