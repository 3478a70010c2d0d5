"""The inference path (a phone export, a server, a cluster worker) needs no training stack."""

import subprocess
import sys

from segmnv3 import build_model
from segmnv3.inference.onnx import export_onnx

HEAVY = ("segmnv3.data", "segmnv3.engine", "albumentations", "pycocotools")

PROGRAM = """
import sys
import numpy as np
import segmnv3.inference
from segmnv3 import Segmenter
seg = Segmenter.from_checkpoint(sys.argv[1], backend="onnxruntime")
mask = seg.predict(np.zeros((40, 56, 3), np.uint8))
assert mask.shape == (40, 56), mask.shape
print(",".join(sorted(m for m in sys.modules if m.startswith({heavy!r}))))
"""


def test_running_an_exported_model_loads_no_training_stack(tmp_path):
    model = build_model("lraspp", 3, backbone="mobilenet_v3_small").eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, classes=list("abc"), palette=[(0, 0, 0)] * 3)
    code = PROGRAM.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == ""  # none of HEAVY was imported
