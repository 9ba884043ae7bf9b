"""The one owner of manifests: the ``<model_id>.json`` that travels beside each weights file.

A manifest holds the format version, the architecture config that rebuilds the network,
the parameter count, the training settings, the measured metrics and the weights file's
SHA-256 (as nanoGPT keeps ``model_args`` beside its weights). Everything that reads,
writes or updates one goes through here, so the layout is spelled in one place.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .views import from_json

FORMAT_VERSION = 1


def sha256_of(path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def path_for(directory, model_id: str) -> Path:
    """Return where the manifest of ``model_id`` lives in a weights folder."""
    return Path(directory) / f"{model_id}.json"


def read(path) -> dict:
    """Read a manifest and check its format version, so old or foreign files fail clearly."""
    with open(path) as file:
        manifest = json.load(file)
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version!r}; this code reads version {FORMAT_VERSION}.")
    return manifest


def write(path, manifest: dict) -> Path:
    """Write ``manifest`` to ``path`` through a temporary file, so a reader never sees half of it."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(partial, "w") as file:
        json.dump({"format_version": FORMAT_VERSION, **manifest}, file, indent=2)
        file.write("\n")
    os.replace(partial, path)
    return path


def update_metrics(path, metrics: dict) -> Path:
    """Merge measured ``metrics`` into a manifest, keeping everything else (checksum included)."""
    manifest = read(path)
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    return write(path, manifest)


def heldout_metrics(prefix: str, by_condition: dict, count: int, **who) -> dict:
    """Return one held-out set's figures under the names every manifest uses.

    ``prefix`` names the set ("drawn_heldout": pendigits writers 25–30; "unipen_heldout":
    the UNIPEN test institutions); ``by_condition`` maps each canvas condition to the
    accuracy there; ``who`` says whose digits they are (``writers=[…]`` or ``institutions=[…]``).
    """
    values = [float(value) for value in by_condition.values()]
    return {
        f"{prefix}_mean": sum(values) / len(values),
        f"{prefix}_worst": min(values),
        f"{prefix}_by_condition": {name: float(value) for name, value in by_condition.items()},
        f"{prefix}_digits": int(count),
        **{f"{prefix}_{name}": list(value) for name, value in who.items()},
    }


def describe(manifest: dict, model_id: str, fallback_name: str = "") -> dict:
    """Return what people are shown about a model: name, architecture, parameters, training, metrics, test-time views."""
    views, views_below = from_json(manifest)
    return {
        "name": manifest.get("display_name") or fallback_name or model_id,
        "architecture": manifest.get("architecture", "(no weights yet)"),
        "params": manifest.get("params"),
        "training": manifest.get("training", {}),
        "metrics": manifest.get("metrics", {}),
        "views": views,  # (IDENTITY,) for a model that reads each drawing once
        "views_below": views_below,
    }
