"""Put the app on a Hugging Face Space: create it if missing, upload what it needs, set its variables.

    python -m training.deploy --space owner/digitrec --dry-run      # list what would go up; no network
    HF_TOKEN=… python -m training.deploy --space owner/digitrec \\
        --weights-repo owner/digitrec-weights --corrections-dataset owner/digitrec-corrections

The Space is created with ``HfApi.create_repo(repo_type="space", space_sdk="gradio",
exist_ok=True)``; the files go up in one commit with ``HfApi.upload_folder`` (which stores
binaries such as the weights with Xet/LFS, as the Hub requires): the app, the package,
the bundled weights and their figures, the example drawings, requirements.txt and the
README, whose front matter gains ``models:`` / ``datasets:`` and ``preload_from_hub:`` naming
the weights repo and the files the loader reads, so the Space's build puts them in its
hub cache before the app starts. Nothing else goes: no .venv, caches, tests, test
artifacts, corrections, docs or training code. The Space's variables (DIGITREC_HUB_REPO,
DIGITREC_CORRECTIONS_REPO, DIGITREC_HUB_REVISION) are set with ``HfApi.add_space_variable``.
The token the corrections sync writes with is a secret the owner adds (HF_TOKEN); this
command never copies a token to the Space.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec import manifest as manifests  # noqa: E402
from digitrec.registry import MODEL_IDS  # noqa: E402

# What a Space runs: fnmatch patterns as upload_folder applies them (``*`` also matches "/").
ALLOW = [
    "app.py",
    "requirements.txt",
    "README.md",
    "digitrec/*.py",
    "weights/*.json",
    "weights/*.h5",
    "weights/*.npz",
    "weights/*.png",  # the "About this model" figures
    "examples/*.png",  # the page's example drawings
]
# Never, even inside an allowed folder: caches, virtualenvs, hidden files, data being written.
IGNORE = ["**/__pycache__/*", "*.pyc", ".*", "**/.*", ".venv/*", "*/.venv/*", "*.tmp", "feedback-data/*", "*.db"]
SECRET = "HF_TOKEN"


def selected_files(root: Path = ROOT) -> list[str]:
    """Return the paths under ``root`` that upload_folder would send with ALLOW and IGNORE, sorted."""
    from huggingface_hub.utils import filter_repo_objects

    paths = []
    for folder, subfolders, names in os.walk(root):
        # Hidden folders (.venv, .git) hold thousands of files and none a Space wants: not walked.
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "__pycache__"]
        paths += [(Path(folder) / name).relative_to(root).as_posix() for name in names]
    return sorted(filter_repo_objects(paths, allow_patterns=ALLOW, ignore_patterns=IGNORE))


def weights_files(root: Path = ROOT) -> list[str]:
    """Return the files the loader downloads from a weights repo: each ``<id>.json`` and the weights file it names."""
    names = []
    for model_id in MODEL_IDS:
        manifest = manifests.read(manifests.path_for(root / "weights", model_id))
        names += [f"{model_id}.json", manifest["weights_file"]]
    return names


def space_variables(weights_repo=None, corrections_dataset=None, revision=None) -> dict[str, str]:
    """Return the Space variables the app reads, for the repos given."""
    variables = {}
    if weights_repo:
        variables["DIGITREC_HUB_REPO"] = weights_repo
        if revision:
            variables["DIGITREC_HUB_REVISION"] = revision
    if corrections_dataset:
        variables["DIGITREC_CORRECTIONS_REPO"] = corrections_dataset
    return variables


def front_matter(readme: str, weights_repo=None, corrections_dataset=None, revision=None, root: Path = ROOT) -> str:
    """Return ``readme`` with ``models:``, ``datasets:`` and ``preload_from_hub:`` added to its front matter.

    ``preload_from_hub`` lists the weights repo with exactly the files the loader reads
    (and the revision when one is pinned): the Space's build downloads them into its hub
    cache, where ``digitrec.weights`` finds them. The corrections dataset is named under
    ``datasets:`` only: the app writes it, there is nothing to preload.
    """
    lines = readme.split("\n")
    if not lines or lines[0].strip() != "---" or "---" not in [line.strip() for line in lines[1:]]:
        raise ValueError("README.md has no front matter (a block between two '---' lines at the top).")
    end = 1 + [line.strip() for line in lines[1:]].index("---")
    keys = ("models:", "datasets:", "preload_from_hub:")
    header, kept = lines[1:end], []
    skipping = False
    for line in header:  # drop keys this writes, with their list items
        if line.startswith(keys):
            skipping = True
            continue
        if skipping and line.startswith((" ", "-")):
            continue
        skipping = False
        kept.append(line)
    if weights_repo:
        spec = f"{weights_repo} {','.join(weights_files(root))}" + (f" {revision}" if revision else "")
        kept += ["models:", f"  - {weights_repo}", "preload_from_hub:", f"  - {spec}"]
    if corrections_dataset:
        kept += ["datasets:", f"  - {corrections_dataset}"]
    return "\n".join([lines[0], *kept, *lines[end:]])


def stage(folder: Path, weights_repo=None, corrections_dataset=None, revision=None, root: Path = ROOT) -> list[str]:
    """Copy the selected files into ``folder``, the README with its front matter filled in; return their paths."""
    files = selected_files(root)
    for name in files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "README.md":
            text = (root / name).read_text(encoding="utf-8")
            target.write_text(front_matter(text, weights_repo, corrections_dataset, revision, root), encoding="utf-8")
        else:
            shutil.copy2(root / name, target)
    return files


def report(space, files, variables, root: Path = ROOT) -> str:
    """Return what goes up (the files staged under ``root``, with sizes), then the variables and the secret to add."""
    lines = [f"Space {space}: {len(files)} files"]
    total = 0
    for name in files:
        size = (root / name).stat().st_size
        total += size
        lines.append(f"  {name}  {size:,} bytes")
    lines.append(f"  total {total:,} bytes")
    lines.append("variables:" if variables else "variables: none (no --weights-repo or --corrections-dataset)")
    lines += [f"  {key}={value}" for key, value in variables.items()]
    if "DIGITREC_CORRECTIONS_REPO" in variables:
        lines.append(
            f"secret: add {SECRET} (a write token for {variables['DIGITREC_CORRECTIONS_REPO']}) in the Space's "
            "Settings → Variables and secrets; without it corrections stay on the Space's disk."
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True, help="the Space, owner/name")
    parser.add_argument("--weights-repo", help="model repo with the weights (training.publish), owner/name")
    parser.add_argument("--weights-revision", help="branch, tag or commit of the weights repo to pin")
    parser.add_argument("--corrections-dataset", help="dataset repo the corrections sync to, owner/name")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--dry-run", action="store_true", help="print what would go up; touch no network")
    args = parser.parse_args(argv)
    for flag, value in (("--space", args.space), ("--weights-repo", args.weights_repo),
                        ("--corrections-dataset", args.corrections_dataset)):
        if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
            parser.error(f"{flag} must be owner/name; got {value!r}")
    variables = space_variables(args.weights_repo, args.corrections_dataset, args.weights_revision)
    with tempfile.TemporaryDirectory(prefix="digitrec-space-") as folder:
        files = stage(Path(folder), args.weights_repo, args.corrections_dataset, args.weights_revision)
        print(report(args.space, files, variables, Path(folder)))
        if args.dry_run:
            return
        from huggingface_hub import HfApi

        api = HfApi()
        url = api.create_repo(
            args.space, repo_type="space", space_sdk="gradio", private=args.private or None, exist_ok=True
        )
        info = api.upload_folder(
            repo_id=args.space, repo_type="space", folder_path=folder, allow_patterns=ALLOW,
            ignore_patterns=IGNORE, commit_message="Deploy digitrec",
        )
        for key, value in variables.items():
            api.add_space_variable(args.space, key, value)
        print(f"deployed {info.commit_url}\nthe app: {url}")


if __name__ == "__main__":
    main()
