"""Running a trained model: the Segmenter, one backend per runtime, ONNX export and int8."""

from .backends import Backend, OrtBackend, TorchBackend, fuse_batchnorm
from .segmenter import Segmenter, to_rgb

__all__ = ["Backend", "OrtBackend", "Segmenter", "TorchBackend", "fuse_batchnorm", "to_rgb"]
