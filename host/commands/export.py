"""`fleetnas export --supernet NAME --config JSON|random --format FORMAT --out FILE`: one sub-network to a file.

FORMAT is any registered exporter's (fleetnas.host.export.registry: onnx, tflite, pte, and what installed packages add).

The second form, `fleetnas export DIR --device NAME --pick K`, exports entry K of a search's front for that device
(class or device name; entries numbered by latency as `fleetnas report DIR` prints them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

HELP = "export a sub-network of a super-network as a model file (ONNX, TFLite, ...)"


def default_cache_dir() -> Path:
    return Path(os.environ.get("FLEETNAS_CACHE_DIR", "~/.cache/fleetnas")).expanduser() / "exports"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", type=Path, metavar="DIR",
                        help="a `fleetnas search --out` folder (with --device and --pick)")
    parser.add_argument("--supernet", help="super-network name (see `fleetnas supernets`)")
    parser.add_argument("--config", help="the sub-network as a JSON object, or 'random'")
    parser.add_argument("--seed", type=int, default=0, help="seed for --config random (default 0)")
    parser.add_argument("--weights", type=Path, help="checkpoint to load into the super-network")
    from fleetnas.host.export.registry import EXPORTERS, PRECISIONS
    parser.add_argument("--format", choices=EXPORTERS.names(), default="onnx", help="model format (default onnx)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="int8: statically quantized, calibrated on the super-network's data (default fp32; "
                             "with DIR: the precision the run searched)")
    parser.add_argument("--out", type=Path, help="output file")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="export cache (default $FLEETNAS_CACHE_DIR/exports or ~/.cache/fleetnas/exports)")
    parser.add_argument("--device", help="with DIR: the device class whose front to pick from")
    parser.add_argument("--pick", type=int, help="with DIR: index on that front")
    parser.add_argument("--json", action="store_true", help="print the export record as JSON")


def parse_config(text: str, supernet, seed: int) -> dict:
    """``random`` (seeded) or a JSON object; validated against the super-network's space."""
    import numpy as np

    from fleetnas.host.errors import UsageError

    if text == "random":
        return supernet.space.sample(np.random.default_rng(seed))
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        example = supernet.key(supernet.space.sample(np.random.default_rng(0)))
        raise UsageError(f"--config is not valid JSON ({exc.msg} at column {exc.colno}); give a JSON object such "
                         f"as '{example}', or 'random'") from None
    if not isinstance(config, dict):
        raise UsageError("--config must be a JSON object of parameter: value, or 'random'")
    return supernet.validate(config)


def run(args: argparse.Namespace) -> int:
    from fleetnas.host.errors import UsageError

    if args.run_dir is not None:  # DIR --device NAME --pick K: a sub-network from a search's front
        from fleetnas.host.report.pick import pick_from_run

        if args.device is None or args.pick is None or args.supernet or args.config:
            raise UsageError("with DIR give --device NAME and --pick K (not --supernet/--config), e.g. fleetnas "
                             "export run/ --device rpi5 --pick 0 --format onnx --out best.onnx")
        picked = pick_from_run(args.run_dir, args.device, args.pick)
        args.supernet, args.config = picked.supernet, json.dumps(picked.config)
        args.weights = args.weights or picked.weights_path
        if args.precision is None:   # the model whose accuracy and latency the front shows
            from fleetnas.host.store.run_store import RunStore
            args.precision = RunStore.read_settings(args.run_dir).get("precision", "fp32")
    missing = [flag for flag, value in (("--supernet", args.supernet), ("--config", args.config), ("--out", args.out))
               if value is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}; e.g. fleetnas export --supernet tiny --config random "
                         "--format onnx --out tiny.onnx")
    from fleetnas.host.export.registry import get_exporter
    from fleetnas.host.supernets import get_supernet
    from fleetnas.host.supernets.base import warn_random_weights

    exporter = get_exporter(args.format, args.precision or "fp32")
    exporter.check()  # a missing extra is said before the super-network is built
    supernet = get_supernet(args.supernet, weights=args.weights)
    warn_random_weights(supernet)
    config = parse_config(args.config, supernet, args.seed)
    cache_dir = args.cache_dir or default_cache_dir()
    exported = exporter.export(supernet, config, cache_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exported.path, args.out)
    record = dict(exported.to_dict(), path=str(args.out), cache_path=str(exported.path),
                  macs=supernet.macs(config), params=supernet.params(config))
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(f"wrote {args.out} ({exported.format} {exported.precision}, {exported.size_bytes} bytes, "
              f"sha256 {exported.sha256[:16]}, "
              f"{record['macs'] / 1e6:.2f} MMACs, {record['params']} params{', cached' if exported.cache_hit else ''})")
        print(f"config {exported.config_key}")
    return 0
