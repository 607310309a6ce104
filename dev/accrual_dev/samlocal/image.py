"""The Lambda base image `sam local invoke` starts for a python3.12 function: `public.ecr.aws/lambda/python:3.12-<arch>`.

The official image is pulled where its registry can be reached. Where it cannot (a machine that reaches only package
registries), a stand-in is built once from Debian packages and tagged with the official name, so that the SAM CLI
(given `--skip-pull-image`) uses it unchanged:

- a `debootstrap --variant=minbase bookworm` root file system with the shared libraries Python's extension modules
  load (OpenSSL, libffi, SQLite, zlib, bzip2, xz, ...), from this machine's own Debian mirror;
- this machine's Python 3.12 (the interpreter, its standard library and libpython) copied to `/var/lang`, found
  through `LD_LIBRARY_PATH=/var/lang/lib` as in Lambda;
- `awslambdaric` (the runtime interface client) and `boto3`, pinned in `standin-requirements.txt`, in `/var/runtime`;
- `/var/runtime/bootstrap`, which runs `python3.12 -m awslambdaric "$_HANDLER"` with the function in `/var/task`
  and the layers' `/opt/python` on the path.

The image carries the label `accrual.sam-local.stand-in` (a fingerprint of the recipe and the Python version): a
stand-in built from another recipe is rebuilt, an official image is never replaced.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from accrual_dev.samlocal import SetupError, local_dir
from accrual_dev.samlocal.daemon import apt_install

OFFICIAL_REPOSITORY = "public.ecr.aws/lambda/python"
RUNTIME_VERSION = "3.12"
STANDIN_LABEL = "accrual.sam-local.stand-in"
# Raise it when the build steps below change in a way the fingerprint's other parts do not show.
RECIPE_VERSION = 1
REQUIREMENTS = Path(__file__).with_name("standin-requirements.txt")
SUITE = "bookworm"
# The shared libraries the standard library's extension modules link against (ldd of lib-dynload), as Debian
# packages; ca-certificates for TLS to AWS.
DEBIAN_PACKAGES = (
    "ca-certificates",
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "zlib1g",
    "libbz2-1.0",
    "liblzma5",
    "libexpat1",
    "libncursesw6",
    "libreadline8",
    "libuuid1",
    "libnsl2",
    "libtirpc3",
    "libcrypt1",
    "libgdbm6",
)
# Left out of the copied standard library: what a Lambda function never imports, and the build machine's own
# site-packages (the image's packages are the pinned ones in /var/runtime).
STDLIB_SKIPPED = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}
# The environment a python3.12 Lambda function sees (the parts that are not per function).
IMAGE_ENVIRONMENT = {
    "LANG": "C.UTF-8",
    "TZ": ":UTC",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
BOOTSTRAP = """#!/bin/sh
# The stand-in's runtime: the Lambda runtime interface client runs the handler named by $_HANDLER, with the function
# (/var/task) first on the path, then the layers (/opt/python), then the runtime's own packages, as in Lambda.
export PYTHONPATH="/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.12 -m awslambdaric "$_HANDLER"
"""
# Imported in the built image before it is tagged: a missing shared library fails the build, not an invoke.
SMOKE_IMPORTS = "ssl, ctypes, sqlite3, lzma, bz2, zlib, decimal, uuid, zoneinfo, awslambdaric, boto3"


@dataclass
class BaseImage:
    name: str
    kind: str  # official | stand-in
    action: str  # present | pulled | built
    seconds: float = 0.0


def lambda_architecture(machine: str | None = None) -> str:
    """This machine's architecture as Lambda names it (x86_64 or arm64)."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    raise SetupError(f"Lambda has no architecture for this machine ({machine}): only x86_64 and arm64")


def official_name(architecture: str) -> str:
    return f"{OFFICIAL_REPOSITORY}:{RUNTIME_VERSION}-{architecture}"


def standin_fingerprint() -> str:
    """Changes when the recipe, the pins or the copied Python change: the stand-in is then rebuilt."""
    recipe = repr(
        (
            RECIPE_VERSION,
            SUITE,
            DEBIAN_PACKAGES,
            sorted(STDLIB_SKIPPED),
            IMAGE_ENVIRONMENT,
            BOOTSTRAP,
            REQUIREMENTS.read_text(),
            sys.version,
        )
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _image_label(name: str) -> str | None:
    """None when the image is absent; '' for an image without the stand-in label (the official one)."""
    answer = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{STANDIN_LABEL}" }}}}', name],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if answer.returncode:
        return None
    label = answer.stdout.strip()
    return "" if label in ("", "<no value>") else label


def ensure_base_image(architecture: str, *, pull: bool = True) -> BaseImage:
    """The base image for python3.12 on `architecture`: present, pulled, or the stand-in built (once)."""
    name = official_name(architecture)
    label = _image_label(name)
    if label == "":
        return BaseImage(name, "official", "present")
    if label == standin_fingerprint():
        return BaseImage(name, "stand-in", "present")
    started = time.monotonic()
    if label is None and pull and os.environ.get("SAM_LOCAL_BASE_IMAGE", "auto") != "stand-in":
        print(f"sam-local: pulling {name}", flush=True)
        pulled = subprocess.run(
            ["docker", "pull", "--quiet", name], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900
        )
        if pulled.returncode == 0:
            return BaseImage(name, "official", "pulled", time.monotonic() - started)
        reason = (pulled.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"sam-local: cannot pull it ({reason[-200:]}); building the stand-in", flush=True)
    elif label is not None:
        print("sam-local: the stand-in image was built from another recipe; building it again", flush=True)
    build_standin(name, architecture)
    return BaseImage(name, "stand-in", "built", time.monotonic() - started)


def debian_mirror(
    sources: tuple[Path, ...] = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")),
) -> str | None:
    """This machine's Debian mirror for the suite (from its apt sources), or None for debootstrap's default."""
    texts: list[str] = []
    for source in sources:
        files = sorted(source.glob("*.sources")) + sorted(source.glob("*.list")) if source.is_dir() else [source]
        texts += [path.read_text(errors="replace") for path in files if path.is_file()]
    for text in texts:
        # deb822 stanzas (URIs: / Suites:) and one-line entries (deb URI suite components).
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            enabled = not re.search(r"^Enabled:\s*no", stanza, re.MULTILINE | re.IGNORECASE)
            if uris and suites and enabled and SUITE in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and not parts[1].startswith("[") and parts[2] == SUITE:
                return parts[1]
    return None


def _python_files() -> tuple[Path, Path, list[Path]]:
    """This machine's Python 3.12: the interpreter, its standard library and its shared libpython (if any)."""
    executable = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if sys.version_info[:2] != (3, 12) or not (stdlib / "os.py").is_file():
        raise SetupError(
            f"the stand-in needs this machine's Python 3.12; this is {sys.version.split()[0]} at {executable}"
        )
    libraries: list[Path] = []
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library_dir = Path(sysconfig.get_config_var("LIBDIR") or "")
        libraries = sorted(library_dir.glob("libpython3*.so*"))
    return executable, stdlib, libraries


def _copy_python(rootfs: Path) -> None:
    executable, stdlib, libraries = _python_files()
    lang = rootfs / "var" / "lang"
    (lang / "bin").mkdir(parents=True)
    (lang / "lib").mkdir(parents=True)
    shutil.copy2(executable, lang / "bin" / "python3.12")
    for name in ("python3", "python"):
        (lang / "bin" / name).symlink_to("python3.12")
    for library in libraries:
        target = lang / "lib" / library.name
        if library.is_symlink():
            target.symlink_to(os.readlink(library))
        else:
            shutil.copy2(library, target)

    def skipped(folder: str, names: list[str]) -> set[str]:
        return STDLIB_SKIPPED.intersection(names) if Path(folder) == stdlib else set()

    shutil.copytree(stdlib, lang / "lib" / "python3.12", ignore=skipped, symlinks=True)
    (lang / "lib" / "python3.12" / "site-packages").mkdir()


def _install_runtime(rootfs: Path, architecture: str) -> None:
    runtime = rootfs / "var" / "runtime"
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            f"manylinux2014_{machine}",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--target",
            str(runtime),
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode:
        raise SetupError(
            f"pip could not install the stand-in's runtime packages: "
            f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}"
        )
    bootstrap = runtime / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)
    for folder in ("var/task", "opt"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)


def _debootstrap(rootfs: Path) -> None:
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    mirror = debian_mirror()
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", SUITE, str(rootfs)]
    print(f"sam-local: debootstrap --variant=minbase {SUITE} (about a minute)", flush=True)
    done = subprocess.run(
        command + ([mirror] if mirror else []), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise SetupError(f"debootstrap failed: {tail[0][-300:]}")
    # Package lists and downloaded .debs are not needed at run time.
    for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / folder).glob("*"):
            if item.is_file():
                item.unlink()


def _import(rootfs: Path, name: str) -> None:
    changes = [f"ENV {key}={value}" for key, value in IMAGE_ENVIRONMENT.items()]
    changes += [
        "WORKDIR /var/task",
        'ENTRYPOINT ["/var/runtime/bootstrap"]',
        f"LABEL {STANDIN_LABEL}={standin_fingerprint()}",
    ]
    arguments = [argument for change in changes for argument in ("--change", change)]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    imported = subprocess.run(
        ["docker", "import", *arguments, "-", name], stdin=tar.stdout, capture_output=True, text=True
    )
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() or imported.returncode:
        raise SetupError(f"docker import of the stand-in failed: {imported.stderr.strip()[-300:]}")


def _smoke_test(name: str) -> None:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/var/lang/bin/python3.12",
            "-e",
            "PYTHONPATH=/var/runtime",
            name,
            "-c",
            f"import {SMOKE_IMPORTS}",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    if done.returncode:
        subprocess.run(["docker", "image", "rm", "--force", name], capture_output=True, stdin=subprocess.DEVNULL)
        raise SetupError(
            f"the stand-in image cannot import what Lambda functions need: "
            f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}"
        )


def build_standin(name: str, architecture: str) -> None:
    """Build the stand-in base image from Debian packages and this machine's Python, tagged `name`."""
    if os.geteuid() != 0:
        raise SetupError(
            f"{name} cannot be pulled here and building the stand-in needs root (debootstrap): run "
            "`make sam-local` as root once"
        )
    if lambda_architecture() != architecture:
        raise SetupError(f"the stand-in is built for this machine's architecture only, not {architecture}")
    local_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="standin-", dir=local_dir()))
    rootfs = workdir / "rootfs"
    try:
        _debootstrap(rootfs)
        _copy_python(rootfs)
        _install_runtime(rootfs, architecture)
        _import(rootfs, name)
        _smoke_test(name)
    finally:
        for mount in ("proc", "sys", "dev/pts"):  # debootstrap mounts these while it works; a failure may leave them
            if os.path.ismount(rootfs / mount):
                subprocess.run(["umount", "-l", str(rootfs / mount)], check=False)
        shutil.rmtree(workdir, ignore_errors=True)
