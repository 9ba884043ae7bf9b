"""The training entry runs end to end for every model on a small slice (CI never retrains for real)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import digitrec
from digitrec.manifest import read as read_manifest

pytestmark = pytest.mark.slow  # starts the app, a server or a training run: CI runs it, the inner loop does not

ROOT = Path(__file__).resolve().parent.parent


def run(module, *args):
    """Run ``python -m module args`` from the project root; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def run_training(*args):
    """Run the training entry on a small slice with these arguments; return its output."""
    result = run("training.train", "--copies", "1", *args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    return out, run_training("--model", "all", "--limit", "400", "--epochs", "1", "--seed", "3", "--out", out)


def test_progress_is_visible(trained):
    _, output = trained
    assert "data: 400 MNIST + " in output
    for model_id in digitrec.MODEL_IDS:
        assert f"{model_id}: MNIST test accuracy" in output
    assert "epoch 1/1" in output  # the numpy network's own progress line


@pytest.mark.parametrize("model_id", digitrec.MODEL_IDS)
def test_each_model_is_saved_with_its_description_and_figures(trained, model_id):
    out, _ = trained
    manifest = read_manifest(out / f"{model_id}.json")
    assert manifest["training"]["epochs"] == 1 and manifest["training"]["seed"] == 3
    assert manifest["training"]["stroke_distortion"] is True and manifest["training"]["drawn_copies"] == 1
    assert len(manifest["training"]["history"]) == 1 + manifest["training"]["clean_epochs"]
    assert 0.0 <= manifest["metrics"]["mnist_test_accuracy"] <= 1.0
    assert (out / f"{model_id}_curves.png").exists() and (out / f"{model_id}_confusion.png").exists()
    model = digitrec.registry.model_class(model_id).load(out / f"{model_id}.json")
    probabilities = model.predict_proba(np.zeros((2, 28, 28), np.float32))
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_resume_repeats_exactly_the_clean_epochs_of_one_run(tmp_path):
    """The epochs without augmentation give the same weights whether run at once or resumed from a saved run."""
    small = ("--model", "cnn", "--limit", "200", "--seed", "5")
    run_training(*small, "--epochs", "1", "--clean-epochs", "1", "--out", tmp_path / "one")
    run_training(*small, "--epochs", "1", "--clean-epochs", "0", "--out", tmp_path / "first")
    run_training(*small, "--clean-epochs", "1", "--resume", tmp_path / "first" / "cnn.json", "--out", tmp_path / "resumed")
    once = read_manifest(tmp_path / "one" / "cnn.json")
    resumed = read_manifest(tmp_path / "resumed" / "cnn.json")
    assert [row["epoch"] for row in resumed["training"]["history"]] == [1, 2]
    assert resumed["training"]["history"] == once["training"]["history"]
    images = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    models = [digitrec.registry.model_class("cnn").load(tmp_path / name / "cnn.json") for name in ("one", "resumed")]
    np.testing.assert_array_equal(models[0].predict_proba(images), models[1].predict_proba(images))

    other_data = run(
        "training.train", *small, "--copies", "1", "--no-distort-strokes", "--clean-epochs", "1",
        "--resume", tmp_path / "first" / "cnn.json", "--out", tmp_path / "other",
    )
    assert other_data.returncode != 0 and "stroke_distortion" in other_data.stderr
    assert not (tmp_path / "other" / "cnn.json").exists()


def test_a_resumed_fine_tune_keeps_the_chain_of_runs_before_it(tmp_path):
    """A fine-tune resumed for its last epochs still names the weights it started from, down to the first run."""
    small = ("--model", "dense", "--limit", "200", "--seed", "2")
    run_training(*small, "--epochs", "1", "--out", tmp_path / "first")
    run_training(*small, "--epochs", "1", "--init", tmp_path / "first" / "dense.json", "--out", tmp_path / "tune")
    run_training(*small, "--clean-epochs", "1", "--resume", tmp_path / "tune" / "dense.json", "--out", tmp_path / "end")
    tuned = read_manifest(tmp_path / "tune" / "dense.json")["training"]
    resumed = read_manifest(tmp_path / "end" / "dense.json")["training"]
    assert resumed["init"] == tuned["init"] == str(tmp_path / "first" / "dense.json")
    assert resumed["init_training"] == tuned["init_training"]
    assert resumed["init_training"]["epochs"] == 1 and "init" not in resumed["init_training"]


@pytest.mark.parametrize("model_id", ["numpy", "dense"])
def test_each_checkpoint_carries_the_history_of_its_epochs(tmp_path, model_id):
    """A checkpoint that ships describes its own training, as the run's end does (its curves are drawn from it)."""
    run_training("--model", model_id, "--limit", "200", "--epochs", "2", "--checkpoints", tmp_path / "ck",
                 "--out", tmp_path / "end")
    end = read_manifest(tmp_path / "end" / f"{model_id}.json")["training"]["history"]
    for epoch in (1, 2):
        saved = read_manifest(tmp_path / "ck" / f"epoch{epoch}" / f"{model_id}.json")["training"]
        assert saved["checkpoint_epoch"] == epoch
        assert saved["history"] == end[:epoch]


def test_a_run_killed_mid_way_goes_on_with_the_same_command_to_the_end_of_one_whole_run(tmp_path):
    """``--backup``: a session's end kills the process between epochs; running the command again finishes it."""
    small = ["--model", "dense", "--copies", "1", "--limit", "200", "--seed", "4", "--epochs", "3", "--clean-epochs", "1"]
    run_training(*small, "--out", tmp_path / "whole")
    command = [sys.executable, "-m", "training.train", *small, "--backup", str(tmp_path / "backup"),
               "--out", str(tmp_path / "killed")]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            for line in process.stdout:
                if "dense epoch 2/3" in line:
                    process.kill()  # as a session's end does: no clean-up, wherever it is
                    break
        finally:
            process.kill()
    assert process.wait(timeout=60) != 0 and not (tmp_path / "killed" / "dense.json").exists()

    output = run_training(*small, "--backup", tmp_path / "backup", "--out", tmp_path / "killed")
    assert "continuing after epoch" in output and "dense epoch 1/3" not in output
    whole = read_manifest(tmp_path / "whole" / "dense.json")["training"]
    continued = read_manifest(tmp_path / "killed" / "dense.json")["training"]
    assert continued["history"] == whole["history"] and [row["epoch"] for row in whole["history"]] == [1, 2, 3, 4]
    assert continued["continued_after_epoch"] in (1, 2)
    images = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    models = [digitrec.registry.model_class("dense").load(tmp_path / name / "dense.json") for name in ("whole", "killed")]
    np.testing.assert_array_equal(models[0].predict_proba(images), models[1].predict_proba(images))


def test_resume_without_clean_epochs_is_refused(tmp_path):
    result = run("training.train", "--model", "dense", "--resume", tmp_path / "dense.json", "--limit", "50")
    assert result.returncode != 0 and "--clean-epochs" in result.stderr


def test_writing_style_shares_are_recorded_and_impossible_ones_refused():
    from training.train import parse_args, settings_for

    settings = settings_for("cnn", parse_args(["--model", "cnn", "--flagged-ones", "0.3", "--barred-zeros", "0.15"]))
    assert (settings["slashed_zeros"], settings["barred_zeros"], settings["flagged_ones"]) == (0.3, 0.15, 0.3)
    assert "flagged_ones" not in settings_for("cnn", parse_args(["--model", "cnn"]))  # off unless asked
    footed = settings_for("cnn", parse_args(["--model", "cnn", "--footed-ones", "0.2", "--upright-slashed-zeros", "0.1"]))
    assert (footed["footed_ones"], footed["upright_slashed_zeros"]) == (0.2, 0.1)
    for wrong in (["--flagged-ones", "1.5"], ["--slashed-zeros", "0.9", "--barred-zeros", "0.2"],
                  ["--flagged-ones", "0.6", "--footed-ones", "0.5"],
                  ["--slashed-zeros", "0.5", "--barred-zeros", "0.3", "--upright-slashed-zeros", "0.3"]):
        with pytest.raises(SystemExit):
            parse_args(["--model", "cnn", *wrong])


@pytest.mark.parametrize("option, setting, named", [("touching-pairs", "touching_pair_copies", "touching"),
                                                     ("symbols", "symbol_copies", "Hershey")])
def test_non_digit_sets_are_recorded_and_refused_without_the_not_a_digit_output(option, setting, named):
    from training.train import parse_args, settings_for

    settings = settings_for("cnn", parse_args(["--model", "cnn", "--non-digits", "2", f"--{option}", "2"]))
    assert settings[setting] == 2 and named in settings["non_digits"]
    assert setting not in settings_for("cnn", parse_args(["--model", "cnn"]))  # off unless asked
    for wrong in (["--non-digits", "0", f"--{option}", "1"], [f"--{option}", "-1"]):
        with pytest.raises(SystemExit):
            parse_args(["--model", "cnn", *wrong])


def test_left_out_writers_are_not_trained_on_and_are_recorded(monkeypatch):
    """``--leave-out-writers 21 22 23 24``: the validation writers' digits stay out of the training data."""
    from training import train

    settings = train.settings_for("dense", train.parse_args(["--model", "dense", "--leave-out-writers", "24", "21"]))
    assert settings["left_out_writers"] == [21, 24]
    assert "left_out_writers" not in train.settings_for("dense", train.parse_args(["--model", "dense"]))
    for wrong in (["--leave-out-writers", "25"], ["--leave-out-writers", "31"]):  # a test writer; no such writer
        with pytest.raises(SystemExit):
            train.parse_args(["--model", "dense", *wrong])

    asked = {}

    def prepare_data(*args, exclude, **kwargs):
        asked["exclude"] = exclude
        raise KeyboardInterrupt  # the data are all this test needs

    monkeypatch.setattr(train, "prepare_data", prepare_data)
    with pytest.raises(KeyboardInterrupt):
        train.main(["--model", "dense", "--leave-out-writers", "22", "21"])
    assert set(asked["exclude"]) == {21, 22, *train.HELD_OUT_WRITERS}


def test_cut_digits_are_recorded_and_come_only_from_writers_the_run_trains_on(monkeypatch):
    """``--cut-digits N``: N copies of touching pairs cut apart, as digits, never from left-out or test writers."""
    import numpy as np

    from training import train

    settings = train.settings_for("cnn", train.parse_args(["--model", "cnn", "--cut-digits", "2"]))
    assert settings["cut_digit_copies"] == 2
    assert "cut_digit_copies" not in train.settings_for("cnn", train.parse_args(["--model", "cnn"]))
    with pytest.raises(SystemExit):
        train.parse_args(["--model", "cnn", "--cut-digits", "-1"])

    asked = {}

    def cut_digits(copies, seed, limit=None, pendigits=None, unipen=None, exclude=()):
        asked.update(copies=copies, exclude=set(exclude))
        return np.zeros((3, 28, 28), np.float32), np.array([1, 2, 3])

    monkeypatch.setattr(train, "cut_digits", cut_digits)
    x, y, _, _ = train.prepare_data(None, None, 1, 0, limit=40, exclude=(*train.HELD_OUT_WRITERS, 21, 22),
                                    non_digits=0, cut=2)
    assert asked == {"copies": 2, "exclude": {21, 22}}  # the test writers are no training writers to begin with
    assert len(x) == len(y) and {1, 2, 3} <= set(y.tolist())


@pytest.mark.parametrize("wrong, least", [(["--copies", "-1"], 0), (["--clean-epochs", "-2"], 0),
                                          (["--epochs", "0"], 1), (["--subsample", "0"], 1)])
def test_counts_below_their_least_are_refused_with_it(capsys, wrong, least):
    from training.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--model", "cnn", *wrong])
    assert f"{wrong[0]} must be at least {least}" in capsys.readouterr().err
    assert parse_args(["--model", "cnn", wrong[0], str(least)])  # the least itself is fine


def test_validation_compares_both_renders_on_writers_left_out_of_training():
    result = run("training.validate", "--limit", "200", "--epochs", "1", "--copies", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "validation: writers [21, 22, 23, 24], 56 reads" in result.stdout  # 2 digits × 4 writers × 7 conditions
    rows = [line for line in result.stdout.splitlines() if line.startswith("| strokes")]
    assert [row.split(" | ")[0] for row in rows] == ["| strokes as drawn", "| strokes distorted"]
    assert all("/56 |" in row for row in rows)


def test_validation_refuses_the_test_writers():
    result = run("training.validate", "--writers", "24", "25")
    assert result.returncode != 0 and "outside the test writers" in result.stderr


def test_finetuning_trains_each_cnn_member_on_its_own_loss():
    """Fine-tuning a two-member CNN minimises the mean of the members' own losses, as training does.

    The loss Keras reports for a one-batch epoch is the loss of that batch before the step;
    it must equal the members' own cross-entropies averaged, not the cross-entropy of their
    averaged output (which would train the members as one wide network).
    """
    import keras

    from digitrec.keras_cnn import KerasCNN
    from training import finetune

    model = KerasCNN.fresh(0, filters=(4,), dense_units=8, dropout=0.0, members=2)
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 28, 28), dtype=np.float32), rng.integers(0, 10, 24)
    evaluation = {"mnist": (x, y), "drawn": {"plain": (x, y)}}
    mixed_x, mixed_y = finetune.mix_data(x[:4], y[:4], x, y, mix=24, repeat=2, seed=0)
    stacked = model.training_network()(mixed_x, training=True)  # batch norm as in the training step
    own = np.mean([keras.losses.sparse_categorical_crossentropy(mixed_y, stacked[:, k]).numpy().mean() for k in (0, 1)])
    of_average = keras.losses.sparse_categorical_crossentropy(mixed_y, keras.ops.mean(stacked, axis=1)).numpy().mean()
    assert abs(own - of_average) > 1e-3  # the two losses differ enough to tell apart

    _, _, after = finetune.finetune(
        "cnn", x[:4], y[:4], epochs=1, mix=24, repeat=2, batch_size=len(mixed_x), augment=False,
        pool=(x, y), evaluation=evaluation, model=model, verbose=False,
    )
    reported = after["settings"]["history"][0]["loss"]
    assert reported == pytest.approx(own, rel=1e-4)


def test_validate_unipen_reads_shipped_weights_on_given_renders():
    """The validation script's row for one manifest: accuracy per condition, errors counted, MNIST read."""
    from training.data import load_mnist
    from training.validate_unipen import read

    _, _, x_test, y_test = load_mnist()
    x, y = x_test[:50], y_test[:50]
    row = read(ROOT / "weights" / "numpy.json", {"a": (x, y), "b": (x[:20], y[:20])}, x[:30], y[:30])
    assert row["reads"] == 70 and 0 <= row["errors"] <= 70
    assert row["worst"] == min(row["by_condition"].values()) and set(row["by_condition"]) == {"a", "b"}
    assert row["errors"] == round((1 - row["by_condition"]["a"]) * 50 + (1 - row["by_condition"]["b"]) * 20)


def test_views_are_chosen_by_the_rule_on_validation_errors():
    """Fewest UNIPEN validation errors among candidates no worse on pendigits; a tenth saved at least; ties to fewer views."""
    from training.choose_views import pick

    rows = {"once": (96, 31), "turned ±4°": (84, 30), "turned ±12°": (76, 32), "turned ±8°, scaled 0.9, 1.1": (79, 31)}
    assert pick(rows) == "turned ±8°, scaled 0.9, 1.1"  # ±12° saves more but misreads more pendigits writers
    assert pick({"once": (11, 17), "turned ±8°": (13, 15), "scaled 0.9, 1.1": (14, 15)}) == "once"
    assert pick({"once": (100, 10), "turned ±4°": (91, 10)}) == "once"  # 9 % saved: noise on one institution
    assert pick({"once": (100, 10), "turned ±8°, scaled 0.9": (80, 9), "turned ±8°": (80, 10)}) == "turned ±8°"


def test_the_gate_is_the_lowest_that_loses_nothing_on_validation():
    """No more errors on either validation set and no more digits "unsure" than reading every view always."""
    from training.choose_views import pick_gate

    always = (79, 31, 0.010)
    assert pick_gate({0.5: (84, 31, 0.009), 0.8: (79, 31, 0.010), 0.9: (79, 31, 0.010)}, always) == 0.8
    assert pick_gate({0.5: (78, 32, 0.010), 0.9: (79, 30, 0.009)}, always) == 0.9  # fewer on one set is not enough
    assert pick_gate({0.8: (79, 31, 0.011), 0.99: (79, 31, 0.010)}, always) == 0.99  # more unsure: verdicts change
    assert pick_gate({0.5: (80, 31, 0.01), 0.9: (81, 31, 0.01)}, always) is None  # every gate loses: read always
