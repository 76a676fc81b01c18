#!/usr/bin/env bash
# Submit a pool3 job to Spark: local[*], spark://, yarn or k8s://.
# See docs/cluster.md. Exit codes: 2 for a usage or set-up error found by this
# script; otherwise spark-submit's own exit code (in client mode, the job's).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$REPO/build"

usage() {
  cat <<'EOF'
Usage: ./spark-submit.sh [options] -- <pool3 subcommand and its args>

  --master URL            Spark master, passed through as is (local[*], spark://host:7077,
                          yarn, k8s://https://host:443). Default: spark-submit's (local[*]).
  --deploy-mode MODE      client (default) or cluster.
  --deps pyfiles|venv     How executors get pool3 and its dependencies (default: pyfiles).
                            pyfiles: ship build/pool3.zip with --py-files; the cluster's
                                     Python must already have numpy, pandas, pyarrow,
                                     tensorflow, pillow, scikit-learn.
                            venv:    also pack the current virtual environment with
                                     venv-pack into build/pool3-env.tar.gz, ship it with
                                     --archives ...#environment and run executors with
                                     ./environment/bin/python.
  --conf-profile NAME|FILE  TOML profile: a .toml path, or NAME for NAME.toml in
                          $POOL3_CONF_DIR, ./conf or the repository's conf/. It is
                          shipped with --files and passed to the job as --conf <path>
                          right after the subcommand.
  --spark-conf KEY=VALUE  Extra Spark configuration (repeatable), e.g.
                          --spark-conf spark.executor.memory=8g
  --app FILE              Python application to run (default: jobs/pool3_job.py).
  --dry-run               Print the spark-submit command instead of running it
                          (builds build/pool3.zip, does not pack a venv).
  -h, --help              Show this help.

Environment: SPARK_HOME (else the spark-submit of the installed pyspark), POOL3_PYTHON
(default: python3 from PATH), PYSPARK_PYTHON (default: POOL3_PYTHON, absolute).

Example:
  ./spark-submit.sh --master spark://host:7077 -- featurize --input hdfs:///imgs --output hdfs:///feats
EOF
}

die() {
  echo "spark-submit.sh: error: $*" >&2
  exit 2
}

# Absolute path of a command name or a (possibly relative) path, without resolving
# symlinks: a venv's bin/python must stay the venv's, not the base interpreter.
abs_cmd() {
  local cmd="$1"
  if [[ "$cmd" == */* ]]; then
    [[ -x "$cmd" ]] || return 1
    echo "$(cd "$(dirname "$cmd")" && pwd)/$(basename "$cmd")"
  else
    command -v "$cmd"
  fi
}

if [[ $# -eq 0 ]]; then
  usage >&2
  exit 2
fi

master="" deploy_mode="" deps="pyfiles" profile="" app="$REPO/jobs/pool3_job.py" dry_run=0
spark_confs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 2 ;;
    --master) [[ $# -ge 2 ]] || die "--master needs a URL"; master="$2"; shift 2 ;;
    --deploy-mode) [[ $# -ge 2 ]] || die "--deploy-mode needs client or cluster"; deploy_mode="$2"; shift 2 ;;
    --deps) [[ $# -ge 2 ]] || die "--deps needs pyfiles or venv"; deps="$2"; shift 2 ;;
    --conf-profile) [[ $# -ge 2 ]] || die "--conf-profile needs a NAME or FILE"; profile="$2"; shift 2 ;;
    --spark-conf) [[ $# -ge 2 ]] || die "--spark-conf needs KEY=VALUE"; spark_confs+=("$2"); shift 2 ;;
    --app) [[ $# -ge 2 ]] || die "--app needs a FILE"; app="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    *) die "unknown option '$1' (options go before '--', job arguments after it; see --help)" ;;
  esac
done
job_args=("$@")

case "$deps" in
  pyfiles | venv) ;;
  *) die "--deps must be 'pyfiles' or 'venv', got '$deps'" ;;
esac
case "$deploy_mode" in
  "" | client | cluster) ;;
  *) die "--deploy-mode must be 'client' or 'cluster', got '$deploy_mode'" ;;
esac
for kv in ${spark_confs[@]+"${spark_confs[@]}"}; do
  [[ "$kv" == ?*=* ]] || die "--spark-conf must be KEY=VALUE, got '$kv'"
  if [[ "$kv" == spark.submit.deployMode=* && -z "$deploy_mode" ]]; then
    deploy_mode="${kv#*=}"
  fi
done
[[ -f "$app" ]] || die "application '$app' not found (pass --app FILE, or create jobs/pool3_job.py)"
app="$(cd "$(dirname "$app")" && pwd)/$(basename "$app")"

# The Python that builds the zip and, unless PYSPARK_PYTHON is set, runs the driver
# and the executors.
py="$(abs_cmd "${POOL3_PYTHON:-python3}")" ||
  die "Python '${POOL3_PYTHON:-python3}' not found; set POOL3_PYTHON to an interpreter with pyspark"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$py}"

if [[ -n "${SPARK_HOME:-}" ]]; then
  submit="$SPARK_HOME/bin/spark-submit"
else
  pyspark_dir="$("$py" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" ||
    die "SPARK_HOME is unset and '$py' cannot import pyspark; set SPARK_HOME or POOL3_PYTHON"
  submit="$pyspark_dir/bin/spark-submit"
fi
[[ -x "$submit" ]] || die "spark-submit not found at '$submit'; check SPARK_HOME"

cmd=("$submit")
[[ -n "$master" ]] && cmd+=(--master "$master")
[[ -n "$deploy_mode" ]] && cmd+=(--deploy-mode "$deploy_mode")

# pool3 itself always travels as a zip: it comes first on the executors' sys.path, so
# it wins over any pool3 installed there (an editable install included).
"$py" -I "$REPO/lib/pool3_tools/packaging.py" "$BUILD/pool3.zip" >&2 ||
  die "could not build $BUILD/pool3.zip"
cmd+=(--py-files "$BUILD/pool3.zip")

if [[ "$deps" == venv ]]; then
  venv_prefix="$("$py" -c 'import sys; print(sys.prefix if sys.prefix != sys.base_prefix else "")')"
  [[ -n "$venv_prefix" ]] || die "--deps venv needs POOL3_PYTHON to be a virtual environment's python, got '$py'"
  venv_pack="$(command -v venv-pack || true)"
  [[ -z "$venv_pack" && -x "$venv_prefix/bin/venv-pack" ]] && venv_pack="$venv_prefix/bin/venv-pack"
  [[ -n "$venv_pack" ]] || die "--deps venv needs venv-pack: pip install venv-pack"
  env_tgz="$BUILD/pool3-env.tar.gz"
  # Packing a TensorFlow venv takes minutes: repack only when site-packages changed.
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if [[ "$dry_run" -eq 0 && ( ! -f "$env_tgz" || "$site" -nt "$env_tgz" ) ]]; then
    mkdir -p "$BUILD"
    echo "spark-submit.sh: packing $venv_prefix into $env_tgz" >&2
    # Into a temporary name first: an interrupted pack must not look up to date.
    "$venv_pack" -p "$venv_prefix" -o "$env_tgz.partial.tar.gz" --force >&2 ||
      die "venv-pack failed for '$venv_prefix' (it refuses editable installs such as 'pip install -e .': make a deployment venv with 'pip install .[cpu] venv-pack' and pass its python as POOL3_PYTHON)"
    mv -f "$env_tgz.partial.tar.gz" "$env_tgz"
  fi
  cmd+=(--archives "$env_tgz#environment" --conf spark.pyspark.python=./environment/bin/python)
  # In client mode the driver runs here, with the local interpreter.
  [[ "$deploy_mode" == cluster ]] || cmd+=(--conf "spark.pyspark.driver.python=$PYSPARK_PYTHON")
fi

# The same lookup as pool3.config: a name ending in .toml or holding a '/' is a path,
# any other name is NAME.toml in $POOL3_CONF_DIR, ./conf, then the repository's conf/.
find_profile() {
  local name="$1" dir
  if [[ "$name" == *.toml || "$name" == */* ]]; then
    [[ -f "$name" ]] && echo "$(cd "$(dirname "$name")" && pwd)/$(basename "$name")"
    return 0
  fi
  for dir in ${POOL3_CONF_DIR:+"$POOL3_CONF_DIR"} ./conf "$REPO/conf"; do
    if [[ -f "$dir/$name.toml" ]]; then
      echo "$(cd "$dir" && pwd)/$name.toml"
      return 0
    fi
  done
  return 0
}

if [[ -n "$profile" ]]; then
  profile_file="$(find_profile "$profile")"
  [[ -n "$profile_file" ]] ||
    die "--conf-profile '$profile' not found: give a .toml path, or NAME for NAME.toml in \$POOL3_CONF_DIR, ./conf or $REPO/conf"
  # A client-mode driver runs here and reads the file where it is. A cluster-mode
  # driver runs in a container whose working directory holds the --files: it gets the
  # base name, and the profile's local-overrides.toml (read from next to the profile)
  # travels with it.
  files="$profile_file" conf_arg="$profile_file"
  if [[ "$deploy_mode" == cluster ]]; then
    conf_arg="$(basename "$profile_file")"
    overrides="$(dirname "$profile_file")/local-overrides.toml"
    [[ -f "$overrides" ]] && files+=",$overrides"
  fi
  cmd+=(--files "$files")
  if [[ ${#job_args[@]} -gt 0 ]]; then
    job_args=("${job_args[0]}" --conf "$conf_arg" "${job_args[@]:1}")
  else
    job_args=(--conf "$conf_arg")
  fi
fi

for kv in ${spark_confs[@]+"${spark_confs[@]}"}; do
  cmd+=(--conf "$kv")
done
cmd+=("$app" ${job_args[@]+"${job_args[@]}"})

if [[ "$dry_run" -eq 1 ]]; then
  # One line a shell can run (the venv archive, if any, is not packed by a dry run).
  printf 'PYSPARK_PYTHON=%q' "$PYSPARK_PYTHON"
  printf ' %q' "${cmd[@]}"
  echo
  exit 0
fi
echo "spark-submit.sh: PYSPARK_PYTHON=$PYSPARK_PYTHON" >&2
exec "${cmd[@]}"
