"""Check the Lambda artifact: size bound, then a smoke import of every handler from the unpacked zip.

    .venv/bin/python scripts/check_lambda_zip.py build/lambda.zip [--max-mb 15]

Run by ``scripts/smoke_deploy.sh`` (``make smoke``, part of ``make test``) right after packaging.

The zip holds CPython 3.12 aarch64 wheels while this may run on x86_64 under another CPython, so the native
extension modules in the zip cannot load here. To keep the smoke import honest, everything pure-Python (the
handlers, ``attestation_broker``, PyJWT, signxml, ...) is imported from the unpacked zip and nothing else: the child
interpreter runs with ``-I -S`` (no site-packages, no user paths), so a module missing from the zip fails the
import. boto3 and its dependencies come from the Lambda runtime, not the zip; this venv's copies stand in for
them, after the zip on the path. Only each foreign native module (an ELF file for another machine) is swapped, in
place, for this venv's build of the *same dotted module name*; a native module the venv lacks is removed, so its
pure-Python fallback (protobuf, cbor2) or an import error shows. The versions of the swapped packages are compared
and must match, or the check fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The Lambda python3.12 runtime's own packages (boto3 and what it imports); package_lambda.sh does not ship them.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

# ELF e_machine values (System V ABI, "Machine" field).
_MACHINES = {"x86_64": 0x3E, "aarch64": 0xB7, "arm64": 0xB7}

CHILD = r"""
import json, os, sys, tempfile
os.environ.update({"BROKER_OFFLINE": "1", "BROKER_DATA_DIR": tempfile.mkdtemp(), "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "smoke", "AWS_SECRET_ACCESS_KEY": "smoke", "AWS_EC2_METADATA_DISABLED": "true"})
import importlib, pathlib
handlers = sorted(p.stem for p in pathlib.Path("functions").glob("*.py") if not p.stem.startswith("_"))
for name in handlers:
    importlib.import_module(f"functions.{name}")
from attestation_broker.registry import default_verifiers
kinds = sorted(v.kind for v in default_verifiers())  # every kind's modules and dependencies are in the zip
import signxml  # the NVIDIA RIM verifier's XML signatures (lxml pruned to what it loads)
from attestation_broker.aws.clients import make_client
for service in ("kms", "dynamodb", "s3"):  # the pruned botocore data still has every model the broker uses
    make_client(service)
from functions.health import handler
event = {"version": "2.0", "rawPath": "/healthz", "headers": {}, "requestContext": {"http": {"method": "GET"}}}
result = handler(event, None)
assert result["statusCode"] == 200, result
outside = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)
                  and "site-packages" in m.__file__ and "/runtime/" not in m.__file__})
print(json.dumps({"handlers": handlers, "kinds": kinds, "site_packages_files": outside}))
"""


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as handle:
        head = handle.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def _dotted(rel: Path) -> str:
    return ".".join([*rel.parent.parts, rel.name.split(".")[0]])


def _dist_versions(root: Path) -> dict[str, str]:
    versions = {}
    for info in root.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        versions[name.lower().replace("_", "-")] = version
    return versions


def swap_native(root: Path) -> list[str]:
    """Replace foreign-machine extension modules with this venv's builds of the same modules; return the names."""
    host = _MACHINES.get(platform.machine())
    swapped = []
    for path in sorted(root.rglob("*.so")):
        machine = _elf_machine(path)
        if machine is None or machine == host:
            continue
        rel = path.relative_to(root)
        dotted = _dotted(rel)
        path.unlink()
        spec = importlib.util.find_spec(dotted)
        if spec is None or not spec.origin or not spec.origin.endswith(".so"):
            print(f"  {dotted}: no native build here; removed (pure-Python fallback or import error)")
            continue
        os.symlink(spec.origin, path.parent / Path(spec.origin).name)
        swapped.append(dotted)
    return swapped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("zip", type=Path)
    parser.add_argument("--max-mb", type=float, default=15.0)
    args = parser.parse_args()
    size_mb = args.zip.stat().st_size / 1e6
    print(f"check_lambda_zip: {args.zip} is {size_mb:.1f} MB zipped (limit {args.max_mb:g} MB)")
    if size_mb > args.max_mb:
        print("check_lambda_zip: FAIL: artifact over the size limit")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "task"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(root)
        if (root / "granian").exists() or (root / "aws_lambda_powertools").exists():
            print("check_lambda_zip: FAIL: the artifact ships a package no function loads")
            return 1
        swapped = swap_native(root)
        zipped = _dist_versions(root)
        owners = importlib.metadata.packages_distributions()
        for dotted in swapped:
            for dist in owners.get(dotted.split(".")[0], []):
                key = dist.lower().replace("_", "-")
                here = importlib.metadata.version(dist)
                if key in zipped and zipped[key] != here:
                    print(f"check_lambda_zip: FAIL: {dist} {zipped[key]} in the zip but {here} here ({dotted})")
                    return 1
        # What the Lambda python3.12 runtime provides besides the zip: boto3 and its dependencies (the venv's copies
        # stand in for the runtime's), after the zip on the path, and nothing else from site-packages.
        runtime = Path(tmp) / "runtime"
        runtime.mkdir()
        for name in RUNTIME_PROVIDED:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                print(f"check_lambda_zip: FAIL: {name} (provided by the Lambda runtime) is not installed here")
                return 1
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            os.symlink(source, runtime / source.name)
        path = f"import sys; sys.path[:0] = [{str(root)!r}]; sys.path.append({str(runtime)!r})"
        command = [sys.executable, "-I", "-S", "-c", f"{path}\n{CHILD}"]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            print(f"check_lambda_zip: FAIL: smoke import from the unpacked zip\n{done.stderr[-3000:]}")
            return 1
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if report["site_packages_files"]:
            print(f"check_lambda_zip: FAIL: modules loaded from outside the zip: {report['site_packages_files'][:5]}")
            return 1
    print(
        f"check_lambda_zip: OK: {len(report['handlers'])} handlers ({', '.join(report['handlers'])}) and "
        f"{len(report['kinds'])} evidence kinds import from the zip alone;"
    )
    print(f"  native modules taken from this venv (same versions): {', '.join(swapped) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
