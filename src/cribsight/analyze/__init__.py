"""Per-face analysis stages (landmarks, pose, eyes, CribNet's decoding) - and, when called,
``cribsight.analyze(image, source="<array>")``: one image -> ``FrameResult`` with a shared default
``Analyzer`` (``pipeline.analyze``).

``cribsight.analyze`` names both this package and the public one-call function. Importing a
subpackage binds its name on the parent package, which would hide the function as soon as anything
imported ``cribsight.analyze.*``; so the package itself is callable and forwards to the function.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..pipeline import analyze

        return analyze(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
