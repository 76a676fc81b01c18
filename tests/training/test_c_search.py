"""``train.C = "auto"``: C chosen by stratified cross-validation on the training split only.

Real scikit-learn fits on scikit-learn's scanned digits (projected to 2048-d, non-negative
like pool_3) and separable blobs; the grid search is checked against scikit-learn's own
``GridSearchCV`` on the same folds; the report and summary on a real fit.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import LinearSVC

from featuredata import blobs, digits_features, digits_table, table
from pool3.cli import build_parser
from pool3.commands.summary import summary_lines
from pool3.config import TrainConfig, TrainParams, load_config
from pool3.errors import ConfigError, DataError
from pool3.report.write import report_files
from pool3.training.solvers.c_search import C_GRID, numeric_C, search_C
from pool3.training.solvers.choose import pick_solver
from pool3.training.solvers.driver import fit_newton_arrays, train_and_evaluate
from pool3.training.solvers.sklearn_solver import fit_sklearn
from pool3.training.solvers.spark_solver import train_and_evaluate_spark
from pool3.training.table.data import collect_split
from pool3.training.table.rules import prepare

AUTO = TrainParams(C="auto")


_fit = fit_sklearn


@pytest.fixture(scope="module")
def auto_result(spark):
    data = prepare(table(spark, digits_table(10, 40)), AUTO)
    return data, train_and_evaluate(data, AUTO)


def test_config_accepts_auto_and_refuses_other_words_and_the_mllib_solver():
    assert TrainParams(C="auto").C == "auto" and TrainParams(C=2).C == 2.0
    with pytest.raises(ConfigError, match=r"train.C = 'fast'.*a number or \"auto\""):
        TrainParams(C="fast")
    with pytest.raises(ConfigError, match=r"train.C = 0.0.*> 0"):
        TrainParams(C=0.0)
    with pytest.raises(ConfigError, match=r"C = 'auto' with train.solver = 'mllib'"):
        TrainParams(C="auto", solver="mllib")
    assert TrainParams(C="auto", solver="spark").C == "auto"  # all folds in the same jobs
    with pytest.raises(ConfigError, match=r"train.cv_folds = 1"):
        TrainParams(cv_folds=1)
    config = load_config(env={"POOL3_TRAIN__C": "auto"})
    assert config.train.C == "auto"
    args = build_parser().parse_args(["train", "--features", "f", "--output", "o", "--C", "auto"])
    assert args.C == "auto"
    assert (
        build_parser().parse_args(["train", "--features", "f", "--output", "o", "--C", "0.5"]).C
        == 0.5
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--features", "f", "--output", "o", "--C", "big"])
    with pytest.raises(ValueError, match="resolved by train_and_evaluate"):
        numeric_C(AUTO)


@pytest.mark.heavy
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the reference, C=10
def test_fold_accuracies_equal_scikit_learns_grid_search():
    X, y = digits_features(10, 30)
    search = search_C(X, y, AUTO, _fit)
    reference = GridSearchCV(
        LinearSVC(random_state=42),
        {"C": list(C_GRID)},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=42),
        scoring="accuracy",
    ).fit(X, y)
    np.testing.assert_allclose(search.mean, reference.cv_results_["mean_test_score"], atol=1e-12)
    np.testing.assert_allclose(search.std, reference.cv_results_["std_test_score"], atol=1e-12)
    assert search.folds == 5 and search.grid == C_GRID
    best = max(search.mean)
    assert search.mean[C_GRID.index(search.chosen)] >= best - 1e-9
    assert len(set(search.mean)) > 1  # the grid matters on this data


@pytest.mark.heavy
def test_newton_search_agrees_with_liblinears_and_starts_warm():
    X, y = digits_features(10, 30)
    lib = search_C(X, y, AUTO, _fit)
    starts = []

    def newton(X, y, p, **kw):
        starts.append(kw["warm"] is not None)
        return fit_newton_arrays(X, y, p, **kw)

    new = search_C(X, y, replace(AUTO, tol=1e-5), newton)
    assert new.chosen == lib.chosen
    np.testing.assert_allclose(new.mean, lib.mean, atol=0.02)
    # per fold: the smallest C from zero, every larger C from the previous one's weights
    assert starts == [False, True, True, True, True] * 5


def test_ties_keep_the_tutorials_C():
    X, y = blobs(3, 12, dim=64)  # separable: every C scores 100 % in every fold
    search = search_C(X, y, replace(AUTO, cv_folds=3), _fit)
    assert search.mean == (1.0,) * len(C_GRID)
    assert search.chosen == 1.0


def test_folds_shrink_to_the_smallest_class_and_one_image_is_refused():
    X, y = digits_features(3, 10)
    search = search_C(X[:23], y[:23], AUTO, _fit)  # the third class keeps 3 images
    assert search.folds == 3
    with pytest.raises(DataError, match=r"at least 2 training images per class.*has 1"):
        search_C(X[:21], y[:21], AUTO, _fit)


def test_train_and_evaluate_fits_the_chosen_C_on_the_training_split_only(auto_result):
    data, result = auto_result
    meta = result.classifier.meta
    search = meta["C_search"]
    assert search["requested"] == "auto" and search["chosen"] in C_GRID
    assert result.params.C == search["chosen"] == meta["params"]["C"]
    parts = collect_split(data, 2048)
    again = search_C(parts.X_train, parts.y_train, AUTO, _fit)
    assert list(again.mean) == pytest.approx(search["cv_accuracy_mean"], abs=1e-6)
    direct = LinearSVC(C=search["chosen"], random_state=42).fit(parts.X_train, parts.y_train)
    np.testing.assert_array_equal(result.y_pred, direct.predict(parts.X_test))
    json.dumps(meta)


def test_report_and_summary_show_the_choice(auto_result):
    _, result = auto_result
    files = report_files(result, thumbnail_px=None)
    doc = json.loads(files["metrics.json"])
    assert doc["C_search"] == result.classifier.meta["C_search"]
    assert doc["run"]["C"] == doc["C_search"]["chosen"]
    assert "5-fold" in doc["run"]["C_chosen_by"]
    html = files["report.html"].decode()
    assert 'id="choice-of-c"' in html and 'href="#choice-of-c"' in html
    assert 'alt="Cross-validation accuracy against C"' in html
    assert "the test images were not used" in html
    summary = {
        "summary_line": "Accuracy: ...",
        "accuracy_ci95": [0.8, 0.9],
        "model_dir": "m",
        "C_search": doc["C_search"],
    }
    line = next(x for x in summary_lines("train", summary, log_format="text") if x.startswith("C:"))
    assert line.startswith(f"C: auto -> {doc['C_search']['chosen']:g} (5-fold CV accuracy")


@pytest.mark.parametrize("held", ["all", "most"])
def test_auto_on_spark_chooses_the_drivers_C_with_every_fold_in_the_same_jobs(auto_result, held):
    """Above max_collect_mb C = 'auto' goes to Spark (no longer refused): the same folds and
    Newton iterations as the driver's search, one job per Newton step for all folds. "all":
    the driver's budget holds the table, the first job ships it and the passes run there;
    "most": every row but one, so every pass is a Spark job."""
    data, driver = auto_result
    choice = pick_solver(data, TrainConfig(C="auto", max_collect_mb=1))
    assert choice.name == "spark"
    budget = 0 if held == "all" else (driver.n_train - 1) * (4 * 2048 + 16) / 2**20
    result = train_and_evaluate_spark(data, AUTO, choice=choice, active_rows_mb=budget)
    on_driver, on_spark = driver.classifier.meta["C_search"], result.classifier.meta["C_search"]
    assert on_spark["chosen"] == on_driver["chosen"] == result.params.C
    assert on_spark["folds"] == on_driver["folds"] == 5
    one_image = on_driver["folds"] / driver.n_train  # a fold's accuracy moves by this per image
    np.testing.assert_allclose(
        on_spark["cv_accuracy_mean"], on_driver["cv_accuracy_mean"], atol=one_image / 2
    )
    assert np.mean(result.y_pred == driver.y_pred) >= 0.99
    meta = result.classifier.meta
    # 5 Cs x (Newton steps + the pass at their start), then the final fit: far from the
    # ~25 x hundreds of jobs of fitting each fold and C with a job per CG step
    assert meta["spark_jobs"] <= 200, meta["newton"]
    if held == "all":
        assert meta["spark_jobs"] <= 2, meta["newton"]  # the checks, the shipping
    else:
        assert meta["spark_jobs"] >= 20, meta["newton"]
