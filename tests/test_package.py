"""The package as a user gets it: the sdist and the wheel built from the checkout (the wheel from
the sdist, as an index builds it), the wheel installed, not editable, into a fresh virtual
environment, and fusegraph run from a folder outside the checkout."""
from __future__ import annotations

import email
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _source_files() -> list[str]:
    """What a clean clone holds: tracked files plus new ones git does not ignore."""
    r = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT)
    return [f for f in r.stdout.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """sdist and wheel, built from a copy of the checkout (the build writes egg-info and build/
    into its source folder: never into the user's checkout)."""
    src = tmp_path_factory.mktemp("src")
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((ROOT / rel).read_bytes())
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", str(out), str(src)], src)
    (sdist,) = out.glob("fusegraph-*.tar.gz")
    (wheel,) = out.glob("fusegraph-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed. Its dependencies are this venv's, seen through a .pth
    line (a path line: the editable install's own .pth files there are not run), so the test
    needs no download; `pip check` then proves the wheel's requirements are all met."""
    env_dir = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env_dir)
                .stdout.strip())
    (site / "_fusegraph_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(py), "--disable-pip-version-check"]
    _run(pip + ["install", "--no-deps", "--no-index", str(dist["wheel"])], env_dir)
    _run(pip + ["check"], env_dir)
    return env_dir


def test_wheel_holds_one_namespace_with_its_shaders_presets_and_media(dist):
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fusegraph", f"{dist['wheel'].name.split('-')[0]}-{PYPROJECT['project']['version']}.dist-info"}
    for folder, pattern in (("shaders", "*.glsl"), ("presets", "*.json"), ("presets/media", "*")):
        shipped = {p.name for p in (ROOT / folder).glob(pattern) if p.is_file()}
        assert shipped, folder
        packed = {Path(n).name for n in names if n.startswith(f"fusegraph/{folder}/") and n.count("/") ==
                  folder.count("/") + 2}
        assert shipped <= packed, f"missing from the wheel: {sorted(shipped - packed)}"
    sdist = tarfile.open(dist["sdist"]).getnames()
    assert any(n.endswith("/shaders/blur.glsl") for n in sdist) and any(n.endswith("/LICENSE") for n in sdist)


def test_wheel_metadata_is_what_an_index_shows(dist):
    trove = pytest.importorskip("trove_classifiers")
    with zipfile.ZipFile(dist["wheel"]) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
        entry_points = z.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
        licence = z.read(meta_name.replace("METADATA", "licenses/LICENSE")).decode()
    project = PYPROJECT["project"]
    assert meta["Name"] == "fusegraph" and meta["Version"] == project["version"]
    assert meta["License-Expression"] == "MIT" and licence.startswith("MIT License")
    assert meta["Requires-Python"] == ">=3.11"
    assert set(meta.get_all("Provides-Extra")) >= {"test", "bench", "ray"}
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# fusegraph")  # the README is the long description
    classifiers = meta.get_all("Classifier")
    assert classifiers and not [c for c in classifiers if c not in trove.classifiers]
    assert "fusegraph = fusegraph.runtime.cli:main" in entry_points


def test_installed_wheel_runs_outside_the_checkout(venv, tmp_path):
    exe = venv / "bin" / "fusegraph"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    work = tmp_path / "elsewhere"
    work.mkdir()

    where = _run([str(venv / "bin" / "python"), "-c",
                  "import fusegraph.runtime, fusegraph.nodes, fusegraph.editor; print(fusegraph.runtime.__file__)"],
                 work, env).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    for generic in ("runtime", "nodes", "editor", "shaders", "presets"):
        r = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {generic}"], cwd=work, env=env,
                           capture_output=True, text=True)
        assert r.returncode != 0, f"the wheel installed a top-level package '{generic}'"

    listed = _run([str(exe), "presets"], work, env).stdout
    shipped = sorted(p.stem for p in (ROOT / "presets").glob("*.json"))
    assert [line.split()[0] for line in listed.splitlines()] == shipped
    r = _run([str(exe), "validate", *shipped], work, env)
    assert r.stdout.count(": ok") == len(shipped)

    _run([str(exe), "run", "stylise", "--frames", "3", "--quiet", "--set", "out.path=stylised.mp4"], work, env)
    with av.open(str(work / "stylised.mp4")) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == 3 and frames[0].std() > 10  # a real picture, not a blank
    assert sorted(p.name for p in work.iterdir()) == ["stylised.mp4"]  # and nothing else written


def test_code_imports_our_packages_only_through_the_namespace():
    """`import runtime` works by accident in the checkout (the CWD is on sys.path) and then loads
    every module twice, under two names; installed, it fails. Catch it before a user does."""
    import re

    bare = re.compile(r"^\s*(from|import)\s+(runtime|nodes|editor|shaders|presets)\b", re.M)
    offenders = [f"{rel}:{text[:m.start()].count(chr(10)) + 1}"
                 for rel in _source_files() if rel.endswith(".py")
                 for text in [(ROOT / rel).read_text(encoding="utf-8")] for m in bare.finditer(text)]
    assert not offenders, f"import fusegraph.<package> instead: {offenders}"
