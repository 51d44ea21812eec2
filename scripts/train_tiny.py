"""Train the `tiny` super-network on scikit-learn's digits and write host/supernets/tiny_weights.npz.

Progressive shrinking in two phases, as Once-for-All does at a smaller scale:
  1. the full network alone (largest width, depth, kernel, resolution);
  2. every dimension elastic, sandwich rule: each step trains the largest, the smallest and two random sub-networks,
     the smaller ones distilled in place from the largest one's (detached) predictions.
Reproducible: seeded numpy/torch, deterministic algorithms, one thread. Weights are stored as float16 (the file
stays tens of KB); the metadata (arguments, sha256, accuracies of the largest and smallest sub-networks) rides along.

    python scripts/train_tiny.py [--epochs-full 5] [--epochs-elastic 15] [--out host/supernets/tiny_weights.npz]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fleetnas.host.supernets import tiny


def largest(space) -> dict:
    return {p.name: max(p.options) for p in space.params}


def smallest(space) -> dict:
    return {p.name: min(p.options) for p in space.params}


def shifted(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random +-1 pixel translations (zero fill): cheap augmentation for 8x8 digits."""
    out = np.zeros_like(images)
    for n, (dy, dx) in enumerate(rng.integers(-1, 2, size=(len(images), 2))):
        src = images[n, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
        out[n, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def batch(images: np.ndarray, res: int) -> torch.Tensor:
    return tiny.prepare_images(images, res).contiguous(memory_format=torch.channels_last)


def train(epochs_full: int, epochs_elastic: int, batch_size: int, lr: float, seed: int) -> tiny.TinyElasticNet:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    space = tiny.tiny_space()
    train_x, train_y, _, _ = tiny.digits_split()
    # channels_last: PyTorch's CPU depthwise-convolution backward is about twice as fast in this layout
    net = tiny.TinyElasticNet().to(memory_format=torch.channels_last)
    steps_per_epoch = int(np.ceil(len(train_y) / batch_size))
    total_epochs = epochs_full + epochs_elastic
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_epochs * steps_per_epoch)
    big, small = largest(space), smallest(space)
    for epoch in range(total_epochs):
        net.train()
        order = rng.permutation(len(train_y))
        elastic = epoch >= epochs_full
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            images, labels = shifted(train_x[idx], rng), torch.from_numpy(train_y[idx])
            opt.zero_grad()
            logits_big = net(batch(images, big["res"]), big)
            loss = F.cross_entropy(logits_big, labels)
            if elastic:
                soft = F.softmax(logits_big.detach(), dim=1)
                for config in (small, space.sample(rng), space.sample(rng)):
                    logits = net(batch(images, config["res"]), config)
                    loss = loss + 0.5 * F.cross_entropy(logits, labels) + 0.5 * F.cross_entropy(logits, soft)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{total_epochs} ({'elastic' if elastic else 'full'}) loss {loss.item():.3f}",
              file=sys.stderr)
    return net.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-full", type=int, default=5)
    parser.add_argument("--epochs-elastic", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=tiny.WEIGHTS_FILE)
    args = parser.parse_args()
    t0 = time.time()
    net = train(args.epochs_full, args.epochs_elastic, args.batch_size, args.lr, args.seed)
    arrays = {k: v.detach().numpy().astype(np.float16) for k, v in net.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    digest = hashlib.sha256()
    for k in sorted(arrays):
        digest.update(k.encode() + arrays[k].tobytes())
    record = {"script": "scripts/train_tiny.py", "args": {k: (str(v) if isinstance(v, Path) else v)
                                                            for k, v in vars(args).items() if k != "out"},
              "torch": torch.__version__, "weights_sha256": digest.hexdigest()[:16],
              "train_seconds": round(time.time() - t0, 1)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays, __meta__=np.frombuffer(json.dumps(record).encode(), dtype=np.uint8))
    args.out.write_bytes(buf.getvalue())
    supernet = tiny.TinySuperNet(weights=args.out)
    record["top1_largest"] = supernet.accuracy(largest(supernet.space))
    record["top1_smallest"] = supernet.accuracy(smallest(supernet.space))
    print(json.dumps(record, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
