"""The named datasets, each read from small files written here in its release's own format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import vaezoo
from vaezoo.cli import main
from vaezoo.data import DataNotFoundError, celeba, cifar10, fashion_mnist_csv, load_splits, mnist_csv, svhn
from vaezoo.data import releases
from vaezoo.data.fetch import ChecksumMismatchError, fetch
from vaezoo.errors import DataError
from vaezoo.schemas import DataConfig


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $VAEZOO_DATA, an empty cache, and downloads that fail at once."""
    monkeypatch.delenv("VAEZOO_DATA", raising=False)
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))

    def offline(target):
        raise OSError("no network in this test")

    for name in ("_download_cifar", "_download_svhn", "_download_celeba"):
        monkeypatch.setattr(releases, name, offline)
    return tmp_path


# ------------------------------------------------------------------------------ CIFAR-10


def write_cifar(folder, per_file: int = 4):
    """The binary release's six files; image i of file f has red = f, green = i, blue = 200, label (f + i) % 10."""
    folder.mkdir(parents=True)
    for f, name in enumerate(releases.CIFAR10_FILES):
        records = []
        for i in range(per_file):
            planes = np.stack([np.full((32, 32), f), np.full((32, 32), i), np.full((32, 32), 200)]).astype(np.uint8)
            records.append(np.concatenate([[np.uint8((f + i) % 10)], planes.reshape(-1)]))
        np.stack(records).astype(np.uint8).tofile(folder / name)
    return folder


def test_cifar10_reads_the_binary_release(isolated, monkeypatch):
    write_cifar(isolated / "data" / "cifar10" / "cifar-10-batches-bin")
    monkeypatch.setenv("VAEZOO_DATA", str(isolated / "data"))
    data = cifar10(None)
    assert data.train_images.shape == (20, 3, 32, 32) and data.test_images.shape == (4, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8 and data.classes[3] == "cat"
    # the planes are red, green, blue in that order, per record
    assert data.train_images[5, :, 0, 0].tolist() == [1, 1, 200]  # file 1, image 1
    assert data.train_labels[5] == 2 and data.test_labels.tolist() == [5, 6, 7, 8]
    (isolated / "data" / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="not a whole number of CIFAR-10 records"):
        cifar10(None)


def test_cifar10_missing_lists_the_places_and_the_download(isolated):
    with pytest.raises(DataNotFoundError) as info:
        cifar10(None)
    message = str(info.value)
    assert "cache:" in message and "download into" in message and "no network in this test" in message
    assert "`vaezoo data cifar10`" in message


def test_a_download_lands_in_the_cache_and_is_found_there_next_time(isolated, monkeypatch):
    calls = []

    def fake_download(target):
        calls.append(target)
        return write_cifar(target / "cifar-10-batches-bin")

    monkeypatch.setattr(releases, "_download_cifar", fake_download)
    assert cifar10(None).train_images.shape[0] == 20
    assert cifar10(None).train_images.shape[0] == 20
    assert len(calls) == 1  # the second load found the cache
    assert fetch("cifar10").place == "cache"


# ------------------------------------------------------------------------------ SVHN


def write_svhn(folder):
    from scipy.io import savemat

    folder.mkdir(parents=True)
    for name, n in (("train_32x32.mat", 5), ("test_32x32.mat", 3)):
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[:, :, 0, :] = np.arange(n, dtype=np.uint8)  # red = index
        x[:, :, 2, :] = 77
        savemat(folder / name, {"X": x, "y": np.full((n, 1), 10, dtype=np.uint8)})  # every image a digit 0
    return folder


def test_svhn_reads_the_matlab_release_and_maps_ten_to_zero(isolated, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", str(write_svhn(isolated / "svhn")))
    data = svhn(None)
    assert data.train_images.shape == (5, 3, 32, 32) and data.test_images.shape == (3, 3, 32, 32)
    assert data.train_images[3, :, 5, 5].tolist() == [3, 0, 77]
    assert data.train_labels.tolist() == [0] * 5  # the release's label 10 is the digit 0
    with pytest.raises(ChecksumMismatchError, match="train_32x32.mat: md5"):
        fetch("svhn", download=False)  # these are not the release's files


# ------------------------------------------------------------------------------ CelebA


def write_celeba(folder, n: int = 6):
    """Aligned 178 x 218 faces: the centre 148 x 148 is the image's own grey, the border white."""
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    lines = []
    for i in range(n):
        img = Image.new("RGB", (178, 218), (255, 255, 255))
        img.paste((10 * i, 10 * i, 10 * i), ((178 - 148) // 2, (218 - 148) // 2, (178 + 148) // 2, (218 + 148) // 2))
        img.save(images / f"{i:06d}.jpg", quality=100)
        lines.append(f"{i:06d}.jpg {[0, 0, 0, 1, 2, 2][i]}")
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_celeba_crops_resizes_and_caches_the_decoded_images(isolated, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", str(write_celeba(isolated / "faces" / "celeba")))
    data = celeba(None, size=16)
    assert data.train_images.shape == (3, 3, 16, 16) and data.test_images.shape == (2, 3, 16, 16)
    # the crop removed the white border: every pixel is the face's grey (JPEG: within a few levels)
    assert (data.train_images[2].float() - 20).abs().max() <= 4
    assert (data.test_images[1].float() - 50).abs().max() <= 4

    def no_decoding(*args):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(releases, "_crop_and_resize", no_decoding)
    assert torch.equal(celeba(None, size=16).train_images, data.train_images)
    (isolated / "faces" / "celeba" / "list_eval_partition.txt").write_text("000000.jpg train\n")
    with pytest.raises(DataError, match=r"line 1: expected '<file> <0\|1\|2>'"):
        celeba(None, size=16)


# ------------------------------------------------------------------------------ CSV


def test_csv_release_with_or_without_a_header(isolated, monkeypatch):
    folder = isolated / "csv"
    folder.mkdir()
    rows = lambda n, label: "\n".join(",".join([str(label)] + [str((i * 7 + j) % 256) for j in range(784)])
                                      for i in range(n))
    header = "label," + ",".join(f"pixel{j}" for j in range(1, 785))
    (folder / "fashion-mnist_train.csv").write_text(header + "\n" + rows(4, 3) + "\n")
    (folder / "fashion-mnist_test.csv").write_text(header + "\n" + rows(2, 9) + "\n")
    (folder / "mnist_train.csv").write_text(rows(3, 1) + "\n")
    (folder / "mnist_test.csv").write_text(rows(2, 0) + "\n")
    monkeypatch.setenv("VAEZOO_DATA", str(folder))
    data = fashion_mnist_csv(None)
    assert data.train_images.shape == (4, 1, 28, 28) and data.train_labels.tolist() == [3] * 4
    assert data.train_images[1, 0, 0, :3].tolist() == [7, 8, 9] and data.classes[9] == "Ankle boot"
    assert mnist_csv(None).train_images.shape == (3, 1, 28, 28)
    (folder / "mnist_test.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match="rows have 3 values; expected a label then 784 pixels"):
        mnist_csv(None)


# ------------------------------------------------------------------------------ image-folder, messages


def test_image_folder_takes_its_channels_from_the_model(tmp_path):
    for i in range(6):
        (tmp_path / "faces").mkdir(exist_ok=True)
        Image.new("RGB", (6, 6), (40 * i, 0, 255)).save(tmp_path / "faces" / f"{i}.png")
    config = DataConfig.model_validate({"dataset": {"name": "image-folder", "path": str(tmp_path / "faces")},
                                        "val_size": 1})
    assert load_splits(config, expected_shape=(3, 6, 6)).shape == (3, 6, 6)
    assert load_splits(config).shape == (1, 6, 6)  # no model to follow: grayscale, as before
    explicit = config.model_copy(update={"dataset": config.dataset.model_copy(update={"channels": 1})})
    assert load_splits(explicit, expected_shape=(3, 6, 6)).shape == (1, 6, 6)
    with pytest.raises(DataError, match=r"only 5 images: set data.val_size below 5 \(e.g. --set data.val_size=1\)"):
        load_splits(config.model_copy(update={"val_size": 6}))


def test_rgb_zoo_configs_build_models_for_their_datasets():
    for name, shape in (("cifar10-resnet", (3, 32, 32)), ("celeba64-resnet", (3, 64, 64))):
        model = vaezoo.create(name)
        assert model.input_shape == shape and vaezoo.get_config(name).data.dataset.name in name
        assert model.sample(2).shape == (2, *shape)


def test_vaezoo_data_reports_each_release(isolated, monkeypatch, capsys):
    write_cifar(isolated / "mine" / "cifar-10-batches-bin")
    assert main(["data", "cifar10", "--data", str(isolated / "mine"), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cifar10: ") and "found via data.root / --data" in out and "unverified" in out
    assert main(["data", "celeba", "--no-download"]) == 2
    assert "celeba not found" in capsys.readouterr().err
