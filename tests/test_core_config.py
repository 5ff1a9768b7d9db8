"""The neutral layer's config objects: the build variant's defaults live in one place, and the package layers
import downwards only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fireforge.core.config import (EXTERNAL_TAP_DEPTH, TAP_DEPTH, BuildVariant, EngineConfig, channel_groups)
from fireforge.errors import FireforgeError

ROOT = Path(__file__).resolve().parent.parent


def test_build_variant_defaults_and_family_choice():
    assert BuildVariant().reads_in_flight == TAP_DEPTH
    assert BuildVariant(act_memory="external").reads_in_flight == EXTERNAL_TAP_DEPTH
    assert BuildVariant(read_depth=32).reads_in_flight == 32
    ecp5 = BuildVariant.for_family("ecp5")
    assert (ecp5.mac_products, ecp5.multipliers) == ("lut", "ecp5")
    assert (BuildVariant.for_family("ice40").mac_products, BuildVariant.for_family("ice40").multipliers) == ("lut", "inferred")
    assert (BuildVariant.for_family("xc7").mac_products, BuildVariant.for_family("xc7").multipliers) == ("dsp", "inferred")
    assert BuildVariant().tag() == "" and BuildVariant(act_memory="external").tag() == "reads64-external"


@pytest.mark.parametrize("kw, words", [({"act_memory": "dram"}, "act_memory"), ({"mac_products": "x"}, "mac_products"),
                                       ({"multipliers": "gowin"}, "multipliers"), ({"read_depth": 1}, "read_depth")])
def test_build_variant_refuses_unknown_values(kw, words):
    with pytest.raises(FireforgeError, match=words):
        BuildVariant(**kw)


def test_channel_groups():
    assert [channel_groups(c, 8) for c in (1, 8, 9, 16, 27)] == [1, 1, 2, 2, 4]
    assert EngineConfig(mac_units=16).groups(5) == 2


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fireforge."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("fireforge."))
    return out


#: what each package may import (besides itself and fireforge.errors): core <- hw <- sim <- sw <- explorer <- cli
#: (the explorer builds models as well as compiling them, so it sits above both)
ALLOWED = {"core": set(), "models": {"core"}, "hw": {"core"}, "sim": {"core", "hw"}, "sw": {"core", "hw", "sim"},
           "explorer": {"core", "models", "hw", "sim", "sw"}}
FOLDERS = {"core": ROOT / "fireforge" / "core", "models": ROOT / "models", "hw": ROOT / "hw", "sim": ROOT / "sim",
           "sw": ROOT / "sw", "explorer": ROOT / "fireforge" / "explorer"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_lower_layers(package):
    bad = []
    for path in FOLDERS[package].rglob("*.py"):
        for dep in _imports(path) - {package, "errors"}:
            if dep not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports fireforge.{dep}")
    assert not bad, "; ".join(bad)


def test_every_package_is_listed_in_pyproject():
    """A non-editable install ships only the packages pyproject.toml lists (the folders are mapped by hand)."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    folders = {name: ROOT / path for name, path in setup["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            if "build" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
