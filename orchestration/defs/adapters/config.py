"""The deployment's adapters: the YAML file ``CSW_ADAPTERS`` names, read and validated.

.. code-block:: yaml

    adapters:
      - system: stripe            # stripe | salesforce | hubspot | segment, each at most once
        source: /data/stripe      # the connector's or export's folder
        mapping: stripe.yaml      # optional: the mapping file; left out = the defaults
      - system: salesforce
        source: exports/salesforce

Relative ``source`` and ``mapping`` paths resolve against the YAML file's folder. Every problem
is reported at once, each naming the file, the entry and the field; the mapping files are read
and validated too, so a bad one stops the code location (and ``csw run``) before any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestration.defs.adapters.registry import SYSTEMS

FIELDS = ("system", "source", "mapping")


class AdaptersConfigError(ValueError):
    """The adapters YAML cannot be used; the message names the file and every problem."""


@dataclass(frozen=True)
class AdapterConfig:
    system: str
    source: Path
    #: None = the adapter's default mapping.
    mapping: Path | None = None


def _fail(path: Path, problems: list[str]) -> AdaptersConfigError:
    return AdaptersConfigError(
        f"{path}: the adapters configuration (CSW_ADAPTERS) has {len(problems)} problem(s):\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nFix the file (docs/adapters.md, 'Running adapters'), or unset CSW_ADAPTERS to run"
        " without adapters; nothing was run."
    )


def _path(folder: Path, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else folder / path


def _entry(
    folder: Path, index: int, entry: Any, seen: set[str], problems: list[str]
) -> AdapterConfig | None:
    where = f"adapters[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping with system, source and mapping")
        return None
    system = entry.get("system")
    where = f"{where} ({system})" if isinstance(system, str) else where
    before = len(problems)
    unknown = sorted(str(k) for k in entry if k not in FIELDS)
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}"
        )
    if system not in SYSTEMS:
        problems.append(
            f"{where}: system {system!r} is not one of {', '.join(SYSTEMS)}"
            if system is not None
            else f"{where}: system is missing (one of {', '.join(SYSTEMS)})"
        )
    elif system in seen:
        problems.append(f"{where}: {system} is configured twice; keep one entry per system")
    else:
        seen.add(system)
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{where}: source is missing: the folder holding the system's files")
    mapping_value = entry.get("mapping")
    mapping = None if mapping_value is None else _path(folder, mapping_value)
    if mapping is not None and not mapping.is_file():
        problems.append(f"{where}: mapping file {mapping} does not exist")
    elif mapping is not None and system in SYSTEMS:
        try:
            SYSTEMS[system].load_mapping(mapping)
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            problems.append(f"{where}: mapping: {exc}")
    if len(problems) > before:
        return None
    return AdapterConfig(str(system), _path(folder, source), mapping)


def load_adapters_config(path: Path) -> tuple[AdapterConfig, ...]:
    """The adapters ``path`` configures, in file order; AdaptersConfigError naming every
    problem otherwise."""
    if not path.is_file():
        raise _fail(path, ["the file does not exist; point CSW_ADAPTERS at the adapters YAML"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise _fail(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("adapters"), list):
        raise _fail(path, ["the file must hold `adapters:` with a list of adapters"])
    extra = sorted(str(k) for k in data if k != "adapters")
    problems = [f"unknown top-level field(s) {', '.join(extra)}; only `adapters`"] if extra else []
    if not data["adapters"]:
        problems.append("`adapters` is empty; list at least one, or unset CSW_ADAPTERS")
    seen: set[str] = set()
    configs = [
        _entry(path.parent, i, entry, seen, problems) for i, entry in enumerate(data["adapters"])
    ]
    if problems:
        raise _fail(path, problems)
    return tuple(c for c in configs if c is not None)
