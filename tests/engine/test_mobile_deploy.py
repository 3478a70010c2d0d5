"""ExecuTorch exports (.pte, XNNPACK): written only after running in ExecuTorch's runtime
against PyTorch, with a card; Segmenter runs the file; bad input is named."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import phone_checkpoint

from segmnv3 import Segmenter
from segmnv3.checkpoint import load_model
from segmnv3.data.samples import scenes
from segmnv3.data.synthetic import CLASSES
from segmnv3.engine import mobile_deploy
from segmnv3.engine.mobile_deploy import export_mobile
from segmnv3.inference.mobile import (
    MobileGraph,
    MobileSpec,
    as_input,
    check_size,
    read_card,
    spec_of,
)
from segmnv3.inference.mobile_rewrites import SignedBytes
from segmnv3.postprocess import upsample_argmax

SIZE = (64, 128)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pte")
    ckpt = phone_checkpoint(tmp)
    lines = []
    report = export_mobile(ckpt, tmp / "m.pte", size=SIZE, int8=True,
                           calib=str(tmp / "data" / "val"), calib_count=3,
                           log=lines.append)  # fmt: skip
    return tmp, ckpt, report, lines


def test_files_cards_and_checks(exported):
    tmp, _, report, lines = exported
    for precision, name in (("fp32", "m.pte"), ("int8", "m.int8.pte")):
        assert (tmp / name).is_file() and report[precision]["file"] == str(tmp / name)
        card = read_card(tmp / name)
        assert card["precision"] == precision and card["format"] == "executorch"
        assert card["input"] == {"shape": [1, 64, 128, 3], "dtype": "int8", "layout": "NHWC",
                                 "normalized": False, "values": "the RGB bytes 0…255 as they "
                                 "are, typed int8 (200 reads as -56)"}  # fmt: skip
        assert card["outputs"] == [{"name": "logits", "shape": [1, 5, 8, 16],
                                    "dtype": "float32", "layout": "NCHW"}]  # fmt: skip
        assert card["classes"] == CLASSES and len(card["palette"]) == 5
        assert card["versions"]["executorch"] and card["checks"]["images"] == 3
        assert card["checks"]["outside_delegate"] == []
    assert report["fp32"]["label_agreement"] >= 0.999
    assert abs(report["int8"]["mIoU"] - report["int8"]["fp32_pytorch_mIoU"]) <= 0.5
    assert report["int8"]["MB"] < 0.5 * report["fp32"]["MB"]
    assert "every compute node in the XNNPACK delegate" in lines[0]
    kept = read_card(tmp / "m.int8.pte")["checks"]["float_ops"]  # the quantizer's float ops
    # hardswish runs int8 (our annotation); the SE gates' hard sigmoids stay float
    assert not any(k.startswith("hardswish") for k in kept)
    assert any(k.startswith("hardsigmoid (model.backbone.") and "(Hardsigmoid)" in k for k in kept)
    assert not any("SignedBytes" in k or "CellArgmax" in k for k in kept)  # float on purpose
    assert any(line.startswith("  kept in float by the quantizer: ") and "hardsigmoid ×" in line
               and "hardswish" not in line for line in lines)  # fmt: skip


def test_segmenter_runs_the_file_like_pytorch(exported):
    tmp, ckpt, _, _ = exported
    seg = Segmenter.from_checkpoint(tmp / "m.pte")
    assert seg.backend_name == "executorch" and seg.precision == "fp32"
    card = read_card(tmp / "m.pte")  # the model's normalisation, not the raw feed's
    assert seg.mean == card["mean"] == [0.485, 0.456, 0.406] and seg.std == card["std"]
    model = load_model(ckpt).model.eval()
    graph = MobileGraph(model, spec_of(read_card(tmp / "m.pte")))
    for _, image, _, _ in scenes("val", 2, (90, 150), 3):  # another size: resized, then back
        with torch.no_grad():
            want = upsample_argmax(graph(graph.feed(image)), image.shape[:2])[0].numpy()
        got = seg.predict(image)
        assert got.shape == image.shape[:2] and (got == want).mean() >= 0.999
    int8 = Segmenter.from_checkpoint(tmp / "m.int8.pte")
    assert int8.precision == "int8" and int8.predict(image).shape == image.shape[:2]


def test_executorch_call_keeps_torch_threads_asleep(exported):
    # ExecuTorch's binding copies with torch ops; they run on one torch thread, so torch's
    # OpenMP worker does not spin on XNNPACK's cores, and the user's setting comes back.
    tmp = exported[0]
    backend = Segmenter.from_checkpoint(tmp / "m.int8.pte").backend
    real, seen = backend.method, []

    class Recording:
        def execute(self, inputs):
            seen.append(torch.get_num_threads())
            if len(seen) == 2:
                raise RuntimeError("the runtime failed")
            return real.execute(inputs)

    backend.method = Recording()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = as_input(np.zeros((*SIZE, 3), np.uint8), backend.spec, backend.scale, backend.shift)
        assert backend.run(x).shape == (1, 5, 8, 16) and torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="the runtime failed"):
            backend.run(x)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_tflite_graph_normalises_by_a_1x1_convolution(exported):
    _, ckpt, _, _ = exported
    model = load_model(ckpt).model.eval()
    spec = spec_of(read_card(exported[0] / "m.pte"))
    pte = MobileGraph(model, spec, fmt="executorch")
    tfl = MobileGraph(model, MobileSpec.of_format("tflite", spec.size), fmt="tflite")
    x = torch.randint(0, 256, (1, 64, 128, 3), dtype=torch.uint8)
    raw = x.permute(0, 3, 1, 2).float()
    assert spec.int8_bytes and not tfl.spec.int8_bytes  # ExecuTorch takes the bytes as int8
    with torch.no_grad():
        assert torch.allclose(tfl.normalize(raw), pte.normalize(raw), atol=1e-5)
        assert torch.allclose(tfl(x), pte(x.view(torch.int8)), atol=1e-4)
    nodes = torch.export.export(tfl, (x,)).graph.nodes
    ops = [str(n.target) for n in nodes if n.op == "call_function"]
    ops = [op for op in ops if "assert" not in op]
    assert ops[:3] == ["aten.to.dtype", "aten.permute.default", "aten.conv2d.default"]


def test_labels_out_nchw_normalised_input(exported, tmp_path):
    tmp, ckpt, _, _ = exported
    report = export_mobile(ckpt, tmp_path / "l.pte", size=SIZE, layout="nchw", normalized=True,
                           labels_out=True, calib=str(tmp / "data" / "val"), calib_count=2,
                           log=lambda *_: None)  # fmt: skip
    card = json.loads((tmp_path / "l.pte.json").read_text())
    assert card["input"] == {"shape": [1, 3, 64, 128], "dtype": "float32", "layout": "NCHW",
                             "normalized": True}  # fmt: skip
    assert card["outputs"][0] == {"name": "labels", "shape": [1, 64, 128], "dtype": "int8",
                                  "layout": "NHW", "values": "class ids 0…4, indices into "
                                  "classes"}  # fmt: skip
    assert report["fp32"]["label_agreement"] >= 0.999
    assert card["checks"]["outside_delegate"] == []  # the upsampling-argmax is delegated too
    # the app's view: the file's int8 ids, from its card alone, against PyTorch's argmax
    from executorch.runtime import Runtime

    image = next(scenes("val", 1, SIZE, 5))[1]
    x = as_input(image, spec_of(card), [1 / 58] * 3, [-2.0] * 3)
    program = Runtime.get().load_program((tmp_path / "l.pte").read_bytes())  # owns the memory
    ids = program.load_method("forward").execute([x])[0]
    graph = MobileGraph(load_model(ckpt).model.eval(), spec_of(card))
    with torch.no_grad():
        want = upsample_argmax(graph.logits(x), SIZE)
    assert ids.dtype == torch.int8 and list(ids.shape) == card["outputs"][0]["shape"]
    assert (ids.long() == want.long()).float().mean() >= 0.999
    seg = Segmenter.from_checkpoint(tmp_path / "l.pte")
    fp32 = Segmenter.from_checkpoint(tmp / "m.pte")
    image = next(scenes("val", 1, SIZE, 7))[1]
    assert (seg.predict(image) == fp32.predict(image)).mean() >= 0.999
    spec = spec_of(card)
    x = as_input(image, spec, [1 / 58] * 3, [-2.0] * 3)
    assert x.shape == (1, 3, 64, 128) and x.dtype == torch.float32


def test_bad_input_is_named_and_nothing_is_written(exported, tmp_path, monkeypatch):
    tmp, ckpt, _, _ = exported
    calib = str(tmp / "data" / "val")
    with pytest.raises(ValueError, match=r"--size 60x128: each side must be a multiple of the "
                       r"model's stride 16 \(the nearest larger size is 64x128\)"):  # fmt: skip
        export_mobile(ckpt, tmp_path / "a.pte", size=(60, 128), calib=calib)
    assert check_size((512, 1024), 16) == (512, 1024)
    with pytest.raises(FileExistsError, match="m.pte exists"):
        export_mobile(ckpt, tmp / "m.pte", size=SIZE, calib=calib)
    with pytest.raises(ValueError, match=r"an ExecuTorch file ends in \.pte"):
        export_mobile(ckpt, tmp_path / "a.onnx", size=SIZE, calib=calib)
    monkeypatch.setattr(mobile_deploy, "FP32_AGREEMENT", 1.01)  # no file can pass
    lowered = (tmp / "m.pte").read_bytes()  # the fixture's real file, run and checked again
    monkeypatch.setattr(mobile_deploy, "_convert", lambda *_: (lowered, []))
    with pytest.raises(ValueError, match=r"a.pte not written: its labels agree with PyTorch"):
        export_mobile(ckpt, tmp_path / "a.pte", size=SIZE, calib=calib, calib_count=2)
    assert not list(tmp_path.iterdir())  # nothing left behind, no temp file either

    def broken_install(*_):
        raise ImportError("cannot import name 'ConfigPrecisionType'")

    monkeypatch.setattr(mobile_deploy, "_convert", broken_install)  # a bug, not a layer's fault
    with pytest.raises(ImportError, match="ConfigPrecisionType"):
        export_mobile(ckpt, tmp_path / "a.pte", size=SIZE, calib=calib, calib_count=2)
    assert not list(tmp_path.iterdir())
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "executorch" else real(n, *a))  # fmt: skip
    with pytest.raises(ValueError, match=r"ExecuTorch is not installed: pip install "
                       r"'segmnv3\[mobile\]'"):  # fmt: skip
        Segmenter.from_checkpoint(tmp / "m.pte")
    assert Path(tmp / "m.pte").is_file()


def test_pte_files_run_from_the_card_alone(exported):
    """Each .pte run in ExecuTorch's own runtime the way an app would, from its card only."""
    import cv2
    from executorch.runtime import Runtime

    tmp, ckpt, _, _ = exported
    model = load_model(ckpt).model.eval()
    image = next(scenes("val", 1, (70, 110), 3))[1]
    for name, floor in (("m.pte", 0.999), ("m.int8.pte", 0.9)):
        card = json.loads((tmp / f"{name}.json").read_text())
        _, h, w, _ = card["input"]["shape"]
        x = torch.from_numpy(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR))[None]
        assert card["input"]["dtype"] == "int8" and "typed int8" in card["input"]["values"]
        x = x.view(torch.int8)  # the same bytes, as the card says
        program = Runtime.get().load_program((tmp / name).read_bytes())
        logits = program.load_method("forward").execute([x])[0]
        assert list(logits.shape) == card["outputs"][0]["shape"]
        graph = MobileGraph(model, spec_of(card))
        with torch.no_grad():
            reference = graph(x)[0].argmax(0)
        assert (logits[0].argmax(0) == reference).float().mean() >= floor, name


def test_eval_scores_the_phone_file_as_segmenter_runs_it(exported):
    """eval_seg.py --onnx model.pte: the dataset's normalised images are turned back into
    the raw values the file takes, so its labels are Segmenter's."""
    from segmnv3.engine.evaluation import predict_labels
    from segmnv3.engine.scoring import _file_input_resize, _scorer

    tmp, ckpt, _, _ = exported
    loaded = load_model(ckpt)
    fed, runs = _scorer(loaded, "auto", "fp32", tmp / "m.pte", "cpu")
    assert runs == "executorch fp32"
    seg = Segmenter.from_checkpoint(tmp / "m.pte")
    for _, image, _, _ in scenes("val", 2, (64, 128), 5):
        batch = torch.from_numpy(loaded.preprocessing(image)[None])
        assert (predict_labels(fed, batch)[0].numpy() == seg.predict(image)).all()
    # eval_seg.py notes a file whose fixed input is not the images' size (they are resized)
    same, other = [(None, np.zeros((64, 128), np.uint8))], [(None, np.zeros((32, 48), np.uint8))]
    assert _file_input_resize(fed, same) is None
    assert _file_input_resize(fed, other) == {"file": [64, 128], "image": [32, 48]}
    assert _file_input_resize(loaded.model, other) is None  # the model takes any size


def test_bench_times_the_file_that_ships(exported):
    from segmnv3.perf.deployed import deployed_file

    tmp, _, _, _ = exported
    rows = deployed_file(tmp / "m.int8.pte", sizes=((64, 128),), repeats=1, log=lambda *_: None)
    assert [(r["path"], r["size"]) for r in rows] == [("executorch int8", "128x64")]
    assert rows[0]["ms"] > 0


def test_int8_bytes_are_the_rgb_values_exactly():
    """ExecuTorch files take the RGB bytes typed int8; the graph turns every byte back into
    its 0…255 value, and the feed is the same bytes."""
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(SignedBytes()(every.view(torch.int8)), every.float())
    spec = MobileSpec.of_format("executorch", (2, 3))
    assert spec.int8_bytes and spec.input_dtype == torch.int8
    assert not MobileSpec.of_format("tflite", (2, 3)).int8_bytes
    assert not MobileSpec.of_format("executorch", (2, 3), normalized=True).int8_bytes
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 14  # up to 238
    x = as_input(rgb, spec)
    assert x.dtype == torch.int8 and torch.equal(x.view(torch.uint8)[0], torch.from_numpy(rgb))
    with pytest.raises(ValueError, match="a normalised input is float32"):
        MobileSpec((2, 3), normalized=True, int8_bytes=True)
    # a card written before the int8 bytes (its .pte takes uint8) is fed uint8
    old = spec_of({"spec": {"size": [2, 3], "layout": "nhwc", "normalized": False,
                            "output": "logits"}})  # fmt: skip
    assert not old.int8_bytes and as_input(rgb, old).dtype == torch.uint8
