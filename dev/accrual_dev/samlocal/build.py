"""The functions built for this machine's architecture, apart from the deployment build.

`sam build` (`make build`) builds for the template's `Architecture` parameter, arm64 by default, into `.aws-sam/build`;
that stays as it is. Here the same template is built with `--parameter-overrides Architecture=<this machine's>` into
`.aws-sam/local/build`, so the layer's compiled wheels (pydantic-core) match the local Lambda container. Two things
are then set in that local build's template only, never in template.yaml:

- the `Architecture` parameter's default becomes this machine's, so `sam local invoke -t .aws-sam/local/build/...`
  picks the matching base image without a `--parameter-overrides`;
- every function declares `AWS_ENDPOINT_URL` (empty: AWS itself), because `sam local invoke --env-vars` sets only the
  variables a function declares, and the local stack is reached through that variable.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from accrual_dev.samlocal import SetupError, local_dir, repository_root

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"


@dataclass
class LocalBuild:
    template: Path
    architecture: str
    seconds: float


def sam_cli() -> Path:
    sam = repository_root() / ".tools" / "venv" / "bin" / "sam"
    if not sam.exists():
        raise SetupError(f"the SAM CLI is not installed ({sam}): run `make tools`")
    return sam


def build_dir() -> Path:
    return local_dir() / "build"


def local_template() -> Path:
    return build_dir() / "template.yaml"


def sam_environment() -> dict[str, str]:
    """The SAM CLI's environment: no telemetry, and no endpoint of ours leaking into the CLI's own AWS calls."""
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    environment.pop(ENDPOINT_VARIABLE, None)
    return environment


def build_functions(architecture: str) -> LocalBuild:
    """`sam build` for `architecture` into the local build folder (cached: unchanged code is not built again)."""
    started = time.monotonic()
    root = repository_root()
    command = [
        str(sam_cli()),
        "build",
        "--template-file",
        str(root / "template.yaml"),
        "--parameter-overrides",
        f"Architecture={architecture}",
        "--build-dir",
        str(build_dir()),
        "--cache-dir",
        str(local_dir() / "cache"),
        "--cached",
    ]
    print(
        f"sam-local: sam build --parameter-overrides Architecture={architecture} "
        f"--build-dir {build_dir().relative_to(root)}",
        flush=True,
    )
    done = subprocess.run(
        command, cwd=root, capture_output=True, text=True, env=sam_environment(), stdin=subprocess.DEVNULL
    )
    if done.returncode:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        raise SetupError(f"sam build for {architecture} failed: {' / '.join(lines[-3:])}")
    prepare_local_template(local_template(), architecture)
    return LocalBuild(local_template(), architecture, time.monotonic() - started)


def _load(path: Path) -> dict[str, Any]:
    from accrual_dev.local.provision import load_template  # reads the short intrinsic forms too

    return load_template(path)


def prepare_local_template(path: Path, architecture: str) -> dict[str, Any]:
    """Make the built template's default architecture `architecture` and declare AWS_ENDPOINT_URL everywhere."""
    template = _load(path)
    parameter = template.get("Parameters", {}).get("Architecture")
    if parameter is None:
        raise SetupError("template.yaml has no Architecture parameter: the local build cannot pick its architecture")
    parameter["Default"] = architecture
    function = template.setdefault("Globals", {}).setdefault("Function", {})
    variables = function.setdefault("Environment", {}).setdefault("Variables", {})
    variables.setdefault(ENDPOINT_VARIABLE, "")
    path.write_text(yaml.safe_dump(template, sort_keys=False, width=120))
    return template


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's functions (logical id -> properties), in template order."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }
