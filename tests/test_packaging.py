"""A built wheel carries configs/ and registry/: `vaezoo list` works from a fresh venv; both archives, and each
weight pack's (weightpacks/), keep to the weight budget (registry/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli, the same parser
    import tomli as tomllib

from vaezoo.hub.index import read_entry
from vaezoo.hub.packs import PACKS

REPO = Path(__file__).resolve().parents[1]
# the Python package index refuses an uploaded file over 100 MB: each archive keeps 5 MB short of it
ARCHIVE_BUDGET_BYTES = 95_000_000


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # No build isolation: hatchling comes with the test extras, so this works offline.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("vaezoo-*.whl")
    return path


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)],
                   check=True, capture_output=True, text=True, cwd=REPO)
    (path,) = out.glob("vaezoo-*.tar.gz")
    return path


def test_both_archives_keep_to_the_weight_budget(wheel, sdist):
    weights = {p.name for p in (REPO / "registry" / "weights").glob("*.safetensors")}
    in_wheel = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if n.startswith("vaezoo/_zoo/registry/weights/")}
    with tarfile.open(sdist) as archive:
        in_sdist = {Path(n).name for n in archive.getnames() if "/registry/weights/" in n}
    assert weights and weights == in_wheel == in_sdist, "every shipped weights file travels in both archives"
    sizes = {p.name: p.stat().st_size for p in (wheel, sdist)}
    assert all(size <= ARCHIVE_BUDGET_BYTES for size in sizes.values()), f"{sizes}: see registry/README.md"


def _project_version(pyproject: Path) -> str:
    return tomllib.loads(pyproject.read_text())["project"]["version"]


@pytest.fixture(scope="module")
def pack_archives(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each weight pack's wheel and sdist, built from its folder the way a release builds it."""
    archives = {}
    for key in PACKS:
        out = tmp_path_factory.mktemp(f"pack-{key}")
        subprocess.run([sys.executable, "-m", "hatchling", "build", "-d", str(out)],
                       check=True, capture_output=True, text=True, cwd=REPO / "weightpacks" / key)
        (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
        archives[key] = wheel, sdist
    return archives


def test_each_weight_pack_carries_its_entries_weights_within_the_budget(pack_archives, wheel):
    entries = [read_entry(p) for p in (REPO / "registry").glob("*.json")]
    main_version = _project_version(REPO / "pyproject.toml")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    in_main_wheel = set(zipfile.ZipFile(wheel).namelist())
    for key, (pack_wheel, pack_sdist) in pack_archives.items():
        pack = PACKS[key]
        # released together: the pack's version is vaezoo's, and vaezoo's extra pins it
        assert _project_version(REPO / "weightpacks" / key / "pyproject.toml") == main_version
        assert extras[f"weights-{key}"] == [f"{pack.distribution}=={main_version}"]
        expected = {Path(e.shipped).name for e in entries if e.pack == key and e.shipped}
        names = zipfile.ZipFile(pack_wheel).namelist()
        in_wheel = {Path(n).name for n in names if n.startswith(f"{pack.package}/weights/")}
        with tarfile.open(pack_sdist) as archive:
            in_sdist = {Path(n).name for n in archive.getnames() if f"/{pack.package}/weights/" in n}
        assert expected == in_wheel == in_sdist, "every file of the pack travels in both of its archives"
        assert f"{pack.package}/__init__.py" in names and not any(n.endswith(".py") and "weights/" in n for n in names)
        assert not {n for n in in_main_wheel if Path(n).name in expected}, "a packed file is not in vaezoo's wheel too"
        sizes = {p.name: p.stat().st_size for p in (pack_wheel, pack_sdist)}
        assert all(size <= ARCHIVE_BUDGET_BYTES for size in sizes.values()), f"{sizes}: see registry/README.md"


def test_wheel_contains_the_zoo(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    configs = {Path(n).name for n in names if n.startswith("vaezoo/_zoo/configs/")}
    expected = {p.name for p in (REPO / "configs").glob("*.yaml")}
    assert expected and expected <= configs
    assert "vaezoo/_zoo/registry/README.md" in names
    assert not any(n.startswith("tests/") for n in names)


def test_fresh_venv_with_the_wheel_lists_models(wheel, pack_archives, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel),
         *(str(pack_wheel) for pack_wheel, _ in pack_archives.values())],
        check=True, capture_output=True, text=True,
    )
    # The heavy dependencies (torch, ...) come from this environment through a .pth line;
    # vaezoo itself only from the wheel: this checkout is neither on the path nor the cwd.
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(capture_output=True, text=True, env=env, cwd=tmp_path)

    where = subprocess.run([str(python), "-c", "import vaezoo, vaezoo.resources as r; "
                            "print(vaezoo.__file__); print(r.configs_dir())"], **run)
    assert where.returncode == 0, where.stderr
    module_file, configs = where.stdout.split()
    assert module_file.startswith(str(venv)) and configs.startswith(str(venv))

    # an installed weight pack is found in the venv's site-packages (no checkout beside this vaezoo)
    packs = subprocess.run([str(python), "-c", "from vaezoo.hub.packs import PACKS\n"
                            "for key, pack in sorted(PACKS.items()): print(key, *pack.installed_folders())"], **run)
    assert packs.returncode == 0, packs.stderr
    found = dict(line.split() for line in packs.stdout.splitlines())
    assert set(found) == set(PACKS) and all(path.startswith(str(site)) for path in found.values())

    listing = subprocess.run([str(venv / "bin" / "vaezoo"), "list"], **run)
    assert listing.returncode == 0, listing.stderr
    assert {"fashion-conv64", "fashion-conv16", "fashion-mlp16"} <= set(listing.stdout.split())

    info = subprocess.run([str(venv / "bin" / "vaezoo"), "info", "fashion-conv64"], **run)
    assert info.returncode == 0, info.stderr
    assert "5,997,825" in info.stdout
