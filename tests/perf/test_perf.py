from segmnv3 import timing
from segmnv3.device import cpu_features
from segmnv3.perf.latency import inference_table, label_upsampling, runtime_paths
from segmnv3.timing import interleaved_latency, paired_difference


def test_interleaved_latency_takes_turns():
    calls = []
    times = interleaved_latency({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                repeats=4, rounds=2, settle=0)  # fmt: skip
    assert calls == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3  # untimed + 2 timed per turn
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_paired_difference_alternates_and_takes_the_median(monkeypatch):
    """A fake clock: base takes 10 units, other 13, and one slow spell hits a single pair."""
    clock, calls = [0.0], []
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.time, "sleep", lambda _: None)

    def run(name, cost):
        def fn():
            calls.append(name)
            clock[0] += cost + (50.0 if len(calls) == 6 else 0.0)

        return fn

    diff = paired_difference(run("b", 10.0), run("o", 13.0), pairs=5, pause=0)
    assert diff == 3.0  # the slow spell does not move the median
    assert calls == [
        "b",
        "o",
        "o",
        "b",
        "b",
        "o",
        "o",
        "b",
        "b",
        "o",
        "o",
        "b",
    ]  # warm-up, then alternating


def test_inference_table_rows():
    rows = inference_table(heads=("lraspp",), sizes=((64, 96),), repeats=1, log=lambda *_: None)
    paths = ["torchvision eager"] + [f"segmnv3 {b} {p}" for b, p in runtime_paths()]
    assert any("bf16" in p for p in paths) == cpu_features().bf16
    assert {"segmnv3 openvino int8", "segmnv3 onnxruntime fp32", "segmnv3 torch fp32"} <= set(paths)
    n = len(paths)
    assert [r["path"] for r in rows] == paths * 2  # full tail, then reduced tail
    assert [r["model"] for r in rows] == ["lraspp full tail"] * n + ["lraspp reduced tail"] * n
    assert all(r["size"] == "96x64" and r["ms"] > 0 for r in rows)
    assert rows[0]["ratio_to_torchvision"] == 1.0 and rows[n]["ratio_to_torchvision"] == 1.0
    assert rows[0]["params"] == 3_221_538  # torchvision's LR-ASPP with 21 classes


def test_label_upsampling_cases_span_the_range():
    out = label_upsampling(size=(128, 256), log=lambda *_: None)
    fractions = [case["cells_interpolated"] for case in out.values()]
    assert fractions[0] == 0 and 0 < fractions[1] < 0.5 and fractions[2] > 0.9
    assert all(case["segmnv3"] > 0 and case["interpolate+argmax"] > 0 for case in out.values())


def test_end_to_end_rows_on_a_checkpoint(tmp_path):
    from helpers import make_checkpoint

    from segmnv3.config import load_config
    from segmnv3.data.synthetic import CLASSES, PALETTE
    from segmnv3.perf.deployed import end_to_end

    config = load_config(overrides=["model.backbone=mobilenet_v3_small"])
    ckpt = make_checkpoint(tmp_path / "m.pt", config, CLASSES, PALETTE)
    rows = end_to_end(ckpt, sizes=((64, 96),), repeats=1, log=lambda *_: None)
    assert rows[0]["path"] == "torchvision eager" and rows[0]["ratio_to_torchvision"] == 1.0
    assert len(rows) == 1 + len(runtime_paths()) and all(r["ms"] > 0 for r in rows)
    assert 0 <= rows[0]["cells_interpolated"] <= 1


def test_bench_tool_options_parse():
    from segmnv3.cli.bench import build_parser

    args = build_parser().parse_args(["--skip-table", "--skip-video", "--serve", "--memory",
                                      "--sizes", "64x96", "--video-frames", "10"])  # fmt: skip
    assert args.skip_table and args.skip_video and args.serve and args.memory
    assert args.sizes == [(64, 96)] and args.video_frames == 10
    assert args.mobile_sizes == [(512, 512), (512, 1024)]  # the phone files' own sizes
    args = build_parser().parse_args(["--mobile", "--mobile-sizes", "512x1024"])
    assert args.mobile and args.mobile_sizes == [(512, 1024)]


def test_batch_survey_is_nested_jpegs_of_the_size(tmp_path):
    import cv2

    from segmnv3.perf.batch import write_survey

    write_survey(tmp_path, images=10, size=(32, 48), folders=4)
    files = sorted(tmp_path.rglob("*.jpg"))
    assert len(files) == 10 and len({f.parent for f in files}) == 4
    assert cv2.imread(str(files[0])).shape == (32, 48, 3)
