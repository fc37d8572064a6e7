"""CustomResourceDefinitions this project ships for the embedded cluster, as data
files beside this module (package data), read with ``load``."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def load(name: str) -> dict[str, Any]:
    """The CRD in ``<name>.yaml`` (``load("helmrelease")``), parsed."""
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    if not isinstance(crd, dict):
        raise ValueError(f"{name}.yaml does not hold a CustomResourceDefinition")
    return crd
