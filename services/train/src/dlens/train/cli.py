"""`dlens-train`: train DL-ENS models on the store, list the registry, write predictions.

Exit status: 0 done; 1 training, prediction or the ONNX export's check failed; 2 bad arguments, config or
store (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from dlens.common.config import cli_settings
from dlens.common.lock import StoreLockedError, invocation, store_lock
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBER_GROUPS, parse_members
from dlens.common.store import error_line
from dlens.model.bundle import CARD
from dlens.model.onnx_bundle import ONNX_FILE
from dlens.model.registry import entries
from dlens.train.config import load_config
from dlens.train.export import export
from dlens.train.predict import predict


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlens-train", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train one model with Ray Train and publish it to the registry")
    fit.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    fit.add_argument("--config", required=True, type=Path, help="configs/train/<name>.yaml")
    fit.add_argument("--workers", type=int, default=1, help="DDP workers (default 1)")
    fit.add_argument("--gpu", action="store_true", help="one GPU per worker, NCCL, bf16 autocast")
    fit.add_argument("--storage", help="checkpoints: local path or s3:// (default data/ray-results)")

    tune = sub.add_parser("tune", help="a Ray Tune sweep (ASHA) of Ray Train runs; publishes the best")
    tune.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    tune.add_argument("--config", required=True, type=Path, help="configs/tune/<name>.yaml")
    tune.add_argument(
        "--storage", default="data/ray-results", help="sweep directory (default data/ray-results)"
    )
    tune.add_argument("--resume", action="store_true", help="resume the interrupted sweep of that name")

    models = sub.add_parser("models", help="the model registry as a table")
    models.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")

    predict = sub.add_parser("predict", help="write products/dlens-<id> for a period")
    predict.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    predict.add_argument("--model", default="latest", help="a model id or 'latest'")
    predict.add_argument("--start", required=True, type=_day, help="first run, YYYY-MM-DD")
    predict.add_argument("--days", required=True, type=int, help="number of daily runs")
    predict.add_argument(
        "--members", default="all", type=_members,
        help="members to use: all (default), early (the first six the CAMS timeline delivers: product "
        "dlens-<id>-early) or a comma list (with --product)",
    )  # fmt: skip
    predict.add_argument("--product", help="product name (default: dlens-<id>, dlens-<id>-<group>)")

    export_ = sub.add_parser("export", help="a model as a self-contained bundle (safetensors, model card)")
    export_.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    export_.add_argument("--model", default="latest", help="a model id or 'latest'")
    export_.add_argument("--out", required=True, type=Path, help="the bundle's directory (must not exist)")
    export_.add_argument(
        "--onnx", action="store_true",
        help="also model.onnx (architectures mfai exports: HalfUNet, Segformer, UNet), checked against torch "
        "with ONNX Runtime",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.invocation = invocation("dlens-train", argv)  # the owner a store lock names
    settings = cli_settings(args.log_level, args.no_progress)
    store = args.store or settings.store
    try:
        commands = {"fit": cmd_fit, "tune": cmd_tune, "models": cmd_models, "predict": cmd_predict,
                    "export": cmd_export}  # fmt: skip
        return commands[args.command](args, store)
    except (ValueError, FileNotFoundError, StoreLockedError) as exc:  # bad input, another writer at work
        print(f"dlens-train: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the store unreachable, among others
        print(f"dlens-train: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"dlens-train: error: {exc}", file=sys.stderr)
        return 1


def cmd_fit(args: argparse.Namespace, store: str) -> int:
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: expected at least 1")
    from dlens.train.fit import fit  # Ray Train and MLflow: seconds of imports the other commands skip

    model_id = fit(store, load_config(args.config), args.workers, args.gpu, args.storage)
    print(f"model: {model_id}")
    return 0


def cmd_tune(args: argparse.Namespace, store: str) -> int:
    from dlens.train.sweep import load_sweep, tune  # Ray Tune, Ray Train and MLflow, as in cmd_fit

    sweep, base = load_sweep(args.config)
    model_id = tune(store, sweep, base, args.storage, resume=args.resume)
    print(f"model: {model_id}")
    return 0


def cmd_models(args: argparse.Namespace, store: str) -> int:
    known = entries(store)
    if not known:
        print(f"no model in the registry of {store}")
        return 0
    header = f"{'id':<32} {'architecture':<14} {'train period':<23} {'val/median RMSE':>15}  created"
    print(header)
    for e in known:
        train = e.card["periods"]["train"]
        ratio = e.card["validation"].get("val_ratio", float("nan"))
        print(
            f"{e.model_id:<32} {e.card['architecture']:<14} {train['start']}..{train['end']:<11} "
            f"{ratio:>15.3f}  {e.card['created']}"
        )
    return 0


def cmd_predict(args: argparse.Namespace, store: str) -> int:
    if args.days < 1:
        raise ValueError(f"--days {args.days}: expected at least 1")
    if args.product is None and args.members not in MEMBER_GROUPS.values():
        raise ValueError("a member list that is not a named group needs a product name (--product)")
    first = np.datetime64(args.start, "h")
    last = first + np.timedelta64(24 * args.days, "h")
    runs = [r for r in StoreReader(store).complete_runs() if first <= r < last]
    if not runs:
        raise ValueError(f"no forecast run in store {store!r} from {args.start} for {args.days} days")
    with store_lock(store, args.invocation):  # predict writes products/: one writer at a time
        name, done, report = predict(store, args.model, runs, args.members, args.product)
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} prediction units failed; first: {report.failed[0]}")
    print(f"product: products/{name} ({len(runs)} runs, {len(done)} predicted now, {len(runs) - len(done)} "
          "already made from every member present)")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace, store: str) -> int:
    model_id, out = export(store, args.model, args.out, args.onnx)
    print(f"bundle: {out} (model {model_id}; dlens-serve run --store S --bundle {out})")
    if args.onnx:
        check = json.loads((out / CARD).read_text())["onnx"]["check"]
        print(f"onnx: {out / ONNX_FILE} (ONNX Runtime within {check['max_abs_difference']:.2g} of torch)")
    return 0


def _members(text: str) -> tuple[str, ...]:
    try:
        return parse_members(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r}: expected YYYY-MM-DD") from None
