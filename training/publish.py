"""Publish the weights, their manifests and a model card to a Hugging Face Hub model repo.

    python -m training.publish --repo owner/digitrec-weights --dry-run   # build the folder only
    HF_TOKEN=… python -m training.publish --repo owner/digitrec-weights

The uploaded folder has exactly the layout ``digitrec/weights.py`` downloads: for each
model ``<id>.json`` (the manifest), the weights file it names and the verdict file fitted on
those weights (``<id>.verdict.json`` and its arrays: "not a digit" and "not sure"), plus
``README.md``, a model card (``huggingface_hub.ModelCard``) with the measured accuracies and
the training data named. Each weights file's checksum is verified against its manifest, and
each verdict file against its arrays and the weights, before upload.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digitrec.base import ChecksumError  # noqa: E402
from digitrec.manifest import read as read_manifest, sha256_of  # noqa: E402
from digitrec.read import Verdicts, verdict_path  # noqa: E402
from digitrec.registry import MODEL_IDS  # noqa: E402

CARD_TEMPLATE = """---
{{ card_data }}
---

# digitrec weights

Weights of the three models of [digitrec](https://huggingface.co/spaces/{{ space }}), a
handwritten-digit demo trained for digits drawn on a canvas, not only for MNIST.

| model | file | parameters | MNIST test | drawn by unseen writers (mean / worst condition) |
| --- | --- | ---: | ---: | ---: |
{% for row in rows -%}
| {{ row.name }} | `{{ row.file }}` | {{ row.params }} | {{ row.mnist }} | {{ row.drawn }} |
{% endfor %}

## Training data
- MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0): the 60,000 training digits, with augmentation.
- UCI "Pen-Based Recognition of Handwritten Digits" (Alpaydin, Alimoglu 1998; CC BY 4.0):
  the digits of writers 1–24, rendered as canvas drawings; writers 25–30 are held out and
  only used for the "drawn" figures above.
- UNIPEN train_r01_v07 (International Unipen Foundation, 1999; CC BY 4.0), pen-drawn digits
  and letters: every institution but gmd (validation) and apa, art, ibm (held out for
  testing), rendered the same way. The letters that look like no digit, generated shapes and
  scribbles, and two training digits run together are taught as an eleventh output, "not a
  digit".

## Files
Each `<id>.json` is the manifest: format version, architecture config, parameter count,
training settings and per-epoch history, metrics, the SHA-256 of the weights file and, when
the model reads each drawing several ways and averages, its `test_time_views` (degrees
turned, scale, and pixels right and down when shifted) and `test_time_views_below` (the
other views are read only when the first reading's most likely digit is below it) — part of
how the figures above were measured.
Each `<id>.verdict.json` (with its `.npz`) holds what `digitrec.read` decides "not a digit"
and "not sure" with — temperature, thresholds, the detector — fitted on those weights,
whose SHA-256 it records.
The numpy model's `.npz` needs only numpy; the Keras models' `.weights.h5` load into the
architecture the manifest's `config` rebuilds (`digitrec.get_model`).
"""


def percent(value):
    return f"{value:.2%}" if isinstance(value, (int, float)) else "–"


def build_folder(weights_dir, out_dir, space="owner/digitrec"):
    """Copy every verified manifest and weights file into ``out_dir`` and write the model card."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    weights_dir, out_dir = Path(weights_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    for model_id in MODEL_IDS:
        manifest_path = weights_dir / f"{model_id}.json"
        manifest = read_manifest(manifest_path)
        weights_path = weights_dir / manifest["weights_file"]
        if sha256_of(weights_path) != manifest["sha256"]:
            raise ChecksumError(f"{weights_path} does not match its manifest; retrain or restore it.")
        shutil.copy2(manifest_path, out_dir / manifest_path.name)
        shutil.copy2(weights_path, out_dir / weights_path.name)
        verdicts_path = verdict_path(weights_dir, model_id)
        if verdicts_path.exists():  # without one the Space reads digits but never says "not a digit"
            verdicts = Verdicts.load(verdicts_path)  # refuses arrays that do not match their checksum
            if verdicts.weights_sha256 != manifest["sha256"]:
                raise ChecksumError(f"{verdicts_path.name} was fitted on other weights; run python -m training.verdicts "
                                    f"--model {model_id} first.")
            for path in verdicts.files:  # the file and the arrays it names, as checked above
                shutil.copy2(path, out_dir / path.name)
        metrics = manifest.get("metrics", {})
        rows.append(
            dict(
                name=manifest["display_name"],
                file=manifest["weights_file"],
                params=f"{manifest['params']:,}",
                mnist=percent(metrics.get("mnist_test_accuracy")),
                drawn=f"{percent(metrics.get('drawn_heldout_mean'))} / {percent(metrics.get('drawn_heldout_worst'))}",
            )
        )
        if metrics.get("mnist_test_accuracy") is not None:
            results.append(
                EvalResult(
                    task_type="image-classification",
                    dataset_type="mnist",
                    dataset_name="MNIST",
                    dataset_split="test",
                    metric_type="accuracy",
                    metric_value=metrics["mnist_test_accuracy"],
                    metric_name=f"{model_id}: MNIST test accuracy",
                )
            )
    card_data = ModelCardData(
        model_name="digitrec",
        license="mit",
        library_name="keras",
        tags=["image-classification", "mnist", "handwritten-digits", "numpy"],
        datasets=["mnist"],
        metrics=["accuracy"],
        eval_results=results or None,
    )
    card = ModelCard.from_template(card_data, template_str=CARD_TEMPLATE, rows=rows, space=space)
    card.save(out_dir / "README.md")
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, help="hub model repo, owner/name")
    parser.add_argument("--weights", default=str(ROOT / "weights"))
    parser.add_argument("--out", help="folder to build (default: a temporary one)")
    parser.add_argument("--space", default="owner/digitrec", help="the Space linked from the card")
    parser.add_argument("--dry-run", action="store_true", help="build the folder and card, upload nothing")
    args = parser.parse_args(argv)
    if args.repo.count("/") != 1:
        parser.error("--repo must be owner/name")
    folder = build_folder(args.weights, args.out or tempfile.mkdtemp(prefix="digitrec-publish-"), args.space)
    print(f"built {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
    if args.dry_run:
        return
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.repo, repo_type="model", exist_ok=True)
    info = api.upload_folder(repo_id=args.repo, folder_path=folder, commit_message="Publish digitrec weights")
    print(f"published {info.commit_url}")


if __name__ == "__main__":
    main()
