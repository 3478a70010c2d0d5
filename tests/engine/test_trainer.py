import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segmnv3.checkpoint import load_checkpoint, load_model
from segmnv3.config import load_config
from segmnv3.engine.losses import build_loss, total_loss
from segmnv3.engine.optim import lr_factor
from segmnv3.engine.reproducible import epoch_indices
from segmnv3.engine.trainer import NonFiniteLossError, train
from segmnv3.models import HEADS

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.options={num_samples: 16, size: [64, 64]}",
    "data.val_options={num_samples: 4}",
    "data.crop_size=[64,64]",
    "data.num_workers=0",
    "train.batch_size=4",
    "train.epochs=2",
    "train.num_vis=2",
    "model.bn_momentum=0.1",
]


def _config(tmp_path, *extra):
    return load_config(overrides=[*TINY, f"out_dir={tmp_path}", *extra])


@pytest.mark.parametrize("head", sorted(HEADS))
def test_a_short_training_per_head(tmp_path, head):
    aux = "true" if head != "lraspp" else "false"
    cfg = _config(tmp_path, f"model.head={head}", f"model.aux={aux}", "name=run")
    result = train(cfg, progress=False)
    run = tmp_path / "run"
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert len(list((run / "vis").glob("*.png"))) == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("loss", "lr", "images_per_s", "data_time_share", "val_mIoU", "val_pixel_acc"):
        assert math.isfinite(records[-1][key]), key
    assert records[-1]["iteration"] == 8 and records[-1]["lr"] == 0.0
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 8 and ckpt["config"]["model"]["head"] == head
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "scaler", "rng", "classes", "palette"}
    loaded = load_model(run / "best.pt")
    assert loaded.classes == ["background", "disc", "box", "triangle", "star"]
    assert 0 <= result.best_miou <= 1
    assert load_config(run / "config.yaml") == cfg


def test_all_ignore_batch_gives_zero_loss_and_gradients():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    loss = total_loss(
        {"out": logits, "aux": logits}, target, 0.5, build_loss("ce", [1.0, 2.0, 1.0])
    )
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    target[0, 0, 0] = 1
    plain = total_loss({"out": logits}, target, 0.5, build_loss("ce"))
    expected = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert plain.item() == pytest.approx(expected.item())


def test_lr_schedule_warmup_then_poly():
    assert lr_factor(0, 100, 10, 0.001, 0.9) == pytest.approx(0.001)
    assert lr_factor(5, 100, 10, 0.001, 0.9) == pytest.approx(0.001 + 0.999 * 0.5)
    assert lr_factor(10, 100, 10, 0.001, 0.9) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, 0.001, 0.9) == pytest.approx(0.5**0.9)
    assert lr_factor(100, 100, 10, 0.001, 0.9) == 0.0


def test_epoch_indices_shard_without_overlap():
    one = epoch_indices(10, 3, 0, 0, 1)
    assert sorted(one) == list(range(10)) and one == epoch_indices(10, 3, 0, 0, 1)
    assert one != epoch_indices(10, 4, 0, 0, 1)  # reshuffled each epoch
    a, b = epoch_indices(10, 3, 0, 0, 2), epoch_indices(10, 3, 0, 1, 2)
    assert len(a) == len(b) == 5 and set(a) | set(b) == set(range(10))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    train(_config(tmp_path, "name=nan", "train.epochs=1"), progress=False)
    last = tmp_path / "nan" / "last.pt"
    before = last.read_bytes()
    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr("segmnv3.engine.trainer.total_loss", lambda *args: nan * 1)
    with pytest.raises(NonFiniteLossError, match="iteration 5"):
        train(_config(tmp_path, "name=nan"), resume="auto", progress=False)
    assert last.read_bytes() == before


def test_bf16_autocast_on_cpu(tmp_path):
    result = train(_config(tmp_path, "name=bf16", "train.amp=bf16", "train.epochs=1"),
                   progress=False)  # fmt: skip
    assert math.isfinite(result.final_metrics["mIoU"])
    records = (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()
    assert math.isfinite(json.loads(records[0])["loss"])


def test_bad_train_settings_fail_early(tmp_path):
    with pytest.raises(ValueError, match="sync_bn=true needs CUDA"):
        train(_config(tmp_path, "train.sync_bn=true"), progress=False)
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        train(_config(tmp_path, "train.amp=fp16"), progress=False)
    with pytest.raises(ValueError, match="train.amp='fp8'"):
        train(_config(tmp_path, "train.amp=fp8"), progress=False)


def test_early_stopping(tmp_path):
    cfg = _config(tmp_path, "name=es", "train.epochs=6", "train.lr=1e-30",
                  "train.early_stop_patience=1")  # fmt: skip
    train(cfg, progress=False)
    lines = (tmp_path / "es" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the second evaluation is no better: stop


def _run_tool(tmp_path, name, *extra, wait=True):
    cmd = [sys.executable, str(ROOT / "tools" / "train_seg.py"), "--head", "lraspp",
           "--name", name, "--no-progress", f"out_dir={tmp_path}", *TINY,
           "train.deterministic=true", "train.epochs=3", "train.checkpoint_interval=3",
           *extra]  # fmt: skip
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_then_resume_ends_with_the_same_weights(tmp_path):
    assert _run_tool(tmp_path, "full").returncode == 0
    # Kill a second run at two moments: mid-epoch after an iteration checkpoint, and again
    # after resuming; each resume must carry on to the same end.
    proc = _run_tool(tmp_path, "killed", wait=False)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(last)
    assert state["iteration"] < 12  # it really was cut short
    proc = _run_tool(tmp_path, "killed", "--resume", "auto", wait=False)
    time.sleep(3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _run_tool(tmp_path, "killed", "--resume", "auto")
    assert done.returncode == 0, done.stderr
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert a["iteration"] == b["iteration"] == 12
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_tool_override_errors(tmp_path):
    res = _run_tool(tmp_path, "bad", "train.epohcs=3")
    assert res.returncode == 2
    assert "epohcs" in res.stderr and "valid keys: epochs" in res.stderr
    res = _run_tool(tmp_path, "bad", "train.epochs=three")
    assert res.returncode == 2 and "train.epochs" in res.stderr
    assert not (tmp_path / "bad").exists()


def test_torchrun_two_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port=29541", str(ROOT / "tools" / "train_seg.py"), "--head", "fcn",
           "--name", "ddp", "--no-progress", "--device", "cpu", f"out_dir={tmp_path}", *TINY,
           "model.aux=true"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("done in") == 1  # only rank 0 prints
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt")
    # 16 samples, 2 processes, batch 4: 2 iterations per epoch.
    assert ckpt["iteration"] == 4 and len(ckpt["rng"]) == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_a_new_run_never_replaces_another_runs_files(tmp_path, capsys):
    first = train(_config(tmp_path, "name=demo", "train.epochs=1"), progress=False)
    before = {p.name: p.read_bytes() for p in first.run_dir.iterdir() if p.is_file()}
    config = _config(tmp_path, "name=demo", "train.epochs=1", "model.head=fcn")
    second = train(config, progress=False)
    assert second.run_dir == tmp_path / "demo-2" and config.name == "demo-2"
    assert "holds an earlier run (continue it with --resume auto --name demo)" in (
        capsys.readouterr().out
    )
    assert {p.name: p.read_bytes() for p in first.run_dir.iterdir() if p.is_file()} == before
    assert load_checkpoint(second.run_dir / "best.pt")["config"]["model"]["head"] == "fcn"
    assert train(_config(tmp_path, "name=demo", "train.epochs=1"), progress=False).run_dir == (
        tmp_path / "demo-3"
    )


def test_resume_refuses_a_finished_run_or_another_network(tmp_path):
    train(_config(tmp_path, "name=r", "train.epochs=1"), progress=False)
    with pytest.raises(ValueError, match="finished all 1 epochs: raise train.epochs"):
        train(_config(tmp_path, "name=r", "train.epochs=1"), resume="auto", progress=False)
    with pytest.raises(ValueError, match="model.head='lraspp', this run has 'fcn'"):
        train(_config(tmp_path, "name=r", "model.head=fcn"), resume="auto", progress=False)
    state = load_checkpoint(tmp_path / "r" / "last.pt")
    state["classes"] = state["classes"][:3]
    torch.save(state, tmp_path / "three.pt")
    with pytest.raises(ValueError, match="three.pt predicts 3 classes, this run's data has 5"):
        train(_config(tmp_path, "name=r", "train.epochs=2"), resume=tmp_path / "three.pt",
              progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="class_weights has 2 values but synthetic has 5"):
        train(_config(tmp_path, "name=w", "train.class_weights=[1, 2]"), progress=False)
