"""Training (needs the ``train`` extra: torch, torchvision)."""
from ..errors import MissingExtraError

try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingExtraError("torch", "train") from None
