"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# conda spells some packages differently; `cpuonly` selects the CPU build and has no pip twin.
CONDA_TO_PIP = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip", "cpuonly"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"]["optional-dependencies"].values():
        reqs += extra
    return {_name(r) for r in reqs}


def conda_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name = _name(dep)
            if name not in CONDA_ONLY:
                names.add(CONDA_TO_PIP.get(name, name))
        elif isinstance(dep, dict):  # the `pip:` section: packages conda does not carry
            names |= {_name(r) for r in dep.get("pip", []) if not r.startswith("-e")}
    return names


def test_environment_yml_lists_the_same_packages_as_pyproject():
    pip, conda = pyproject_packages(), conda_packages()
    assert pip == conda, f"only in pyproject: {sorted(pip - conda)}; only in environment.yml: {sorted(conda - pip)}"


def test_conda_environment_is_cpu_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "cpuonly" in env["dependencies"]


def test_constraints_pin_the_cpu_torch():
    pins = (ROOT / "constraints-cpu.txt").read_text()
    assert re.search(r"^torch==\d", pins, flags=re.M)
