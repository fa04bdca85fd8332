#!/usr/bin/env bash
# Build the AWS Lambda artifact (build/lambda.zip) for runtime python3.12 on arm64 (Graviton).
#
# Runtime dependencies (pyproject [project] dependencies + the "aws" extra, never "dev") are installed as
# manylinux2014 (or manylinux_2_28: the python3.12 runtime has glibc 2.34) aarch64 CPython 3.12 wheels, so native code (cryptography, cffi, protobuf) is the one the
# Lambda runtime loads, whatever machine builds the zip. boto3/botocore are included, not taken from the
# runtime's bundled copy, so the SDK version is the one tested. Then attestation_broker/ and functions/ are copied in.
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
for requirement in project["dependencies"] + project["optional-dependencies"]["aws"]:
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
rm -rf "$STAGE/bin"

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
