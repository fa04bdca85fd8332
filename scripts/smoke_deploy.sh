#!/usr/bin/env bash
# CI smoke test of the AWS deployment without an account: build the real Lambda artifact, compile the
# CloudFormation stack with `serverless package` (dummy credentials, telemetry off, no AWS call), lint it.
# Needs: `npm ci` done, the project venv (cfn-lint), network to PyPI for the arm64 wheels.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/build/sls-package"

bash scripts/package_lambda.sh build/lambda.zip
# Size bound (15 MB zipped) and a smoke import of every handler from the unpacked zip alone.
.venv/bin/python scripts/check_lambda_zip.py build/lambda.zip --max-mb 15

export AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy AWS_EC2_METADATA_DISABLED=true
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off SLS_DEPRECATION_DISABLE='*'
unset AWS_PROFILE AWS_SESSION_TOKEN
rm -rf "$OUT"
node_modules/.bin/serverless package --stage ci --region us-east-1 --package "$OUT"

# W3005 (redundant DependsOn) is in the Framework's generated resources, not ours.
.venv/bin/cfn-lint --ignore-checks W3005 -- "$OUT/cloudformation-template-update-stack.json"
.venv/bin/cfn-lint --include-checks I -- infra/*.yml
ls -l "$OUT"/*.zip 2>/dev/null || true
echo "smoke_deploy: OK ($(du -h build/lambda.zip | cut -f1) artifact)"
