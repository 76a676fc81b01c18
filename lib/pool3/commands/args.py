"""The ``pool3`` command line: every subcommand's flags, each defined once, and the config
overrides they make (``--set SECTION.KEY=VALUE`` and the named flags). :mod:`pool3.cli` parses
with it and runs; ``conf/README.md`` and README's commands are checked against it
(tests/test_docs.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from pool3.config.sections import ModelConfig, OutputConfig, TrainConfig, choices_of
from pool3.errors import ConfigError

#: the flag of the commands that can log their run to MLflow (README, "MLflow")
MLFLOW_HELP = (
    "log the run to MLflow (MLFLOW_TRACKING_URI; [mlflow] settings, e.g. --set "
    "mlflow.registered_model_name=NAME --set mlflow.alias=champion)"
)


def _common(p: argparse.ArgumentParser, *, spark: bool = True, mlflow: bool = False) -> None:
    p.add_argument("--conf", metavar="PROFILE", help="config profile name or .toml path")
    p.add_argument("--verbose", action="store_true", help="DEBUG logging, with the resolved config")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (default): log lines and a short summary for a person; json: one JSON "
        "object per log line on stderr and the summary as one JSON object on stdout",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any config value, e.g. --set train.C=0.5 (repeatable; wins over the profile)",
    )
    if spark:
        p.add_argument("--master", help="Spark master URL (default: profile / spark-submit)")
        p.add_argument(
            "--remote",
            metavar="sc://HOST:PORT",
            help="run over Spark Connect (no local JVM); default: $SPARK_REMOTE",
        )
        p.add_argument(
            "--mode",
            choices=choices_of(OutputConfig, "mode"),
            help="when the output exists: error (default), overwrite, incremental",
        )
        p.add_argument("--run-id", help="write to OUTPUT/run_id=ID; a re-run replaces it")
    if mlflow:
        p.add_argument("--mlflow", action="store_const", const=True, help=MLFLOW_HELP)


def _images_args(p: argparse.ArgumentParser) -> None:
    """The flags of the two commands that run the featurize step over images, each defined
    once: featurize and classify (whose --max-error-rate is featurize.max_error_rate too)."""
    p.add_argument(
        "--input",
        required=True,
        help="image folder or file, taken literally (no globs): local, file://, hdfs://, "
        "s3a://, gs://, abfss://",
    )
    p.add_argument("--output", required=True, help="Parquet output folder (path or URI)")
    p.add_argument(
        "--runtime",
        choices=choices_of(ModelConfig, "runtime"),
        help="auto (default): OpenVINO on CPU executors, TensorFlow on GPU executors",
    )
    p.add_argument(
        "--precision",
        choices=choices_of(ModelConfig, "precision"),
        help="auto (default): bfloat16 where the executors' CPUs have AMX or AVX-512-BF16, "
        "else float32; float32 gives the reference features; int8 (OpenVINO) quantizes on "
        "a sample of the input",
    )
    p.add_argument(
        "--calibration",
        metavar="DIR",
        help="int8: calibrate on images under DIR instead of a sample of --input",
    )
    p.add_argument("--batch-size", type=int, help="model batch size (0 = from memory)")
    p.add_argument("--max-error-rate", type=float, help="fail past this fraction of bad images")


def _c_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'auto'") from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, in the order ``pool3 --help`` lists them."""
    parser = argparse.ArgumentParser(
        prog="pool3",
        description="Inception-v3 pool_3 features on Spark, a linear SVM on top.",
        epilog="Exit codes: 0 ok, 1 unexpected, 2 usage/config, 3 input, 4 output, 5 model, "
        "6 quality gate, 7 training data, 8 Spark out of memory, 130 interrupted, 143 terminated.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _featurize_args(sub.add_parser("featurize", help="images -> Parquet of pool_3 features"))
    _train_args(sub.add_parser("train", help="feature Parquet -> LinearSVC model + report"))
    _classify_args(sub.add_parser("classify", help="images + model -> Parquet of predictions"))
    _tool_parsers(sub)
    return parser


def _featurize_args(f: argparse.ArgumentParser) -> None:
    _images_args(f)
    f.add_argument("--labels", help="filename (default), folder, manifest:FILE or none")
    f.add_argument(
        "--model",
        dest="model_source",
        metavar="SOURCE",
        help="'default' (shipped 2015 weights) or a .pb / .h5 / .keras file",
    )
    _common(f, mlflow=True)


def _train_args(t: argparse.ArgumentParser) -> None:
    t.add_argument("--features", required=True, help="feature Parquet written by featurize")
    t.add_argument("--output", required=True, help="model directory (path or URI)")
    t.add_argument("--test-size", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument(
        "--C",
        type=_c_value,
        dest="C",
        help="the SVM's C (default 1.0), or 'auto': chosen by cross-validation on the "
        "training split",
    )
    t.add_argument("--no-stratify", action="store_true", help="the tutorial's plain split")
    t.add_argument(
        "--split",
        dest="split_method",
        choices=choices_of(TrainConfig, "split"),
        help="held-out split, the same for every solver: content (default; a hash of each "
        "image's sha256 and the seed, duplicates never straddle train and test) or sklearn "
        "(the tutorial's train_test_split over the rows sorted by path)",
    )
    t.add_argument(
        "--solver",
        choices=choices_of(TrainConfig, "solver"),
        help="liblinear/sgd/newton (float32, liblinear's objective) on the driver; spark: "
        "newton over the executors; mllib: Spark MLlib (hinge loss); auto: newton while the "
        "features fit the driver (train.max_collect_mb), else spark",
    )
    t.add_argument("--min-accuracy", type=float, help="fail below this test accuracy (0..1)")
    _common(t, mlflow=True)


def _classify_args(c: argparse.ArgumentParser) -> None:
    _images_args(c)
    c.add_argument(
        "--model",
        required=True,
        help="model directory written by train, or an MLflow model: models:/NAME@ALIAS, "
        "models:/NAME/VERSION, runs:/RUN_ID/model",
    )
    c.add_argument("--top-k", type=int)
    c.add_argument(
        "--model-source",
        dest="model_source",
        metavar="SOURCE",
        help="feature model; must be the one the classifier was trained on",
    )
    _common(c)


def _tool_parsers(sub: Any) -> None:
    """The commands without Spark: datasets, export-graph, setup."""
    d = sub.add_parser("datasets", help="write a labelled image set as files")
    d.add_argument("name", choices=("fashion-mnist",))
    d.add_argument("--out", required=True)
    d.add_argument("--per-class", type=int, help="images per class (default: all)")
    d.add_argument("--split", choices=("train", "test"), default="train")
    d.add_argument("--root", help="folder of the idx files (Debian: dataset-fashion-mnist)")
    _common(d, spark=False)

    e = sub.add_parser("export-graph", help="write the 2015 weights as a tutorial-style .pb")
    e.add_argument("--output", required=True, help="e.g. classify_image_graph_def.pb")
    _common(e, spark=False)

    s = sub.add_parser(
        "setup",
        help="fill this machine's caches (weights, OpenVINO IR, JVM class-data archive) so "
        "that local runs start fast; once per machine, `make install` runs it",
    )
    s.add_argument(
        "--no-jvm", action="store_true", help="skip the JVM archive (only the model caches)"
    )
    _common(s, spark=False)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {
        "spark.master": "master",
        "spark.remote": "remote",
        "output.mode": "mode",
        "model.source": "model_source",
        "model.precision": "precision",
        "model.runtime": "runtime",
        "model.calibration": "calibration",
        "model.batch_size": "batch_size",
        "featurize.labels": "labels",
        "featurize.max_error_rate": "max_error_rate",
        "train.test_size": "test_size",
        "train.seed": "seed",
        "train.C": "C",
        "train.solver": "solver",
        "train.split": "split_method",
        "train.min_accuracy": "min_accuracy",
        "classify.top_k": "top_k",
        "mlflow.enabled": "mlflow",
    }
    out: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r} is not SECTION.KEY=VALUE (e.g. --set train.C=0.5)")
        out[key.strip()] = value
    for key, attr in pairs.items():
        if getattr(args, attr, None) is not None:
            out[key] = getattr(args, attr)
    if getattr(args, "no_stratify", False):
        out["train.stratify"] = False
    return out
