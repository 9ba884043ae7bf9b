"""Find a model's weights: on the Hugging Face Hub when a repo is configured, else bundled.

Settings (``digitrec/config.py``): DIGITREC_HUB_REPO, a hub model repo ("owner/name") holding
``<id>.json`` and the weights file it names in the layout ``training/publish.py`` uploads;
DIGITREC_HUB_REVISION (default "main"); DIGITREC_HUB_TIMEOUT, seconds before falling back
(default 1); DIGITREC_WEIGHTS_DIR, the bundled folder (default ``weights/`` beside the package).

The hub is tried first; its download runs in a background thread so an unreachable hub
(huggingface_hub retries for ~20 s) costs at most DIGITREC_HUB_TIMEOUT, after which the
local hub cache is tried and then the bundled files. A downloaded weights file whose
SHA-256 disagrees with its manifest is refused. The source used is logged.

The verdict file fitted on the weights (``<id>.verdict.json`` and the arrays it names, for
``digitrec.read``'s "not a digit" and "not sure") comes from the same place: a model
remembers it as ``verdict_file`` (None when a hub repo holds none; ``verdicts_for`` then
tries the bundled one, used only if it was fitted on the same weights).
"""

from __future__ import annotations

import json
import os
import logging
from pathlib import Path

from . import config
from .base import ChecksumError, Model
from .hub import with_deadline
from .messages import cut

log = logging.getLogger("digitrec")

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"


def bundled_dir() -> Path:
    return Path(config.text("DIGITREC_WEIGHTS_DIR") or BUNDLED_DIR)


def hub_settings() -> tuple[str | None, str, float]:
    """Return (repo, revision, timeout) from the environment."""
    return config.text("DIGITREC_HUB_REPO"), config.text("DIGITREC_HUB_REVISION"), config.number("DIGITREC_HUB_TIMEOUT")


def download_from_hub(model_id: str, repo: str, revision: str,
                      local_files_only: bool = False) -> tuple[Path, Path, Path | None]:
    """Return local paths of ``<id>.json``, the weights file it names and the verdict file (None if the repo has none)."""
    from huggingface_hub import constants as hub_constants
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    if "HF_HUB_DISABLE_TELEMETRY" not in os.environ:
        # huggingface_hub builds its user agent by asking the hub for a list of agents (3 s timeout),
        # even for a cache-only download: with a hub that hangs, the cache fallback would wait for it
        hub_constants.HF_HUB_DISABLE_TELEMETRY = True

    from .manifest import read as read_manifest

    def fetch(filename):
        return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=local_files_only))

    manifest_path = fetch(f"{model_id}.json")
    weights_path = fetch(read_manifest(manifest_path)["weights_file"])
    try:  # repos published before verdict files existed have none
        verdict_path = fetch(f"{model_id}.verdict.json")
        fetch(json.loads(verdict_path.read_text())["params_file"])
    except (EntryNotFoundError, LocalEntryNotFoundError, ValueError, KeyError) as error:
        log.info("%s: no verdict file in %s@%s (%s)", model_id, repo, revision, cut(error))
        verdict_path = None
    return manifest_path, weights_path, verdict_path


def load_weights(model_class: type[Model]) -> Model:
    """Load ``model_class`` from the hub (if configured), its local cache, or the bundled folder."""
    model_id = model_class.model_id
    repo, revision, timeout = hub_settings()
    if repo:
        attempts = [
            ("hub", lambda: with_deadline(lambda: download_from_hub(model_id, repo, revision), timeout)),
            ("hub cache", lambda: download_from_hub(model_id, repo, revision, local_files_only=True)),
        ]
        for label, fetch in attempts:
            try:
                manifest_path, weights_path, verdict_path = fetch()
                model = model_class.load(manifest_path, weights_path)
            except ChecksumError as error:
                log.warning("%s: refusing weights from %s %s@%s: %s", model_id, label, repo, revision, error)
                break  # a corrupt file in the cache stays corrupt: go straight to the bundled copy
            except Exception as error:  # unreachable hub, missing file, bad manifest: fall back
                log.warning("%s: %s %s@%s unavailable (%s)", model_id, label, repo, revision, cut(error))
                continue
            model.source = f"{label} {repo}@{revision}"
            model.verdict_file = verdict_path
            log.info("%s: loaded weights from %s", model_id, model.source)
            return model
    directory = bundled_dir()
    model = model_class.load(directory / f"{model_id}.json")
    model.source = f"bundled {directory}"
    model.verdict_file = directory / f"{model_id}.verdict.json"
    log.info("%s: loaded weights from %s", model_id, model.source)
    return model

