"""How well ``digitrec.read_number`` reads whole numbers drawn by people the models never saw.

    python -m bench.numbers                     # held-out writers, every model, the table in docs/numbers.md
    python -m bench.numbers --models cnn --per-length 20    # a quicker look
    python -m bench.numbers --writers training  # the training writers: where the segmentation's settings are chosen
    python -m bench.numbers --writers validation  # writers 21–24 and gmd: where a network's retraining is judged
    python -m bench.numbers --write             # also put the table into docs/numbers.md
    python -m bench.numbers --usual-widths      # each digit's usual width, as digitrec/number.py's ASPECT_LOG_* hold it
    python -m bench.numbers --models cnn --lengths 4 --per-length 600 --write   # the targets' cells, ten times the numbers

Numbers of 2 to 6 digits are composed from pen trajectories, each number from ONE writer,
every other number from each source: UCI pendigits (held out: writers 25–30) and UNIPEN
(held out: the test institutions apa, art and ibm, 34 writers), drawn as pen strokes on the app's wide canvas
(1600×600) under five conditions: generous gaps; tight gaps; neighbours touching or
slightly overlapping; a drifting baseline; mixed sizes. Reported per condition and length:
whole-number accuracy (every digit right, none missing or extra) and per-digit accuracy
(digits right in their place, counted only when the number has the right count); beside
them, single-digit accuracy: the same digits, each drawn alone at the same size and brush,
read by ``digitrec.predict`` and by ``digitrec.read`` (where "not a digit" is wrong, as "?" is in
a number). Then the time to read a 6-digit number, in-process (p50). Each whole-number figure
comes with its 95 % interval (Wilson): at 60 numbers a cell is known to about ±8 points.
Seeded: the same command prints the same accuracies.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import digitrec  # noqa: E402
from training.strokes import digit_ink  # noqa: E402
from training.unipen import writers_digits as unipen_writers_digits  # noqa: E402

WIDE = (1600, 600)  # the Number tab's canvas (width, height)
LENGTHS = (2, 3, 4, 5, 6)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the digits of one number are put side by side, in units of the digit height."""

    gap: tuple = (0.25, 0.5)  # space between neighbours' ink (negative: overlapping)
    drift: float = 0.0  # baseline slope, height per digit (random sign)
    jitter: float = 0.0  # random up/down of each digit
    sizes: tuple = (1.0, 1.0)  # each digit's height × this range
    brush: tuple = (0.08, 0.18)  # the pen's width (the app's default brush on a digit half the canvas tall is ~15 %)


CONDITIONS = {
    "generous gaps": Layout(gap=(0.25, 0.5)),
    "tight gaps": Layout(gap=(0.04, 0.1)),
    "touching": Layout(gap=(-0.1, 0.0)),
    "drifting baseline": Layout(gap=(0.15, 0.35), drift=0.12, jitter=0.06),
    "mixed sizes": Layout(gap=(0.15, 0.35), sizes=(0.65, 1.15)),
}


def compose(digits: list, layout: Layout, rng: np.random.Generator, size=WIDE):
    """Draw a number's digits (each a list of strokes) side by side on a white canvas.

    Returns (canvas (H, W, 3) uint8, each digit's ink crop as drawn). The digit height is
    chosen so the number fills at most 90 % of the canvas's width and 55 % of its height;
    the brush is a fraction of it drawn from ``layout.brush``.
    """
    width, height = size
    count = len(digits)
    scales = rng.uniform(*layout.sizes, count)
    gaps = rng.uniform(*layout.gap, max(count - 1, 0))
    brush_fraction = rng.uniform(*layout.brush)
    # Widths are known only once drawn: draw at a trial height, then scale to fit.
    trial = 100.0
    trial_widths = [digit_ink(d, trial * s, brush_fraction * trial).shape[1] / trial for d, s in zip(digits, scales)]
    span = sum(trial_widths) + float(gaps.sum())
    digit_height = min(0.55 * height / max(layout.sizes[1], 1.0), 0.9 * width / span)
    digit_height *= 1.0 - 2.5 * layout.drift if layout.drift else 1.0
    brush = max(2.0, brush_fraction * digit_height)
    inks = [digit_ink(d, digit_height * s, brush) for d, s in zip(digits, scales)]
    total = sum(i.shape[1] for i in inks) + int(gaps.sum() * digit_height)
    x = (width - total) // 2
    slope = layout.drift * rng.choice([-1.0, 1.0]) * digit_height
    base = height * 0.5 + digit_height * 0.5 - slope * (count - 1) / 2
    paper = np.zeros((height, width), np.float32)
    for k, ink in enumerate(inks):
        bottom = base + slope * k + rng.normal(0.0, layout.jitter) * digit_height
        top = int(np.clip(round(bottom - ink.shape[0]), 0, height - ink.shape[0]))
        left = int(np.clip(x, 0, width - ink.shape[1]))
        region = paper[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] + (int(gaps[k] * digit_height) if k < count - 1 else 0)
    canvas = np.repeat(np.rint((1.0 - paper) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return canvas, inks


class Pool(NamedTuple):
    """The digits numbers are composed from: each digit's strokes, label and writer, and the writers per source."""

    digits: list
    labels: np.ndarray
    writers: np.ndarray
    sources: dict


def writers_digits(part: str) -> Pool:
    """Return the pool of "held-out" or "training" writers' digits (``training.unipen.writers_digits``).

    Numbers are drawn from writers with at least six digits, so a 6-digit number has six
    different drawings.
    """
    digits, labels, who = unipen_writers_digits(part)
    names, counts = np.unique(who, return_counts=True)
    enough = names[counts >= max(LENGTHS)]
    sources = {"pendigits": [w for w in enough if w.startswith("pendigits/")],
               "UNIPEN": [w for w in enough if not w.startswith("pendigits/")]}
    return Pool(digits, labels, who, sources)


def numbers(pool: Pool, count: int, length: int, seed: int):
    """Yield ``count`` numbers of ``length`` digits, each (strokes per digit, labels, source) by one writer.

    The sources take turns, so each gives half the numbers whatever its count of writers.
    """
    digits, labels, who, sources = pool
    rng = np.random.default_rng(seed)
    names = list(sources)
    for k in range(count):
        source = names[k % len(names)]
        writer = sources[source][int(rng.integers(len(sources[source])))]
        chosen = rng.choice(np.flatnonzero(who == writer), size=length, replace=False)
        yield [digits[i] for i in chosen], [int(labels[i]) for i in chosen], source


def usual_widths(pool: Pool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return each digit's usual width for its height: the mean and spread of log(width/height), 0–9, over the pool.

    Every digit is drawn as bench numbers draw it (100 px tall, a brush from Layout's
    range); the segmenter takes a stretch much wider than its digit usually is for two
    digits touching. Measured on the training writers of both sources: UNIPEN's writers
    draw wider than pendigits' (a 3: 0.77 against 0.68 of its height), and a prior from
    pendigits alone cut their wide 3s into "37".
    """
    rng = np.random.default_rng(seed)
    low, high = Layout().brush
    logs = np.empty(len(pool.digits))
    for k, strokes in enumerate(pool.digits):
        ink = digit_ink(strokes, 100.0, 100.0 * rng.uniform(low, high))
        logs[k] = np.log(ink.shape[1] / ink.shape[0])
    mean = np.array([logs[pool.labels == d].mean() for d in range(10)])
    spread = np.array([logs[pool.labels == d].std() for d in range(10)])
    return mean.round(2), spread.round(2)


def single_digit_paper(ink: np.ndarray) -> np.ndarray:
    """Return one digit's ink crop alone on white paper with a margin: a single digit as drawn."""
    pad = max(8, ink.shape[0] // 4)
    return np.rint((1.0 - np.pad(ink, pad)) * 255).astype(np.uint8)


def run(model_id: str, pool, per_length: int, seed: int, lengths=LENGTHS):
    """Return {(condition, length): counts} for one model.

    Each cell's numbers depend only on the seed, condition and length, so a run with more
    numbers per length begins with the numbers of a run with fewer.
    """
    results = {}
    for c, (name, layout) in enumerate(CONDITIONS.items()):
        for length in lengths:
            counts = dict(numbers=0, right=0, digits=0, digits_right=0, single=0, single_right=0, single_read_right=0,
                          miscounted=0)
            counts["by_source"] = {source: dict(numbers=0, right=0) for source in pool.sources}
            rng = np.random.default_rng([seed, c, length])
            for strokes, labels, source in numbers(pool, per_length, length, seed * 1000 + c * 10 + length):
                canvas, inks = compose(strokes, layout, rng)
                text = digitrec.read_number(canvas, model_id).text
                truth = "".join(map(str, labels))
                counts["numbers"] += 1
                counts["right"] += text == truth
                counts["by_source"][source]["numbers"] += 1
                counts["by_source"][source]["right"] += text == truth
                counts["digits"] += length
                if len(text) == length:
                    counts["digits_right"] += sum(a == b for a, b in zip(text, truth))
                else:
                    counts["miscounted"] += 1
                if name == "generous gaps":
                    for ink, label in zip(inks, labels):
                        # read's one forward pass gives predict's probabilities too: its digit is their argmax
                        alone = digitrec.read(single_digit_paper(ink), model_id)
                        counts["single"] += 1
                        counts["single_right"] += alone.digit == label
                        # as a visitor sees one digit: "not a digit" is wrong
                        counts["single_read_right"] += alone.verdict in ("digit", "unsure") and alone.digit == label
            results[name, length] = counts
            print(f"{model_id} {name}, {length} digits: {counts['right']}/{counts['numbers']}", file=sys.stderr, flush=True)
    return results


def read_times(model_id: str, pool, seed: int, tries: int = 60) -> np.ndarray:
    """Return the in-process times (ms) to read gapped 6-digit numbers, after one warm-up read."""
    rng = np.random.default_rng(seed)
    canvases = [compose(s, CONDITIONS["generous gaps"], rng)[0] for s, _, _ in numbers(pool, 10, 6, seed)]
    digitrec.read_number(canvases[0], model_id)
    times = []
    for k in range(tries):
        start = time.perf_counter()
        digitrec.read_number(canvases[k % len(canvases)], model_id)
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def percent(right: int, total: int) -> str:
    return f"{100 * right / total:.1f} %" if total else "–"


def wilson_interval(right: int, total: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval of a proportion (scipy's), which stays inside 0–1 near 100 %, unlike ±2 standard errors."""
    if total <= 0:
        raise ValueError("an interval needs at least one number")
    interval = binomtest(right, total).proportion_ci(confidence_level=0.95, method="wilson")
    return interval.low, interval.high


def format_table(results_by_model: dict, times_by_model: dict, args) -> str:
    """Return the report as Markdown: per model, a table of conditions × lengths, then the speed."""
    lines = [
        f"`python -m bench.numbers{args.command}`: {args.per_length} numbers per condition and length, "
        f"each by one writer, every other one from each source: {args.writer_text}; seed {args.seed}.",
        "",
    ]
    lengths = args.lengths
    for model_id, results in results_by_model.items():
        lines += [f"**{model_id}** — whole numbers right (digits right):", ""]
        header = "| condition | " + " | ".join(f"{n} digits" for n in lengths) + " | all |"
        lines += [header, "|" + "---|" * (len(lengths) + 2)]
        for name in CONDITIONS:
            cells = []
            for length in [*lengths, None]:
                rows = [results[name, n] for n in lengths if length in (None, n)]
                numbers_, right = sum(r["numbers"] for r in rows), sum(r["right"] for r in rows)
                digits, digits_right = sum(r["digits"] for r in rows), sum(r["digits_right"] for r in rows)
                cells.append(f"{percent(right, numbers_)} ({percent(digits_right, digits)})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Whole numbers right, 95 % interval (Wilson):", "",
                  "| condition | " + " | ".join(f"{n} digits" for n in lengths) + " |", "|" + "---|" * (len(lengths) + 1)]
        for name in CONDITIONS:
            intervals = [wilson_interval(results[name, n]["right"], results[name, n]["numbers"]) for n in lengths]
            lines.append(f"| {name} | " + " | ".join(f"{100 * low:.1f}–{100 * high:.1f} %" for low, high in intervals) + " |")
        sources = list(results[next(iter(CONDITIONS)), lengths[0]]["by_source"])

        def by_source(name, source, lengths):
            rows = [results[name, n]["by_source"][source] for n in lengths]
            return percent(sum(r["right"] for r in rows), sum(r["numbers"] for r in rows))

        shown = [4] if 4 in lengths else lengths[:1]  # the targets are on 4-digit numbers
        lines += ["", "Whole numbers right, by source:", "",
                  "| condition | " + " | ".join(f"{source}, {shown[0]} digits | {source}, all lengths" for source in sources)
                  + " |", "|---|" + "---|" * (2 * len(sources))]
        for name in CONDITIONS:
            lines.append(f"| {name} | " + " | ".join(
                f"{by_source(name, source, shown)} | {by_source(name, source, lengths)}" for source in sources) + " |")
        gapped = [results["generous gaps", n] for n in lengths]
        single = sum(r["single_right"] for r in gapped), sum(r["single"] for r in gapped)
        single_read = sum(r["single_read_right"] for r in gapped), sum(r["single"] for r in gapped)
        in_numbers = sum(r["digits_right"] for r in gapped), sum(r["digits"] for r in gapped)
        times = times_by_model[model_id]
        lines += [
            "",
            f"Single digits, the same writers' digits of the generous-gaps numbers drawn alone: "
            f"{percent(*single)} by `digitrec.predict`, {percent(*single_read)} by `digitrec.read` (its \"not a "
            f"digit\" counted wrong, as \"?\" in a number is); the same digits read in their numbers: "
            f"{percent(*in_numbers)}. "
            f"A 6-digit number is read in {np.percentile(times, 50):.1f} ms (p50; p90 "
            f"{np.percentile(times, 90):.1f} ms, {len(times)} reads, in-process; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when timed).",
            "",
        ]
    return "\n".join(lines)


def markers(command: str = "") -> tuple[str, str]:
    """Return the BEGIN and END markers of one command's block: every command writes only its own."""
    return f"<!-- bench.numbers{command}: begin -->", f"<!-- bench.numbers{command}: end -->"


def write_report(text: str, command: str = "", paths=(ROOT / "docs" / "numbers.md",)) -> None:
    """Put the report between the command's BEGIN and END markers in each file, so no figure is typed by hand."""
    begin, end = markers(command)
    for path in paths:
        page = path.read_text()
        if begin not in page or end not in page:
            raise ValueError(f"{path} has no {begin} … {end} block for the report.")
        head, rest = page.split(begin, 1)
        path.write_text(head + begin + "\n" + text.strip() + "\n" + end + rest.split(end, 1)[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(digitrec.MODEL_IDS))
    parser.add_argument("--per-length", type=int, default=60, help="numbers per condition and length")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS), choices=LENGTHS,
                        help="number lengths to compose (the targets are on 4 digits)")
    parser.add_argument("--writers", choices=("held-out", "training", "validation"), default="held-out",
                        help="validation: pendigits writers 21–24 and the UNIPEN validation institution, to choose on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="put the table into docs/numbers.md")
    parser.add_argument("--usual-widths", action="store_true",
                        help="print each digit's usual width on the training writers (digitrec/number.py's ASPECT_LOG_*)")
    args = parser.parse_args(argv)
    if args.usual_widths:
        mean, spread = usual_widths(writers_digits("training"), args.seed)
        print(f"ASPECT_LOG_MEAN = np.array({mean.tolist()})\nASPECT_LOG_SPREAD = np.array({spread.tolist()})")
        return
    pool = writers_digits(args.writers)
    pendigits_ids = sorted(int(w.split("/")[1]) for w in pool.sources["pendigits"])
    institutions = sorted({w.split("/")[0] for w in pool.sources["UNIPEN"]})
    args.writer_text = (f"pendigits writers {pendigits_ids[0]}–{pendigits_ids[-1]} ({len(pendigits_ids)}), UNIPEN "
                        f"{'training institutions' if args.writers == 'training' else 'institutions ' + ', '.join(institutions)}"
                        f" ({len(pool.sources['UNIPEN'])} writers)")
    args.command = "".join(
        f" {flag} {value}" for flag, value, default in (
            ("--models", " ".join(args.models), " ".join(digitrec.MODEL_IDS)),
            ("--lengths", " ".join(map(str, args.lengths)), " ".join(map(str, LENGTHS))),
            ("--per-length", args.per_length, 60),
            ("--writers", args.writers, "held-out"),
            ("--seed", args.seed, 0),
        ) if value != default
    )
    results, times = {}, {}
    for model_id in args.models:
        results[model_id] = run(model_id, pool, args.per_length, args.seed, args.lengths)
        times[model_id] = read_times(model_id, pool, args.seed)
    report = format_table(results, times, args)
    print(report)
    if args.write:
        write_report(report, args.command)


if __name__ == "__main__":
    main()
