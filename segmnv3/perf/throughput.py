"""Training throughput: data loading (samples/s) and a training step (images/s), each
against the torchvision way of doing the same work."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..data import Cityscapes, pad_collate, train_preset, worker_init
from ..data.cityscapes import ID_TO_TRAIN_ID
from ..data.samples import write_sample_data
from ..models import build_model
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD
from ..timing import median_latency
from .latency import torchvision_model


def data_loading(num_images: int = 12, workers: int = 2, batches: int = 12, log=print) -> dict:
    """Samples/s of the Cityscapes train preset on 1024×2048 images, against a torchvision
    transforms.v2 pipeline (PIL decode) doing the same augmentations."""
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
            v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.ours)

    def __getitem__(self, i):
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

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
    tv = torchvision_model("lraspp", 19)
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
