import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, cribsight\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'mediapipe', 'onnxruntime', 'torchvision') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import cribsight pulled in: {out.stdout.strip()}"


def test_public_api_lazy_attributes():
    import cribsight

    assert cribsight.__version__
    assert cribsight.Analyzer.__name__ == "Analyzer"
    try:
        cribsight.NoSuchThing
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("unknown attribute did not raise")
