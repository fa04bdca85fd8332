#!/usr/bin/env bash
# Build the AWS Lambda artifact (build/lambda.zip) for runtime python3.12 on arm64 (Graviton).
#
# Runtime dependencies (pyproject [project] dependencies + the "aws" extra, never "dev") are installed as
# manylinux2014 (or manylinux_2_28: the python3.12 runtime has glibc 2.34) aarch64 CPython 3.12 wheels, so native code (cryptography, cffi, protobuf) is the one the
# Lambda runtime loads, whatever machine builds the zip. Then attestation_broker/ and functions/ are copied in.
#
# Only what the functions load is shipped (the artifact must stay under 15 MB zipped; check_lambda_zip.py
# enforces it in `make smoke`):
# - granian and uvloop (the local server) are left out: no function imports them.
# - boto3/botocore are NOT shipped: the Lambda python3.12 runtime provides them (1.5 MB zipped even with
#   botocore's service models pruned to kms/dynamodb/s3/sts). The broker calls only long-stable operations
#   (KMS Sign/GetPublicKey, DynamoDB conditional PutItem, S3 Get/Put/ListObjectsV2) through plain clients, so
#   the runtime's SDK serves them; check_lambda_zip.py imports the handlers with a boto3 standing in for the
#   runtime's. Should a dependency ever pull botocore in, its models are still pruned to those services below.
# - pyyaml's C extension is dropped: the policy loader uses yaml.safe_load (the pure-Python SafeLoader).
# - cel-expr-python's wheel also carries its build tree (bazel-project/, 7 MB) at the top level: dropped.
# - lxml keeps only what signxml loads (lxml.etree and its helpers).
# The zip is reproducible for a given set of wheels: fixed timestamps, sorted entries, no __pycache__.
#
# Usage: scripts/package_lambda.sh [OUTPUT_ZIP]      (env PYTHON: interpreter used to run pip and zip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build/lambda.zip}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
STAGE="$ROOT/build/lambda"

rm -rf "$STAGE"
mkdir -p "$STAGE" "$(dirname "$OUT")"

# The requirement list is read from pyproject.toml so it cannot drift from the package metadata.
"$PYTHON" - "$ROOT/pyproject.toml" > "$ROOT/build/lambda-requirements.txt" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
# granian and uvloop are the local server (attestation-broker serve); no Lambda function imports them.
# boto3 (and botocore, s3transfer, jmespath, dateutil, urllib3) comes with the Lambda python3.12 runtime.
LOCAL_ONLY = {"granian", "uvloop", "boto3"}
for requirement in project["dependencies"] + project["optional-dependencies"]["aws"]:
    name = requirement.split(">")[0].split("=")[0].split("[")[0].strip().lower()
    if name not in LOCAL_ONLY:
        print(requirement)
PY

"$PYTHON" -m pip install \
  --quiet --disable-pip-version-check --no-compile \
  --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --only-binary=:all: \
  --python-version 3.12 --implementation cp --abi cp312 \
  --target "$STAGE" \
  -r "$ROOT/build/lambda-requirements.txt"

# Application code: the importable package and the thin handlers (no tests, no caches).
# The package lives in shared/attestation_broker (src-style); it sits at the zip root as attestation_broker/.
for src in shared/attestation_broker:attestation_broker functions:functions; do
  from="${src%%:*}" to="${src##*:}"
  (cd "$ROOT/$from" && find . -type d -name __pycache__ -prune -o -type f ! -name '*.pyc' -print) |
    while read -r file; do
      mkdir -p "$STAGE/$to/$(dirname "$file")"
      cp "$ROOT/$from/$file" "$STAGE/$to/$file"
    done
done

# The operator's appraisal policy (docs/policy.md "Deployment"), bundled at policy/broker-policy.yaml when
# POLICY_FILE names one; validated here so a broken document never reaches a deploy.
if [ -n "${POLICY_FILE:-}" ]; then
  "$ROOT/.venv/bin/attestation-broker" policy check "$POLICY_FILE" >/dev/null || {
    "$ROOT/.venv/bin/attestation-broker" policy check "$POLICY_FILE"; exit 2; }
  mkdir -p "$STAGE/policy" && cp "$POLICY_FILE" "$STAGE/policy/broker-policy.yaml"
fi

# Trim what the runtime never loads (the policy engine uses no CEL extension library: 36 MB of .so files).
find "$STAGE" -type d -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$STAGE/cel_expr_python/ext"
rm -rf "$STAGE/bazel-project"
rm -f "$STAGE"/yaml/_yaml.*.so
rm -rf "$STAGE/bin"
KEEP_SERVICES="kms dynamodb s3 sts"
for dir in "$STAGE/botocore/data" "$STAGE/boto3/data"; do
  [[ -d "$dir" ]] || continue
  for service in "$dir"/*/; do
    name="$(basename "$service")"
    [[ " $KEEP_SERVICES " == *" $name "* ]] || rm -rf "$service"
  done
done
# Example requests are documentation, never loaded by a client.
[[ -d "$STAGE/botocore/data" ]] && find "$STAGE/botocore/data" -name 'examples-1.json' -delete
# lxml (NVIDIA RIM signatures through signxml, which imports only lxml.etree): drop its C headers and Cython
# sources and the submodules nothing imports (objectify, html, isoschematron).
if [[ -d "$STAGE/lxml" ]]; then
  rm -rf "$STAGE/lxml/includes" "$STAGE/lxml/html" "$STAGE/lxml/isoschematron"
  rm -f "$STAGE"/lxml/objectify.* "$STAGE"/lxml/*.pyx "$STAGE"/lxml/*.pxd "$STAGE"/lxml/*.pxi "$STAGE"/lxml/*.h
fi

"$PYTHON" - "$STAGE" "$OUT" <<'PY'
import os
import sys
import zipfile

stage, out = sys.argv[1], sys.argv[2]
entries = []
for base, dirs, files in os.walk(stage):
    dirs.sort()
    for name in sorted(files):
        path = os.path.join(base, name)
        entries.append((os.path.relpath(path, stage), path))
tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for arcname, path in sorted(entries):
        info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
        mode = 0o755 if os.access(path, os.X_OK) else 0o644
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as handle:
            archive.writestr(info, handle.read(), compresslevel=9)
os.replace(tmp, out)
size = os.path.getsize(out)
unzipped = sum(os.path.getsize(p) for _, p in entries)
print(f"{out}: {size / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped, {len(entries)} files")
PY
