"""A run killed mid-way and given its backup folder again ends where one uninterrupted run ends, for every model."""

import numpy as np
import pytest

from digitrec.backup import Backup
from tests.test_models import MODEL_IDS, small_model
from training.augment import augment_batch

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
# the Keras networks take a minute between them: CI runs them, the inner loop runs the numpy network
EVERY_MODEL = [pytest.param(model_id, marks=[pytest.mark.slow] if model_id != "numpy" else [])
               for model_id in MODEL_IDS]


class Killed(Exception):
    """Stands for the session's end: the process stops between two epochs' reports."""


def data(count=192, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, 28, 28), dtype=np.float32), rng.integers(0, 10, count)


def fit(model, x, y, **extra):
    # augmentation and dropout both draw random numbers: a resumed run must draw the same ones
    return model.fit(x, y, epochs=3, batch_size=64, learning_rate=3e-3, augment=augment_batch, seed=7,
                     validation=(x[:40], y[:40]), **extra)


def kill_after(epoch_to_die):
    def on_epoch(epoch, row):
        if epoch == epoch_to_die:
            raise Killed

    return on_epoch


@pytest.mark.parametrize("model_id", EVERY_MODEL)
def test_a_killed_run_continues_to_the_weights_of_one_uninterrupted_run(tmp_path, model_id):
    x, y = data()
    whole = small_model(model_id, seed=3)
    whole_history = fit(whole, x, y)

    with pytest.raises(Killed):
        fit(small_model(model_id, seed=3), x, y, backup=tmp_path / "backup", on_epoch=kill_after(2))
    reported = []
    continued = small_model(model_id, seed=3)  # a new process builds the model afresh
    history = fit(continued, x, y, backup=tmp_path / "backup", on_epoch=lambda epoch, row: reported.append(epoch))

    assert history == whole_history and [row["epoch"] for row in history] == [1, 2, 3]
    assert reported and reported[-1] == 3 and min(reported) >= 2  # it did not start again from epoch 1
    images = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(continued.predict_outputs(images), whole.predict_outputs(images))


@pytest.mark.parametrize("model_id", EVERY_MODEL)
def test_a_finished_run_given_its_folder_again_keeps_its_weights_and_history(tmp_path, model_id):
    x, y = data()
    first = small_model(model_id, seed=3)
    history = fit(first, x, y, backup=tmp_path / "backup")
    again = small_model(model_id, seed=3)
    reported = []
    assert fit(again, x, y, backup=tmp_path / "backup", on_epoch=lambda *row: reported.append(row)) == history
    assert reported == []
    images = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(again.predict_outputs(images), first.predict_outputs(images))


@pytest.mark.parametrize("change", ["data", "seed", "epochs"])
def test_a_folder_kept_by_another_run_is_refused_and_left_as_it_was(tmp_path, change):
    x, y = data()
    with pytest.raises(Killed):
        fit(small_model("numpy"), x, y, backup=tmp_path / "backup", on_epoch=kill_after(1))
    kept = sorted((path.name, path.read_bytes()) for path in (tmp_path / "backup").iterdir())
    other = {"data": dict(x=data(seed=1)[0]), "seed": dict(seed=8), "epochs": dict(epochs=4)}[change]
    arguments = dict(x=x, y=y, epochs=3, batch_size=64, learning_rate=3e-3, augment=augment_batch, seed=7,
                     backup=tmp_path / "backup") | other
    with pytest.raises(ValueError, match=f"another run.*{change}"):
        small_model("numpy").fit(**arguments)
    assert sorted((path.name, path.read_bytes()) for path in (tmp_path / "backup").iterdir()) == kept


def test_a_state_half_written_when_the_process_died_is_not_read(tmp_path):
    x, y = data()
    with pytest.raises(Killed):
        fit(small_model("numpy"), x, y, backup=tmp_path / "backup", on_epoch=kill_after(1))
    (tmp_path / "backup" / "state.npz.partial").write_bytes(b"PK\x03\x04 cut short")
    assert [row["epoch"] for row in fit(small_model("numpy"), x, y, backup=tmp_path / "backup")] == [1, 2, 3]


def test_the_run_description_compares_as_it_was_written(tmp_path):
    Backup(tmp_path, {"sizes": (784, 16, 10), "seed": 1})
    Backup(tmp_path, {"sizes": [784, 16, 10], "seed": 1})  # a tuple read back as a list is the same run
    with pytest.raises(ValueError, match="seed"):
        Backup(tmp_path, {"sizes": [784, 16, 10], "seed": 2})
