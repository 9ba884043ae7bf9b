"""Every model: save/load round trips through the manifest, refusal of tampered or foreign files, the registry."""

import json

import numpy as np
import pytest

import digitrec
from digitrec.base import Model
from digitrec.manifest import FORMAT_VERSION, sha256_of

MODEL_IDS = ("cnn", "dense", "numpy")

# Keras 3 on numpy 2 warns about __array__ inside its own code; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def small_model(model_id, seed=0):
    """Return a small, fast model of each kind (Keras imported only when asked for)."""
    if model_id == "cnn":
        from digitrec.keras_cnn import KerasCNN

        import keras

        keras.utils.set_random_seed(seed)
        return KerasCNN(filters=(4, 8), dense_units=16)
    if model_id == "dense":
        from digitrec.keras_dense import KerasDense

        import keras

        keras.utils.set_random_seed(seed)
        return KerasDense(hidden=(16,))
    from digitrec.numpy_net import NumpyNet

    return NumpyNet(sizes=(784, 16, 10), seed=seed)


@pytest.fixture(scope="module", params=MODEL_IDS)
def saved(request, tmp_path_factory):
    """Yield (model, manifest path) of a small model of each kind saved in a temporary folder."""
    model = small_model(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    manifest_path = model.save(directory, training={"epochs": 0}, metrics={"note": "untrained"})
    return model, manifest_path


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.random((5, 28, 28)).astype(np.float32)
    x[0] = 0  # a blank image too
    return x


def test_predict_proba_gives_probabilities(saved, images):
    model, _ = saved
    assert isinstance(model, Model)
    p = model.predict_proba(images)
    assert p.shape == (len(images), 10)
    assert p.dtype == np.float32
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert model.predict_proba(images[:1]).shape == (1, 10)


def test_predict_proba_rejects_wrong_shapes(saved):
    model, _ = saved
    for bad in (np.zeros((28, 28)), np.zeros((2, 784)), np.full((1, 28, 28), np.nan)):
        with pytest.raises(ValueError):
            model.predict_proba(bad)


def test_save_load_round_trip_gives_identical_predictions(saved, images):
    model, manifest_path = saved
    loaded = type(model).load(manifest_path)
    assert loaded is not model
    assert loaded.config == model.config
    assert loaded.parameter_count() == model.parameter_count()
    np.testing.assert_array_equal(loaded.predict_proba(images), model.predict_proba(images))


def test_load_differs_from_a_fresh_model(saved, images):
    """The loaded weights are the saved ones, not a re-initialisation that happens to match."""
    model, manifest_path = saved
    fresh = small_model(model.model_id, seed=123)
    fresh_p = fresh.predict_proba(images)
    assert not np.allclose(fresh_p, model.predict_proba(images))
    fresh._load_weights(manifest_path.parent / json.loads(manifest_path.read_text())["weights_file"])
    np.testing.assert_array_equal(fresh.predict_proba(images), model.predict_proba(images))


def test_manifest_describes_the_model(saved):
    model, manifest_path = saved
    assert manifest_path.name == f"{model.model_id}.json"
    manifest = json.loads(manifest_path.read_text())
    for key in ("format_version", "model_id", "config", "params", "sha256", "architecture"):
        assert key in manifest, key
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model_id"] == model.model_id
    assert manifest["config"] == json.loads(json.dumps(model.config))
    assert manifest["params"] == model.parameter_count() > 0
    assert manifest["architecture"] == model.describe() and manifest["architecture"]
    weights_path = manifest_path.parent / manifest["weights_file"]
    assert weights_path.exists() and weights_path.name.startswith(model.model_id)
    assert manifest["sha256"] == sha256_of(weights_path)
    assert len(manifest["sha256"]) == 64 and int(manifest["sha256"], 16) >= 0
    assert manifest["training"] == {"epochs": 0} and manifest["metrics"] == {"note": "untrained"}


def copy_saved(manifest_path, destination):
    """Copy a saved model (manifest and weights) to ``destination``; return the new manifest path."""
    manifest = json.loads(manifest_path.read_text())
    destination.mkdir(parents=True, exist_ok=True)
    weights = manifest["weights_file"]
    (destination / weights).write_bytes((manifest_path.parent / weights).read_bytes())
    (destination / manifest_path.name).write_text(manifest_path.read_text())
    return destination / manifest_path.name, destination / weights


def test_tampered_weights_raise_checksum_error(saved, tmp_path):
    model, manifest_path = saved
    copied, weights = copy_saved(manifest_path, tmp_path)
    with open(weights, "ab") as file:
        file.write(b"\0")
    with pytest.raises(digitrec.ChecksumError) as info:
        type(model).load(copied)
    assert isinstance(info.value, ValueError)
    assert weights.name in str(info.value)


def test_other_format_version_is_refused(saved, tmp_path):
    model, manifest_path = saved
    copied, _ = copy_saved(manifest_path, tmp_path)
    manifest = json.loads(copied.read_text())
    manifest["format_version"] = 99
    copied.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="99"):
        type(model).load(copied)


def test_manifest_of_another_model_is_refused(saved, tmp_path):
    model, manifest_path = saved
    copied, _ = copy_saved(manifest_path, tmp_path)
    manifest = json.loads(copied.read_text())
    manifest["model_id"] = "other"
    copied.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="other"):
        type(model).load(copied)


def test_save_overwrites_and_manifest_follows(saved, tmp_path, images):
    """Saving twice into one folder leaves a consistent pair (the second model's)."""
    model, _ = saved
    small_model(model.model_id, seed=7).save(tmp_path)
    manifest_path = model.save(tmp_path)
    np.testing.assert_array_equal(type(model).load(manifest_path).predict_proba(images), model.predict_proba(images))


def test_numpy_weights_of_the_wrong_shape_are_refused(tmp_path):
    from digitrec.numpy_net import NumpyNet

    manifest_path = NumpyNet(sizes=(784, 16, 10)).save(tmp_path / "a")
    other = NumpyNet(sizes=(784, 8, 10)).save(tmp_path / "b")
    with pytest.raises(ValueError):
        NumpyNet.load(manifest_path, weights_path=other.parent / "numpy.npz")  # checksum differs first
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["sizes"] = [784, 8, 10]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="shape"):
        NumpyNet.load(manifest_path)


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("bad", ["nope", 3, None, -1, 10**30, "", "CNN", " cnn", ["cnn"], b"cnn"])
def test_unknown_model_id_raises_unknown_model_error(bad):
    with pytest.raises(digitrec.UnknownModelError) as info:
        digitrec.get_model(bad)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    for model_id in MODEL_IDS:
        assert f"{model_id}" in message
    assert len(message) < 200


def test_predict_with_unknown_model_raises_before_reading_the_image():
    with pytest.raises(digitrec.UnknownModelError):
        digitrec.predict(None, "nope")


def test_models_table_lists_the_three_models_in_order():
    assert tuple(digitrec.MODELS) == MODEL_IDS
    assert tuple(digitrec.MODEL_IDS) == MODEL_IDS
    for model_id, entry in digitrec.MODELS.items():
        for key in ("name", "architecture", "metrics"):
            assert key in entry, (model_id, key)
        assert isinstance(entry["name"], str) and entry["name"]
        assert isinstance(entry["metrics"], dict)


@pytest.mark.parametrize("count", [1, 2])
def test_cnn_members_are_averaged_and_trained_on_their_own_losses(images, count):
    """The CNN ensemble answers the mean of its members' probabilities, and each member has its own loss."""
    import keras

    from digitrec.keras_cnn import KerasCNN

    keras.utils.set_random_seed(0)
    model = KerasCNN(filters=(4, 8), dense_units=16, members=count)
    members = model.training_network()(images, training=False).numpy()  # (N, members, 10)
    assert members.shape == (len(images), count, 10)
    if count > 1:
        assert not np.allclose(members[:, 0], members[:, 1])  # started from different weights
    np.testing.assert_allclose(model.predict_proba(images), members.mean(axis=1), atol=1e-6)

    labels = np.arange(len(images)) % 10
    each = [keras.losses.sparse_categorical_crossentropy(labels, members[:, k]).numpy() for k in range(members.shape[1])]
    np.testing.assert_allclose(model.training_loss(labels, members).numpy(), np.mean(each, axis=0), rtol=1e-5)
    expected = (members.mean(axis=1).argmax(axis=1) == labels).astype(np.float32)
    np.testing.assert_array_equal(model.training_accuracy(labels, members).numpy(), expected)


def test_cnn_needs_at_least_one_member():
    from digitrec.keras_cnn import KerasCNN

    with pytest.raises(ValueError, match="members"):
        KerasCNN(members=0)


# ---------------------------------------------------------------- the 11th output, "not a digit"


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_widened_model_reads_digits_as_before_and_round_trips(model_id, images, tmp_path):
    """A new "not a digit" output starts at zero: every digit's probability is unchanged, and the file keeps 11 outputs."""
    model = small_model(model_id)
    wider = model.widened(11)
    assert (model.outputs, wider.outputs) == (10, 11)
    assert wider.predict_outputs(images).shape == (len(images), 11)
    # exact for one softmax; the CNN averages its members' 11 outputs before digits_only renormalises
    np.testing.assert_allclose(wider.predict_proba(images), model.predict_proba(images), atol=1e-4)
    loaded = type(model).load(wider.save(tmp_path))
    assert loaded.outputs == 11
    assert "not a digit" in loaded.describe()
    np.testing.assert_array_equal(loaded.predict_outputs(images), wider.predict_outputs(images))


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_a_widened_model_reads_at_the_same_test_time_views(model_id, images):
    """Widening adds an output; how each drawing is read (views, gate) is the model's and stays."""
    from digitrec.views import check_views

    model = small_model(model_id)
    model.views, model.views_below = check_views([[0, 1], [8, 1], [0, 1, 1, 0]]), 0.9
    wider = model.widened(11)
    assert (wider.views, wider.views_below) == (model.views, model.views_below)
    assert wider.predict_outputs(images).shape == (len(images), 11)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_eleventh_output_learns_not_a_digit_and_predict_proba_stays_ten_digits(model_id):
    """Trained on bars (a 1) against noise (not a digit), the 11th output takes the noise; predict_proba never shows it."""
    rng = np.random.default_rng(0)
    bars = np.zeros((200, 28, 28), np.float32)
    bars[:, 4:24, 13:15] = 1.0
    noise = (rng.random((200, 28, 28)) < 0.3).astype(np.float32)
    x, y = np.concatenate([bars, noise]), np.array([1] * 200 + [10] * 200)
    model = small_model(model_id).widened(11)
    model.fit(x, y, epochs=20, batch_size=32, learning_rate=3e-3, seed=0)
    fresh_noise = (rng.random((20, 28, 28)) < 0.3).astype(np.float32)
    outputs = model.predict_outputs(np.concatenate([bars[:20], fresh_noise]))
    assert (outputs[:20].argmax(axis=1) == 1).all()
    assert (outputs[20:].argmax(axis=1) == 10).all()
    digits = model.predict_proba(fresh_noise)
    assert digits.shape == (20, 10)
    np.testing.assert_allclose(digits.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_labels_without_an_output_are_refused(model_id):
    model = small_model(model_id)
    with pytest.raises(ValueError, match="Labels must be 0–9"):
        model.fit(np.zeros((4, 28, 28), np.float32), [0, 1, 2, 10], epochs=1)
    with pytest.raises(ValueError, match="11"):  # ten digits, and "not a digit": nothing else
        model.widened(12)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_test_time_views_are_saved_loaded_and_average_each_view(model_id, images, tmp_path):
    """A model with views keeps them through its manifest and reads the mean of what it reads of each view alone."""
    from digitrec.views import IDENTITY, check_views, turned

    model = small_model(model_id)
    plain = model.predict_proba(images)
    model.views = check_views([[0, 1], [12, 1], [0, 0.9, 1, 0]])
    loaded = type(model).load(model.save(tmp_path))
    assert loaded.views == model.views and loaded.views_below is None
    written = json.loads((tmp_path / f"{model_id}.json").read_text())["test_time_views"]
    assert written == [[0, 1], [12, 1], [0, 0.9, 1, 0]]
    loaded.views = (IDENTITY,)
    each = [loaded.predict_proba(turned(images, *view)) for view in model.views]
    np.testing.assert_array_equal(each[0], plain)
    np.testing.assert_allclose(model.predict_proba(images), np.mean(each, axis=0), atol=1e-5)
    features, probs = model.features_and_proba(images)
    np.testing.assert_allclose(probs, np.mean(each, axis=0), atol=1e-5)
    np.testing.assert_allclose(features, np.mean([loaded.features_and_proba(turned(images, *view))[0]
                                                  for view in model.views], axis=0), atol=1e-4)
    plain_manifest = json.loads(loaded.save(tmp_path / "plain").read_text())
    assert "test_time_views" not in plain_manifest  # a model read once says nothing

    # gated: a drawing the first reading is sure of keeps it; the others average every view
    gate = float(np.median(plain.max(axis=1)))
    model.views_below = gate
    gated = type(model).load(model.save(tmp_path / "gated"))
    assert (gated.views, gated.views_below) == (model.views, gate)
    unsure = loaded.predict_outputs(images).max(axis=1) < gate
    assert 0 < unsure.sum() < len(images)
    probs = gated.predict_proba(images)
    np.testing.assert_array_equal(probs[~unsure], plain[~unsure])
    np.testing.assert_allclose(probs[unsure], np.mean(each, axis=0)[unsure], atol=1e-5)
    features, gated_probs = gated.features_and_proba(images)
    np.testing.assert_allclose(gated_probs, probs, atol=1e-6)
    np.testing.assert_allclose(features[~unsure], loaded.features_and_proba(images)[0][~unsure], atol=1e-5)
