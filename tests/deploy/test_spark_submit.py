"""spark-submit.sh argument handling, through --dry-run (no JVM is started).

What a real submission does on a real cluster is checked in test_cluster_fixture.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from paths import REPO

SCRIPT = REPO / "spark-submit.sh"
SMOKE_APP = REPO / "tests" / "apps" / "cluster_smoke.py"


def pyspark_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def run_script(
    *args: str, cwd: Path, env_update: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "SPARK_HOME", "POOL3_PYTHON", "POOL3_CONF_DIR")
    }
    env["POOL3_PYTHON"] = sys.executable
    env.update(env_update or {})
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def dry_run(*args: str, cwd: Path, env_update: dict[str, str] | None = None) -> list[str]:
    """The command line spark-submit.sh would run, as a list of words."""
    proc = run_script("--dry-run", *args, cwd=cwd, env_update=env_update)
    assert proc.returncode == 0, proc.stderr
    return shlex.split(proc.stdout.strip().splitlines()[-1])


def option_values(cmd: list[str], option: str) -> list[str]:
    return [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word == option]


@pytest.mark.parametrize("args", [(), ("-h",), ("--help",)])
def test_usage_exits_2(args: tuple[str, ...], tmp_path: Path) -> None:
    proc = run_script(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Usage: ./spark-submit.sh" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus", "--"), "unknown option '--bogus'"),
        (("--deps", "conda", "--"), "--deps must be 'pyfiles' or 'venv', got 'conda'"),
        (("--deploy-mode", "remote", "--"), "got 'remote'"),
        (("--spark-conf", "novalue", "--"), "KEY=VALUE, got 'novalue'"),
        (("--conf-profile", "no-such-profile", "--"), "'no-such-profile' not found"),
        (("--conf-profile", "missing.toml", "--"), "'missing.toml' not found"),
        (("--master",), "--master needs a URL"),
    ],
)
def test_bad_arguments_exit_2_with_message(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    proc = run_script("--app", str(SMOKE_APP), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_default_app_is_the_pool3_job(tmp_path: Path) -> None:
    proc = run_script("--dry-run", "--", "featurize", cwd=tmp_path)
    assert str(REPO / "jobs" / "pool3_job.py") in proc.stdout + proc.stderr


def test_plain_submission(tmp_path: Path) -> None:
    cmd = dry_run("--app", str(SMOKE_APP), "--", "featurize", "--input", "a b", cwd=tmp_path)
    assert cmd[0] == f"PYSPARK_PYTHON={sys.executable}"
    assert cmd[1] == str(pyspark_dir() / "bin" / "spark-submit")
    # No --master unless given: spark-submit (or spark-defaults.conf) decides.
    assert "--master" not in cmd and "--deploy-mode" not in cmd
    assert option_values(cmd, "--py-files") == [str(REPO / "build" / "pool3.zip")]
    assert (REPO / "build" / "pool3.zip").is_file()
    assert cmd[-4:] == [str(SMOKE_APP), "featurize", "--input", "a b"]


def test_master_spark_conf_and_spark_home_pass_through(tmp_path: Path) -> None:
    cmd = dry_run(
        *("--master", "k8s://https://k8s.example:443", "--deploy-mode", "client"),
        *("--spark-conf", "spark.executor.memory=8g", "--spark-conf", "spark.a=b=c"),
        *("--app", str(SMOKE_APP), "--"),
        cwd=tmp_path,
        env_update={"SPARK_HOME": str(pyspark_dir()), "PYSPARK_PYTHON": "/opt/py/bin/python"},
    )
    assert cmd[0] == "PYSPARK_PYTHON=/opt/py/bin/python"
    assert cmd[1] == str(pyspark_dir() / "bin" / "spark-submit")
    assert option_values(cmd, "--master") == ["k8s://https://k8s.example:443"]
    assert option_values(cmd, "--deploy-mode") == ["client"]
    assert option_values(cmd, "--conf") == ["spark.executor.memory=8g", "spark.a=b=c"]
    assert cmd[-1] == str(SMOKE_APP)


def test_relative_python_becomes_absolute_without_resolving_links(tmp_path: Path) -> None:
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / "py").symlink_to(sys.executable)
    cmd = dry_run(
        "--app",
        str(SMOKE_APP),
        "--",
        cwd=tmp_path,
        env_update={"POOL3_PYTHON": "bin/py", "SPARK_HOME": str(pyspark_dir())},
    )
    assert cmd[0] == f"PYSPARK_PYTHON={link_dir / 'py'}"


def test_profile_is_shipped_and_passed_after_subcommand(tmp_path: Path) -> None:
    profile = tmp_path / "prod.toml"
    profile.write_text("[spark]\n")
    overrides = tmp_path / "local-overrides.toml"
    overrides.write_text("[model]\n")
    args = ("--conf-profile", "prod.toml", "--app", str(SMOKE_APP))
    job = ("--", "train", "--features", "f")

    # A client-mode driver reads the profile (and its overrides) where they are.
    client = dry_run(*args, *job, cwd=tmp_path)
    assert option_values(client, "--files") == [str(profile)]
    assert client[-5:] == ["train", "--conf", str(profile), "--features", "f"]

    # A cluster-mode driver finds --files in its working directory, by base name.
    for mode in (("--deploy-mode", "cluster"), ("--spark-conf", "spark.submit.deployMode=cluster")):
        cluster = dry_run(*mode, *args, *job, cwd=tmp_path)
        assert option_values(cluster, "--files") == [f"{profile},{overrides}"]
        assert cluster[-5:] == ["train", "--conf", "prod.toml", "--features", "f"]


def test_profile_name_is_looked_up_like_pool3_config(tmp_path: Path) -> None:
    args = ("--conf-profile", "cluster", "--app", str(SMOKE_APP), "--")
    profile = REPO / "conf" / "cluster.toml"
    cmd = dry_run(*args, cwd=tmp_path)
    assert option_values(cmd, "--files") == [str(profile)]
    assert cmd[-2:] == ["--conf", str(profile)]

    # ./conf comes before the repository's conf/, $POOL3_CONF_DIR before both.
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "cluster.toml").write_text("")
    cmd = dry_run(*args, cwd=tmp_path)
    assert cmd[-1] == str(tmp_path / "conf" / "cluster.toml")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "cluster.toml").write_text("")
    cmd = dry_run(*args, cwd=tmp_path, env_update={"POOL3_CONF_DIR": str(tmp_path / "etc")})
    assert cmd[-1] == str(tmp_path / "etc" / "cluster.toml")


def test_venv_deps_need_a_venv_and_venv_pack(tmp_path: Path) -> None:
    path = "/usr/bin:/bin"
    if shutil.which("venv-pack", path=path):
        pytest.skip("venv-pack is installed system-wide; cannot check the missing case")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    base = {"PATH": path, "SPARK_HOME": str(pyspark_dir())}
    args = ("--deps", "venv", "--app", str(SMOKE_APP), "--")

    proc = run_script(
        *args, cwd=tmp_path, env_update={**base, "POOL3_PYTHON": str(env_dir / "bin" / "python")}
    )
    assert proc.returncode == 2
    assert "pip install venv-pack" in proc.stderr

    base_python = Path(sys.base_prefix) / "bin" / "python3"
    proc = run_script(*args, cwd=tmp_path, env_update={**base, "POOL3_PYTHON": str(base_python)})
    assert proc.returncode == 2
    assert "virtual environment" in proc.stderr


def test_venv_deps_ship_the_archive(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    (env_dir / "bin" / "venv-pack").symlink_to("/bin/true")  # found, never run by --dry-run
    python = str(env_dir / "bin" / "python")
    cmd = dry_run(
        *("--deps", "venv", "--app", str(SMOKE_APP), "--"),
        cwd=tmp_path,
        env_update={
            "PATH": "/usr/bin:/bin",
            "SPARK_HOME": str(pyspark_dir()),
            "POOL3_PYTHON": python,
        },
    )
    tgz = REPO / "build" / "pool3-env.tar.gz"
    assert option_values(cmd, "--archives") == [f"{tgz}#environment"]
    assert option_values(cmd, "--conf") == [
        "spark.pyspark.python=./environment/bin/python",
        f"spark.pyspark.driver.python={python}",
    ]
    # pool3 itself still travels as the zip: an editable install is not in the archive.
    assert option_values(cmd, "--py-files") == [str(REPO / "build" / "pool3.zip")]
