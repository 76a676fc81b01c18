"""pool3.config: layering (defaults < file < local overrides < env < CLI), errors, redaction."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from pool3.config import Config, load_config
from pool3.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A profile ``prof`` setting four keys, and a local override of two of them."""
    d = tmp_path / "confdir"
    write(
        d / "prof.toml",
        '[train]\nC = 2.0\nseed = 1\n[model]\nsource = "from-file"\n'
        "[featurize]\nmax_file_mb = 10\n",
    )
    write(d / "local-overrides.toml", '[train]\nseed = 2\n[model]\nsource = "from-local"\n')
    return d


def test_defaults_without_any_source() -> None:
    config = load_config(env={})
    assert config == Config()
    assert config.train.C == 1.0 and config.output.mode == "error" and config.spark.master == ""
    assert list(config.sections) == [
        "spark", "model", "featurize", "train", "classify", "report", "output", "mlflow"
    ]  # fmt: skip


def test_precedence_file_local_env_cli(conf_dir: Path) -> None:
    env = {"POOL3_CONF_DIR": str(conf_dir), "POOL3_MODEL__SOURCE": "/x/graph.pb"}
    env |= {"POOL3_TRAIN__C": "3"}
    only_file = load_config("prof", env={"POOL3_CONF_DIR": str(conf_dir)})
    with_env = load_config("prof", env=env)
    with_cli = load_config("prof", env=env, overrides={"train.C": 4.0, "model.source": None})

    assert only_file.featurize.max_file_mb == 10  # file over default
    assert only_file.train.seed == 2 and only_file.model.source == "from-local"  # local > file
    assert only_file.train.C == 2.0
    assert with_env.model.source == "/x/graph.pb" and with_env.train.C == 3.0  # env > files
    assert with_cli.train.C == 4.0  # cli > env
    assert with_cli.model.source == "/x/graph.pb"  # a None override means "flag not given"


def test_profile_search_order_and_explicit_path(
    tmp_path: Path, conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "conf" / "prof.toml", "[classify]\ntop_k = 7\n")
    write(tmp_path / "conf" / "other.toml", "[classify]\ntop_k = 9\n")
    assert load_config("prof", env={}).classify.top_k == 7  # ./conf
    assert load_config("prof", env={"POOL3_CONF_DIR": str(conf_dir)}).train.C == 2.0
    assert load_config("other", env={"POOL3_CONF_DIR": str(conf_dir)}).classify.top_k == 9
    explicit = load_config(str(conf_dir / "prof.toml"), env={})
    assert explicit.featurize.max_file_mb == 10


def test_shipped_profiles_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./conf here: the repository's conf/ is used
    local = load_config("local", env={})
    cluster = load_config("cluster", env={})
    assert local.spark.master == "local[*]"
    assert cluster.spark.master == ""  # spark-submit gives it
    assert cluster.featurize.worker_memory_mb > local.featurize.worker_memory_mb
    assert cluster.featurize.partitions > local.featurize.partitions


def test_unknown_profile_lists_available_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config profile 'locl'.*did you mean 'local'"):
        load_config("locl", env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.toml"), env={})


def test_unknown_key_in_file_names_file_valid_keys_and_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "[train]\ntset_size = 0.3\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    message = str(info.value)
    assert "train.tset_size" in message and str(path) in message
    assert "did you mean 'test_size'" in message
    assert "min_accuracy" in message  # the list of valid keys


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"env": {"POOL3_TRAN__C": "1"}}, r"section 'tran' \(from env POOL3_TRAN__C\).*'train'"),
        ({"env": {"POOL3_MODEL__SORCE": "x"}}, r"model.sorce \(from env .*'source'"),
        ({"overrides": {"model.sorce": "x"}}, r"model.sorce \(from cli model.sorce\).*'source'"),
        ({"overrides": {"outptu.mode": "x"}}, r"did you mean 'output'"),
    ],
)
def test_unknown_keys_from_env_and_cli(kwargs: dict, expected: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError, match=expected):
        load_config(**kwargs)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.test_size", 1.5, "x < 1"),
        ("train.test_size", 0, "x > 0"),
        ("train.C", 0, "x > 0"),
        ("model.precision", "fp16", "one of"),
        ("output.mode", "overwrte", "did you mean 'overwrite'"),
        ("featurize.max_error_rate", 1.1, "x <= 1"),
        ("model.batch_size", -1, "x >= 0"),
        ("train.stratify", "yes", "one of"),
        ("spark.task_cpus", True, "an integer"),
        ("classify.top_k", 2.5, "an integer"),
        ("featurize.extensions", [], "at least one"),
        ("featurize.labels", "dir", "manifest"),
        ("train.dual", "maybe", "auto"),
        ("spark.extra", {"a": [1]}, "string values"),
    ],
)
def test_invalid_values_name_field_value_and_expectation(
    key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides={key: value}, env={})
    message = str(info.value)
    assert key in message and repr(value) in message and expected in message


def test_env_values_are_toml_literals_else_strings() -> None:
    env = {
        "POOL3_TRAIN__STRATIFY": "false",
        "POOL3_TRAIN__C": "1e-2",
        "POOL3_TRAIN__DUAL": "false",
        "POOL3_SPARK__MASTER": "local[2]",
        "POOL3_MODEL__HOME": "123",  # a string field keeps the text
        "POOL3_FEATURIZE__EXTENSIONS": ".JPG, png",
        "POOL3_SPARK__EXTRA": '{"spark.executor.memory" = "4g"}',
        "POOL3_HOME": "/not/a/setting",
        "POOL3_CONF_DIR": "",
    }
    config = load_config(env=env)
    assert config.train.stratify is False and config.train.dual is False
    assert config.train.C == 0.01
    assert config.spark.master == "local[2]" and config.model.home == "123"
    assert config.featurize.extensions == ("jpg", "png")
    assert dict(config.spark.extra) == {"spark.executor.memory": "4g"}


def test_bad_env_value_says_where_it_came_from() -> None:
    with pytest.raises(ConfigError, match=r"model.batch_size = 'abc' \(set in env POOL3_MODEL__"):
        load_config(env={"POOL3_MODEL__BATCH_SIZE": "abc"})


def test_spark_extra_merges_key_by_key_and_flattens(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.toml",
        '[spark.extra]\n"spark.a" = "1"\nspark.b.c = 2\n"spark.d" = true\n',
    )
    config = load_config(str(path), env={}, overrides={"spark.extra.spark.a": "9"})
    assert dict(config.spark.extra) == {"spark.a": "9", "spark.b.c": "2", "spark.d": "true"}


def test_to_dict_redacts_secrets_and_the_logged_line_has_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides = {
        "spark.extra.spark.hadoop.fs.s3a.secret.key": "S3CR3T-1",
        "spark.extra.spark.hadoop.fs.s3a.access.key": "ACCESS-2",
        "spark.extra.spark.myapp.PASSWORD": "PW-3",
        "spark.extra.spark.executor.memory": "4g",
        "model.source": "s3a://user:PW-4@bucket/graph.pb",
    }
    with caplog.at_level(logging.DEBUG, logger="pool3.config.load"):
        config = load_config(overrides=overrides, env={})
    extra = config.to_dict()["spark"]["extra"]
    assert extra["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert extra["spark.hadoop.fs.s3a.access.key"] == "***"
    assert extra["spark.myapp.PASSWORD"] == "***"
    assert extra["spark.executor.memory"] == "4g"
    assert config.to_dict()["model"]["source"] == "s3a://***@bucket/graph.pb"
    assert config.spark.extra["spark.hadoop.fs.s3a.secret.key"] == "S3CR3T-1"  # only redacted out
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "pool3.config.load")
    assert "spark.executor.memory" in logged
    for secret in ("S3CR3T-1", "ACCESS-2", "PW-3", "PW-4"):
        assert secret not in logged


def test_config_is_frozen_and_json_able() -> None:
    config = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.C = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.spark.extra["x"] = "y"  # type: ignore[index]
    assert json.loads(json.dumps(config.to_dict()))["featurize"]["extensions"][0] == "jpg"


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[train\nC = 1\n")
    with pytest.raises(ConfigError, match=r"cannot parse config file .*broken.toml"):
        load_config(str(path), env={})
    top = write(tmp_path / "top.toml", "C = 1\n")
    with pytest.raises(ConfigError, match=r"top-level key 'C'"):
        load_config(str(top), env={})


def test_every_train_parameter_is_a_config_key() -> None:
    # [train] *is* the training parameters: --set train.tol=1e-5 reaches the solvers
    from pool3.cli import build_parser, overrides

    args = build_parser().parse_args(
        [
            "train",
            "--features",
            "f",
            "--output",
            "o",
            "--set",
            "train.tol=1e-5",
            "--set",
            "train.dtype=float64",
            "--split",
            "sklearn",
        ]
    )
    config = load_config(overrides=overrides(args), env={})
    assert config.train.tol == 1e-5 and config.train.dtype == "float64"
    assert config.train.split == "sklearn"
    from pool3.config import TrainParams

    assert isinstance(config.train, TrainParams)  # what the solvers receive, unchanged


def test_cross_field_train_rules_are_checked_when_the_config_loads() -> None:
    with pytest.raises(ConfigError, match=r"refused by scikit-learn's LinearSVC.*not supported"):
        load_config(overrides={"train.penalty": "l1", "train.loss": "hinge"}, env={})
    with pytest.raises(ConfigError, match="Spark MLlib's LinearSVC fits one-vs-rest"):
        load_config(overrides={"train.solver": "mllib", "train.penalty": "l1"}, env={})


def test_choice_lists_are_declared_once() -> None:
    from pool3.cli import build_parser
    from pool3.config import ModelConfig, OutputConfig, TrainConfig, choices_of
    from pool3.model.featurizer import PRECISIONS
    from pool3.storage.outputs import MODES

    assert choices_of(OutputConfig, "mode") == MODES
    assert choices_of(ModelConfig, "precision") == PRECISIONS
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    solver = next(a for a in sub["train"]._actions if a.dest == "solver")
    assert tuple(solver.choices) == choices_of(TrainConfig, "solver")
