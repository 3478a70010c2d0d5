"""Running a trained model: the Segmenter, one backend per runtime, ONNX export and int8."""

from .backends import (
    BACKENDS,
    PRECISIONS,
    Backend,
    OpenVinoBackend,
    OrtBackend,
    TorchBackend,
    choose_backend,
    fuse_batchnorm,
    installed_backends,
)
from .segmenter import Segmenter, to_rgb

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "OpenVinoBackend",
    "OrtBackend",
    "Segmenter",
    "TorchBackend",
    "choose_backend",
    "fuse_batchnorm",
    "installed_backends",
    "to_rgb",
]
