import numpy as np
import torch
from torch.utils.data import DataLoader

from segmnv3.data import eval_preset, pad_collate, train_preset, worker_init


def _pair(h=50, w=70, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 5, (h, w)).astype(
        np.uint8
    )


def test_train_preset_contract_and_nearest_masks():
    preset = train_preset(crop_size=(48, 64), base_size=40)
    image, mask = _pair()
    for _ in range(10):
        x, y = preset(image, mask)
        assert x.shape == (3, 48, 64) and x.dtype == torch.float32
        assert y.shape == (48, 64) and y.dtype == torch.int64
        assert set(y.unique().tolist()) <= {0, 1, 2, 3, 4, 255}


def test_train_preset_pads_masks_with_ignore():
    preset = train_preset(crop_size=200, scale_range=(1.0, 1.0), hflip_prob=0, jitter_prob=0)
    image, mask = _pair()
    x, y = preset(image, mask)
    assert (y[50:, :] == 255).all() and (y[:, 70:] == 255).all()
    assert torch.equal(y[:50, :70], torch.as_tensor(mask, dtype=torch.int64))
    # Image padding is 0 before normalisation: −mean/std after it.
    assert torch.allclose(x[0, 100, 100], torch.tensor(-0.485 / 0.229), atol=1e-5)


def test_eval_preset_resizes_the_shorter_side():
    image, mask = _pair(50, 100)
    x, y = eval_preset(resize=25)(image, mask)
    assert x.shape == (3, 25, 50) and y.shape == (25, 50)
    assert torch.equal(y, torch.as_tensor(mask[::2, ::2], dtype=torch.int64))
    x, y = eval_preset()(image, mask)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    expected = (torch.as_tensor(image).permute(2, 0, 1) / 255.0 - mean) / std
    assert torch.allclose(x, expected, atol=1e-5)


def test_pad_collate():
    batch = [(torch.ones(3, 4, 5), torch.zeros(4, 5, dtype=torch.int64)),
             (torch.ones(3, 6, 3), torch.ones(6, 3, dtype=torch.int64))]  # fmt: skip
    images, masks = pad_collate(batch)
    assert images.shape == (2, 3, 6, 5) and masks.shape == (2, 6, 5)
    assert images[0, :, 4:].abs().sum() == 0 and (masks[0, 4:] == 255).all()
    assert (masks[1, :, 3:] == 255).all() and (masks[1, :, :3] == 1).all()


class _Same(torch.utils.data.Dataset):
    def __init__(self):
        self.transforms = train_preset(crop_size=32, scale_range=(0.5, 2.0))
        self.image, self.mask = _pair(64, 64)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transforms(self.image, self.mask)


def test_workers_draw_different_augmentations_and_repeat_with_the_seed():
    def batches(seed):
        loader = DataLoader(_Same(), 1, shuffle=True, num_workers=2, collate_fn=pad_collate,
                            worker_init_fn=worker_init,
                            generator=torch.Generator().manual_seed(seed))  # fmt: skip
        return [x for x, _ in loader]

    first = batches(0)
    # Items 0 and 1 come from different workers: the same image, augmented differently.
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, batches(0), strict=True))
