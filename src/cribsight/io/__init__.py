"""Image and video input/output."""
from .images import IMAGE_EXTENSIONS, read_image, to_rgb_uint8
from .video import VIDEO_EXTENSIONS, VideoWriter, iter_video

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VideoWriter", "iter_video", "read_image", "to_rgb_uint8"]
