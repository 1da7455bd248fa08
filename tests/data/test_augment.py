"""Batched augmentation against a slow per-image reference, and its statistical properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalefree.data import apply_augment, augment, augment_params


def _images(n: int, seed: int = 0) -> torch.Tensor:
    # Values in 1..255 so that a zero can only come from the padding.
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def _reference(image: np.ndarray, dy: int, dx: int, flip: bool) -> np.ndarray:
    """Readable per-image version: pad with black, cut a 32x32 window, maybe mirror it."""
    padded = np.pad(image, ((0, 0), (4, 4), (4, 4)), mode="constant", constant_values=0)
    window = padded[:, dy : dy + 32, dx : dx + 32]
    return window[:, :, ::-1] if flip else window


def test_matches_per_image_reference() -> None:
    images = _images(64)
    out = augment(images, torch.Generator().manual_seed(7))
    dy, dx, flip = augment_params(64, torch.Generator().manual_seed(7))
    assert out.shape == images.shape and out.dtype == torch.uint8
    for i in range(64):
        ref = _reference(images[i].numpy(), int(dy[i]), int(dx[i]), bool(flip[i]))
        assert np.array_equal(out[i].numpy(), ref), f"image {i}"


def test_every_output_is_a_window_of_the_padded_image() -> None:
    """Without looking at the drawn parameters: search all 81 offsets x 2 flips."""
    images = _images(24, seed=1)
    out = augment(images, torch.Generator().manual_seed(3))
    for i in range(len(images)):
        matches = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if np.array_equal(out[i].numpy(), _reference(images[i].numpy(), dy, dx, flip))
        ]
        assert len(matches) == 1, f"image {i}: {matches}"


def test_flip_is_exact_mirror_and_centre_crop_is_identity() -> None:
    images = _images(8)
    centre = torch.full((8,), 4)
    same = apply_augment(images, centre, centre, torch.zeros(8, dtype=torch.bool))
    mirrored = apply_augment(images, centre, centre, torch.ones(8, dtype=torch.bool))
    assert torch.equal(same, images)
    assert torch.equal(mirrored, images.flip(-1))


def test_padding_is_black_in_pixel_space() -> None:
    images = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    out = apply_augment(images, torch.tensor([0]), torch.tensor([8]), torch.tensor([False]))
    assert (out[0, :, :4, :] == 0).all() and (out[0, :, :, 28:] == 0).all()
    assert (out[0, :, 4:, :28] == 255).all()


def test_offsets_uniform_and_half_flipped() -> None:
    n = 9000
    dy, dx, flip = augment_params(n, torch.Generator().manual_seed(0))
    assert dy.min() == 0 and dy.max() == 8 and dx.min() == 0 and dx.max() == 8
    for counts in (dy.bincount(minlength=9), dx.bincount(minlength=9)):
        assert counts.min() > 850 and counts.max() < 1150  # 1000 expected, ~4.7 sigma margin
    assert abs(flip.float().mean().item() - 0.5) < 0.03
    # Independent per image: offsets and flips are not correlated.
    assert (
        abs(torch.corrcoef(torch.stack([dy.float(), dx.float(), flip.float()]))[0, 1:]).max() < 0.05
    )


def test_same_generator_state_same_output() -> None:
    images = _images(16)
    g = torch.Generator().manual_seed(11)
    state = g.get_state()
    a = augment(images, g)
    g.set_state(state)
    assert torch.equal(a, augment(images, g))
    assert not torch.equal(a, augment(images, g))  # the generator advanced


@pytest.mark.parametrize("shape", [(2, 3, 28, 24), (3, 32, 32)])
def test_rejects_wrong_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        augment(torch.zeros(shape, dtype=torch.uint8), torch.Generator())


@pytest.mark.parametrize("side, pad", [(16, 2), (8, 1), (4, 1)])
def test_smaller_images_keep_the_proportions(side: int, pad: int) -> None:
    """--image-size: a side-S crop of the pad_for(S)-padded image, per-image reference."""
    g = torch.Generator().manual_seed(side)
    images = torch.randint(1, 256, (32, 3, side, side), generator=g, dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(9))
    dy, dx, flip = augment_params(32, torch.Generator().manual_seed(9), pad=pad)
    assert int(dy.max()) <= 2 * pad and int(dx.max()) <= 2 * pad
    for i in range(32):
        img = np.pad(images[i].numpy(), ((0, 0), (pad, pad), (pad, pad)))
        ref = img[:, int(dy[i]) : int(dy[i]) + side, int(dx[i]) : int(dx[i]) + side]
        ref = ref[:, :, ::-1] if bool(flip[i]) else ref
        assert np.array_equal(out[i].numpy(), ref), f"image {i}"
