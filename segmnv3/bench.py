"""Side-by-side speed figures: segmnv3 against torchvision's eager models, in one process.

Inference: the median time of ``Segmenter.predict`` on an RGB uint8 image (preprocess,
forward, argmax, mask at the input's size) for each backend, and of torchvision's eager
model doing the same work (normalise, forward, argmax). Also data loading (samples/s of the
train preset on Cityscapes-size images) and a training step (images/s).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .export import export_onnx, interleaved_latency, median_latency
from .inference import OrtBackend, Segmenter, TorchBackend
from .models import build_model, count_macs, count_parameters

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _torchvision_model(head: str, num_classes: int):
    from torchvision.models import segmentation as tvs

    build = {"lraspp": tvs.lraspp_mobilenet_v3_large, "deeplabv3": tvs.deeplabv3_mobilenet_v3_large}
    return build[head](weights=None, weights_backbone=None, num_classes=num_classes).eval()


def _torchvision_predict(model, image: np.ndarray) -> np.ndarray:
    """The obvious torchvision code: to tensor, normalise, forward, argmax."""
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        x = (x - MEAN) / STD
        return model(x[None])["out"].argmax(1)[0].byte().numpy()


def inference_table(
    heads=("lraspp", "deeplabv3"),
    sizes=((512, 1024), (1024, 2048)),
    num_classes: int = 21,
    repeats: int = 6,
    threads: int | None = None,
    int8: bool = True,
    log=print,
) -> list[dict]:
    """One row per head × tail setting × size × path, with the latency and the ratio to
    torchvision's eager model of the same head."""
    rng = np.random.default_rng(0)
    rows = []
    for head in heads:
        tv = _torchvision_model(head, num_classes)
        for reduced in (False, True):
            model = build_model(head, num_classes, reduced_tail=reduced).eval()
            if not reduced:  # the same network as torchvision's: same weights too
                model.load_state_dict(tv.state_dict(), strict=True)
            classes = [str(i) for i in range(num_classes)]
            palette = [(i, i, i) for i in range(num_classes)]
            onnx_bytes = export_onnx(model, None, classes=classes, palette=palette)
            paths = {
                "torch": Segmenter(TorchBackend(model), classes, palette),
                "onnxruntime": Segmenter(
                    OrtBackend.load(onnx_bytes, num_threads=threads), classes, palette
                ),
            }
            if int8:
                paths["onnxruntime-int8"] = _int8_segmenter(onnx_bytes, classes, palette, threads)
            params = count_parameters(model)
            gmacs = count_macs(model, 512, 1024) / 1e9
            for h, w in sizes:
                image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                fns = {"torchvision eager": lambda m=tv, i=image: _torchvision_predict(m, i)}
                for path, seg in paths.items():
                    fns[f"segmnv3 {path}"] = lambda s=seg, i=image: s.predict(i)
                times = interleaved_latency(fns, repeats)
                name = f"{head} {'reduced' if reduced else 'full'} tail"
                base = times["torchvision eager"]
                for path, t in times.items():
                    rows.append(_row(name, params, gmacs, (h, w), path, t, base))
                    log(_format(rows[-1]))
    return rows


def _int8_segmenter(onnx_bytes: bytes, classes, palette, threads):
    from .quantize import quantize_int8

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, q = Path(tmp) / "m.onnx", Path(tmp) / "m.int8.onnx"
        fp32.write_bytes(onnx_bytes)
        # Speed does not depend on what the calibration images show.
        calib = (rng.standard_normal((1, 3, 256, 512)).astype(np.float32) for _ in range(4))
        quantize_int8(fp32, q, calib)
        backend = OrtBackend.load(q.read_bytes(), num_threads=threads)
    return Segmenter(backend, classes, palette)


def _row(name, params, gmacs, size, path, seconds, base) -> dict:
    return {
        "model": name,
        "params": params,
        "gmacs_1024x512": round(gmacs, 2),
        "size": f"{size[1]}x{size[0]}",
        "path": path,
        "ms": round(1000 * seconds, 1),
        "ratio_to_torchvision": round(seconds / base, 3),
    }


def _format(r: dict) -> str:
    return (
        f"| {r['model']:<22} | {r['params'] / 1e6:5.2f} M | {r['gmacs_1024x512']:6.2f} | "
        f"{r['size']:>9} | {r['path']:<26} | {r['ms']:8.1f} | {r['ratio_to_torchvision']:5.2f}× |"
    )


TABLE_HEADER = (
    "| model                  | params  | GMACs  |      size | path                       |"
    "   median ms | vs tv |\n|---|---|---|---|---|---|---|"
)


def data_loading(num_images: int = 12, workers: int = 2, batches: int = 12, log=print) -> dict:
    """Samples/s of the Cityscapes train preset on 1024×2048 images, against a torchvision
    transforms.v2 pipeline (PIL decode) doing the same augmentations."""
    from torch.utils.data import DataLoader

    from .data import Cityscapes, pad_collate, train_preset, worker_init
    from .data.samples import write_sample_data

    with tempfile.TemporaryDirectory() as tmp:
        write_sample_data("cityscapes", tmp, num_images, 0, (1024, 2048), seed=0)
        ours = Cityscapes(tmp, "train", transforms=train_preset(crop_size=(512, 1024)))
        theirs = _TorchvisionCityscapes(ours)
        out = {}
        for name, ds in (("segmnv3 (OpenCV + albumentations)", ours),
                         ("torchvision transforms.v2 (PIL)", theirs)):  # fmt: skip
            loader = DataLoader(ds, batch_size=1, shuffle=True, num_workers=workers,
                                collate_fn=pad_collate, worker_init_fn=worker_init)  # fmt: skip
            it, count = iter(loader), 0
            next(it)  # workers started
            t = time.perf_counter()
            for _ in range(batches - 1):
                try:
                    next(it)
                except StopIteration:
                    it = iter(loader)
                    next(it)
                count += 1
            out[name] = count / (time.perf_counter() - t)
            log(f"data loading, {name}: {out[name]:.1f} samples/s ({workers} workers)")
    return out


class _TorchvisionCityscapes(torch.utils.data.Dataset):
    """The same files and augmentations, the torchvision way."""

    def __init__(self, ours) -> None:
        from torchvision.transforms import v2

        self.ours = ours
        self.tf = v2.Compose([
            v2.RandomResize(512, 2048),  # shorter side 0.5-2.0 × 1024
            v2.RandomCrop((512, 1024), pad_if_needed=True, fill={"others": 0, "mask": 255}),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(0.2, 0.2, 0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.ours)

    def __getitem__(self, i):
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        from .data.cityscapes import ID_TO_TRAIN_ID

        image = TF.pil_to_tensor(Image.open(self.ours.images[i]).convert("RGB"))
        ids = np.asarray(Image.open(self.ours.masks[i]))
        mask = tv_tensors.Mask(torch.from_numpy(ID_TO_TRAIN_ID[ids]))
        image, mask = self.tf(tv_tensors.Image(image), mask)
        return image, mask.long()


def train_step(batch: int = 8, size: int = 512, steps: int = 3, log=print) -> dict:
    """Training images/s (forward, backward, SGD step) at ``size``², batch ``batch``:
    segmnv3's LR-ASPP as the trainer runs it (reduced tail, channels-last) against
    torchvision's ``lraspp_mobilenet_v3_large`` in a plain loop."""
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 19, (batch, size, size))
    out = {}
    ours = build_model("lraspp", 19).to(memory_format=torch.channels_last)
    tv = _torchvision_model("lraspp", 19)
    cases = (("segmnv3 lraspp (reduced tail, channels_last)", ours, True),
             ("torchvision lraspp_mobilenet_v3_large", tv, False))  # fmt: skip
    for name, model, cl in cases:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        inp = x.contiguous(memory_format=torch.channels_last) if cl else x

        def step(m=model, o=opt, i=inp):
            loss = F.cross_entropy(m(i)["out"], y, ignore_index=255)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

        t = median_latency(step, repeats=steps)
        out[name] = batch / t
        log(f"training step, {name}: {out[name]:.2f} images/s (batch {batch}, {size}×{size})")
    return out


def postprocess(size=(512, 1024), num_classes: int = 21, stride: int = 8, log=print) -> dict:
    """Milliseconds from low-resolution logits to full-resolution labels: segmnv3's
    ``upsample_argmax`` against ``F.interpolate(...).argmax(1)``, on three kinds of logits.

    The inference table's random models on random images predict one class everywhere,
    the cheapest case for ``upsample_argmax``; these cases show the rest of its range.
    """
    from .postprocess import interpolated_fraction, upsample_argmax

    h, w = size[0] // stride, size[1] // stride
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(1, num_classes, h // 16, w // 16, generator=g) * 4
    cases = {
        "one class everywhere": torch.arange(num_classes, dtype=torch.float32)
        .view(1, -1, 1, 1)
        .expand(1, num_classes, h, w)
        .contiguous(),
        "regions (like a trained model)": F.interpolate(coarse, size=(h, w), mode="bilinear"),
        "noise (worst case)": torch.randn(1, num_classes, h, w, generator=g),
    }
    out = {}
    for name, low in cases.items():
        times = interleaved_latency(
            {
                "segmnv3": lambda x=low: upsample_argmax(x, size),
                "interpolate+argmax": lambda x=low: F.interpolate(
                    x, size=size, mode="bilinear"
                ).argmax(1),
            },
            repeats=6,
            settle=0,
        )
        out[name] = {k: round(1000 * v, 2) for k, v in times.items()}
        out[name]["cells_interpolated"] = round(interpolated_fraction(low), 4)
        log(
            f"labels from {num_classes}×{h}×{w} logits at {size[1]}×{size[0]}, {name}: "
            f"upsample_argmax {out[name]['segmnv3']:.1f} ms "
            f"({100 * out[name]['cells_interpolated']:.1f}% of cells interpolated), "
            f"interpolate+argmax {out[name]['interpolate+argmax']:.1f} ms"
        )
    return out
