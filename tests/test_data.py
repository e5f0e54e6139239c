"""Data: the IDX reader, where datasets are found, splits, binarization, generic datasets."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file
from PIL import Image

from vaezoo.data import datasets as datasets_mod
from vaezoo.data import DataNotFoundError, dynamic_binarize, load_splits, static_binarize, to_float
from vaezoo.data.datasets import fashion_mnist, mnist
from vaezoo.data.generic import image_folder, tensors
from vaezoo.data.idx import read_idx
from vaezoo.errors import DataError
from vaezoo.schemas import DataConfig

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ------------------------------------------------------------------------------ helpers


def write_idx(path: Path, array: torch.Tensor, code: int = 0x08, fmt: str = "B") -> Path:
    """An IDX file by hand (magic 0 0 type ndim, big-endian sizes, big-endian data)."""
    header = bytes([0, 0, code, array.dim()]) + b"".join(struct.pack(">I", s) for s in array.shape)
    body = struct.pack(f">{array.numel()}{fmt}", *array.flatten().tolist())
    raw = header + body
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_tiny_idx_set(folder: Path, marker: int, gz: bool = True) -> Path:
    """A 4-file IDX dataset whose every pixel equals ``marker``, to tell sets apart."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{STEMS[0]}{ext}", torch.full((6, 4, 4), marker, dtype=torch.uint8))
    write_idx(folder / f"{STEMS[1]}{ext}", torch.arange(6, dtype=torch.uint8) % 3)
    write_idx(folder / f"{STEMS[2]}{ext}", torch.full((2, 4, 4), marker, dtype=torch.uint8))
    write_idx(folder / f"{STEMS[3]}{ext}", torch.tensor([0, 1], dtype=torch.uint8))
    return folder


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $VAEZOO_DATA, a Debian dir that does not exist, downloads that fail fast into a tmp cache.

    Returns the list of folders the (fake) download was asked to fill.
    """
    monkeypatch.delenv("VAEZOO_DATA", raising=False)
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(datasets_mod.DEBIAN_DIRS, "fashion-mnist", str(tmp_path / "no-debian"))
    monkeypatch.setitem(datasets_mod.DEBIAN_DIRS, "mnist", str(tmp_path / "no-debian-mnist"))
    targets: list[Path] = []

    def fake_torchvision_download(cls_name):
        def download(target: Path) -> Path:
            targets.append(target)
            # torchvision's real error spans one line per mirror; the report must condense it.
            raise RuntimeError(
                "Error downloading train-images-idx3-ubyte.gz:\nTried https://a.example/, got:\n"
                "<urlopen error [Errno -2] Name or service not known>\nTried https://b.example/, got:\n"
                "<urlopen error [Errno -2] Name or service not known>\n"
            )

        return download

    monkeypatch.setattr(datasets_mod, "_torchvision_download", fake_torchvision_download)
    return targets


# ------------------------------------------------------------------------------ IDX reader


@pytest.fixture(scope="module")
def fashion_files(fashion_mnist_dir) -> dict[str, torch.Tensor]:
    return {stem: read_idx(fashion_mnist_dir / f"{stem}.gz") for stem in STEMS}


def test_idx_reader_on_shared_fashion_mnist(fashion_mnist_dir, fashion_files):
    train_x, train_y = fashion_files[STEMS[0]], fashion_files[STEMS[1]]
    test_x, test_y = fashion_files[STEMS[2]], fashion_files[STEMS[3]]
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == torch.uint8
    assert test_x.shape == (10000, 28, 28) and test_y.shape == (10000,)
    assert int(train_y[0]) == 9  # sample 0 is an Ankle boot (README)
    assert torch.bincount(train_y.long(), minlength=10).tolist() == [6000] * 10
    assert 0 < train_x.float().mean() < 255  # real pixels, not a zero-filled buffer


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_reader_on_hand_made_file(tmp_path, suffix):
    images = torch.arange(2 * 3 * 5, dtype=torch.uint8).reshape(2, 3, 5)
    assert torch.equal(read_idx(write_idx(tmp_path / f"x-idx3-ubyte{suffix}", images)), images)
    # Multi-byte types are big-endian on disk; the reader must return native values.
    ints = torch.tensor([1, -2, 70000], dtype=torch.int32)
    got = read_idx(write_idx(tmp_path / f"i-idx1-ubyte{suffix}", ints, code=0x0C, fmt="i"))
    assert got.tolist() == [1, -2, 70000]


def test_idx_reader_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "short", torch.zeros(10, dtype=torch.uint8))
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(good)


# ------------------------------------------------------------------------------ lookup order


def test_explicit_root_wins_over_vaezoo_data(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", str(write_tiny_idx_set(tmp_path / "env", marker=1)))
    data = fashion_mnist(str(write_tiny_idx_set(tmp_path / "explicit", marker=2, gz=False)))
    assert int(data.train_images.max()) == 2 and data.source == str(tmp_path / "explicit")
    assert data.train_images.shape == (6, 1, 4, 4) and data.train_labels.dtype == torch.long


def test_wrong_explicit_root_is_an_error_not_a_fallback(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", str(write_tiny_idx_set(tmp_path / "env", marker=1)))
    with pytest.raises(DataNotFoundError) as info:
        fashion_mnist(str(tmp_path / "typo"))
    message = str(info.value)
    assert str(tmp_path / "typo") in message and "no such folder" in message and "To fix" in message
    assert isolated == []  # no download attempted


def test_vaezoo_data_folder_or_its_dataset_subfolder(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", str(write_tiny_idx_set(tmp_path / "flat", marker=3)))
    assert int(fashion_mnist(None).train_images.max()) == 3
    write_tiny_idx_set(tmp_path / "many" / "fashion-mnist", marker=4)
    write_tiny_idx_set(tmp_path / "many" / "mnist", marker=5)
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / "many"))
    assert int(fashion_mnist(None).train_images.max()) == 4
    assert int(mnist(None).train_images.max()) == 5
    assert isolated == []


def test_debian_dir_is_used_after_vaezoo_data(tmp_path, isolated, monkeypatch):
    debian = write_tiny_idx_set(tmp_path / "usr-share", marker=6)
    monkeypatch.setitem(datasets_mod.DEBIAN_DIRS, "fashion-mnist", str(debian))
    assert int(fashion_mnist(None).train_images.max()) == 6
    # $VAEZOO_DATA, when it holds the data, comes before the Debian folder.
    monkeypatch.setenv("VAEZOO_DATA", str(write_tiny_idx_set(tmp_path / "env", marker=7)))
    assert int(fashion_mnist(None).train_images.max()) == 7
    assert isolated == []


def test_nothing_found_lists_every_place_tried_one_line_each(tmp_path, isolated):
    with pytest.raises(DataNotFoundError) as info:
        fashion_mnist(None)
    message = str(info.value)
    assert isolated == [tmp_path / "cache" / "fashion-mnist"]  # the download went to the tmp cache
    lines = message.splitlines()
    assert lines[0] == "fashion-mnist not found. Tried, in order:"
    assert lines[1].startswith("  1. data.root / --data: not given")
    assert lines[2].startswith("  2. $VAEZOO_DATA: not set")
    assert lines[3].startswith(f"  3. Debian package: {tmp_path / 'no-debian'}")
    assert lines[4] == f"  4. cache: {tmp_path / 'cache' / 'fashion-mnist' / 'FashionMNIST' / 'raw'} (no such folder)"
    # The multi-line download error is condensed onto its own single line.
    assert lines[5].startswith(f"  5. download into {tmp_path / 'cache' / 'fashion-mnist'}: RuntimeError: Error downloading")
    assert "Name or service not known" in lines[5]
    assert lines[6].startswith("To fix: point data.root") and "`vaezoo data fashion-mnist`" in lines[6]
    assert len(lines) == 7


def test_vaezoo_data_without_the_files_is_reported(tmp_path, isolated, monkeypatch):
    (tmp_path / "empty").mkdir()
    write_idx(tmp_path / "empty" / f"{STEMS[0]}.gz", torch.zeros(1, 2, 2, dtype=torch.uint8))
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match=r"2\. \$VAEZOO_DATA: .*missing train-labels-idx1-ubyte"):
        fashion_mnist(None)


def test_cache_is_used_before_any_download(tmp_path, isolated):
    write_tiny_idx_set(tmp_path / "cache" / "fashion-mnist" / "FashionMNIST" / "raw", marker=9)
    assert int(fashion_mnist(None).train_images.max()) == 9
    assert isolated == []  # found in the cache: no download attempted


def test_fetch_verifies_checksums_and_reports_the_place(tmp_path, isolated, monkeypatch, capsys):
    from vaezoo.cli import main
    from vaezoo.data import fetch as fetch_mod

    folder = write_tiny_idx_set(tmp_path / "env", marker=1)
    monkeypatch.setenv("VAEZOO_DATA", str(folder))
    # The tiny files are not the release: the content check names the file and the fix.
    with pytest.raises(fetch_mod.ChecksumMismatchError, match=r"train-images-idx3-ubyte.gz: its content has sha256"):
        fetch_mod.fetch("fashion-mnist")
    # With the published checksums set to these files' own, the same files pass, each way of checking.
    gz_md5 = {stem: fetch_mod._digest((folder / f"{stem}.gz").read_bytes(), "md5") for stem in STEMS}
    sha = {stem: fetch_mod._digest(gzip.decompress((folder / f"{stem}.gz").read_bytes()), "sha256") for stem in STEMS}
    monkeypatch.setitem(fetch_mod._CHECKSUMS, "fashion-mnist", {s: (gz_md5[s], sha[s]) for s in STEMS})
    result = fetch_mod.fetch("fashion-mnist")
    assert result.place == "$VAEZOO_DATA" and {f.check for f in result.files} == {"md5 of the .gz"}
    monkeypatch.setitem(fetch_mod._CHECKSUMS, "fashion-mnist", {s: ("0" * 32, sha[s]) for s in STEMS})
    assert {f.check for f in fetch_mod.fetch("fashion-mnist").files} == {"sha256 of the content"}
    assert main(["data", "fashion-mnist", "--no-download"]) == 0
    monkeypatch.delenv("VAEZOO_DATA")
    capsys.readouterr()
    assert main(["data", "fashion-mnist", "--no-download"]) == 2
    assert isolated == []  # --no-download never downloads
    lines = capsys.readouterr().err.splitlines()  # one message: its first line marked, the places tried indented
    assert lines[0] == "error: fashion-mnist not found. Tried, in order:" and lines[1].startswith("  1. ")


def test_successful_download_is_used(tmp_path, isolated, monkeypatch):
    def fake(cls_name):
        def download(target: Path) -> Path:
            return write_tiny_idx_set(target / cls_name / "raw", marker=8)

        return download

    monkeypatch.setattr(datasets_mod, "_torchvision_download", fake)
    data = fashion_mnist(None)
    assert int(data.train_images.max()) == 8
    assert data.source == str(tmp_path / "cache" / "fashion-mnist" / "FashionMNIST" / "raw")


# ------------------------------------------------------------------------------ splits


def _id_tensors(tmp_path: Path, n_train: int = 40, n_test: int = 10) -> Path:
    """A tensors file whose labels are each image's index: identity survives the split."""
    g = torch.Generator().manual_seed(0)
    file = tmp_path / "ids.safetensors"
    save_file({
        "train_images": torch.randint(0, 256, (n_train, 1, 6, 6), dtype=torch.uint8, generator=g),
        "train_labels": torch.arange(n_train),
        "test_images": torch.randint(0, 256, (n_test, 1, 6, 6), dtype=torch.uint8, generator=g),
        "test_labels": torch.arange(n_test),
    }, str(file))
    return file


def test_load_splits_on_fashion_mnist_sizes(fashion_mnist_dir):
    s = load_splits(DataConfig(val_size=5000))
    assert (s.train.shape[0], s.val.shape[0], s.test.shape[0]) == (55000, 5000, 10000)
    assert s.train.dtype == torch.uint8 and s.shape == (1, 28, 28)
    assert s.classes[9] == "Ankle boot" and s.train_labels.shape == (55000,)
    # Every class keeps all its images across train + val.
    counts = torch.bincount(torch.cat([s.train_labels, s.val_labels]), minlength=10)
    assert counts.tolist() == [6000] * 10


def test_load_splits_disjoint_and_deterministic(tmp_path):
    config = DataConfig(dataset={"name": "tensors", "path": str(_id_tensors(tmp_path))}, val_size=8)
    a, b = load_splits(config), load_splits(config)
    train_ids, val_ids = set(a.train_labels.tolist()), set(a.val_labels.tolist())
    assert len(val_ids) == 8 and len(train_ids) == 32
    assert not train_ids & val_ids and train_ids | val_ids == set(range(40))
    assert torch.equal(a.val_labels, b.val_labels) and torch.equal(a.train, b.train)
    assert a.test.shape[0] == 10 and a.binarize == "none"
    with pytest.raises(ValueError, match="val_size is 40 but the training set has only 40"):
        load_splits(config.model_copy(update={"val_size": 40}))


def test_load_splits_root_argument_overrides_config_root(tmp_path, isolated):
    write_tiny_idx_set(tmp_path / "a", marker=1)
    write_tiny_idx_set(tmp_path / "b", marker=2)
    config = DataConfig(root=str(tmp_path / "a"), val_size=2)
    assert int(load_splits(config).train.max()) == 1
    assert int(load_splits(config, root=str(tmp_path / "b")).train.max()) == 2


# ------------------------------------------------------------------------------ binarization


def test_static_binarize_is_fixed_binary_and_unbiased():
    x = torch.randint(0, 256, (3000, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a, b = static_binarize(x), static_binarize(x)
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0, 255} and a.shape == x.shape
    # P(pixel = 1) = x / 255: the mean matches and black/white pixels stay put.
    assert abs(to_float(a).mean().item() - to_float(x).mean().item()) < 0.01
    ends = torch.tensor([[0, 255] * 50], dtype=torch.uint8)
    assert torch.equal(static_binarize(ends), ends)
    assert not torch.equal(static_binarize(x, seed=99), a)


def test_static_binarize_in_load_splits_independent_of_val_size(tmp_path):
    file = str(_id_tensors(tmp_path))
    s2 = load_splits(DataConfig(dataset={"name": "tensors", "path": file}, binarize="static", val_size=2))
    s5 = load_splits(DataConfig(dataset={"name": "tensors", "path": file}, binarize="static", val_size=5))
    assert s2.binarize == "static" and set(s2.train.unique().tolist()) <= {0, 255}
    # The same image (by id) is binarized the same way whatever the hold-out size.
    by_id2 = dict(zip(torch.cat([s2.train_labels, s2.val_labels]).tolist(), torch.cat([s2.train, s2.val])))
    by_id5 = dict(zip(torch.cat([s5.train_labels, s5.val_labels]).tolist(), torch.cat([s5.train, s5.val])))
    assert all(torch.equal(by_id2[i], by_id5[i]) for i in range(40))
    assert torch.equal(s2.test, s5.test)


def test_dynamic_binarize_fresh_draws_with_the_right_mean():
    x = torch.full((200, 1, 10, 10), 0.3)
    gen = torch.Generator().manual_seed(0)
    a, b = dynamic_binarize(x, gen), dynamic_binarize(x, gen)
    assert a.dtype == x.dtype and set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, b)  # a fresh draw each call
    assert abs(a.mean().item() - 0.3) < 0.01 and abs(b.mean().item() - 0.3) < 0.01
    again = dynamic_binarize(x, torch.Generator().manual_seed(0))
    assert torch.equal(again, a)  # reproducible from the generator's state
    ends = torch.tensor([0.0, 1.0] * 50)
    assert torch.equal(dynamic_binarize(ends, gen), ends)


# ------------------------------------------------------------------------------ tensors dataset


def test_tensors_dataset_uint8_with_labels_and_classes(tmp_path):
    file = tmp_path / "d.safetensors"
    train = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    save_file({"train_images": train, "train_labels": torch.tensor([0, 1, 1, 0, 1]),
               "test_images": train[:2].clone(), "test_labels": torch.tensor([1, 0])},
              str(file), metadata={"classes": json.dumps(["cat", "dog"])})
    data = tensors(None, path=str(file))
    assert torch.equal(data.train_images, train) and data.train_labels.dtype == torch.long
    assert data.classes == ["cat", "dog"] and data.test_labels.tolist() == [1, 0]
    # A relative path is taken relative to data.root.
    assert torch.equal(tensors(str(tmp_path), path="d.safetensors").train_images, train)
    assert torch.equal(tensors(str(file)).train_images, train)  # data.root as the file itself


def test_tensors_dataset_float_and_nhw_and_hold_out(tmp_path):
    file = tmp_path / "f.safetensors"
    x = torch.rand(20, 7, 7)
    save_file({"train_images": x}, str(file))
    data = tensors(None, path=str(file), test_fraction=0.25)
    assert data.train_images.shape == (15, 1, 7, 7) and data.test_images.shape == (5, 1, 7, 7)
    assert data.train_images.dtype == torch.uint8 and data.train_labels is None
    expected = (x * 255).round().to(torch.uint8).unsqueeze(1)
    together = torch.cat([data.train_images, data.test_images])
    assert sorted(together.flatten().tolist()) == sorted(expected.flatten().tolist())
    assert torch.equal(tensors(None, path=str(file), test_fraction=0.25).test_images, data.test_images)


def test_tensors_dataset_errors_name_the_file_and_key(tmp_path):
    file = tmp_path / "bad.safetensors"
    save_file({"images": torch.zeros(3, 1, 2, 2, dtype=torch.uint8)}, str(file))
    with pytest.raises(DataError, match=r"bad\.safetensors has no 'train_images' tensor \(keys found: images\)"):
        tensors(None, path=str(file))
    save_file({"train_images": torch.full((3, 2, 2), 2.0)}, str(file))
    with pytest.raises(ValueError, match=r"bad\.safetensors: 'train_images' is torch.float32 with values in \[2, 2\]"):
        tensors(None, path=str(file))
    save_file({"train_images": torch.zeros(3, 8, 8, 3, dtype=torch.uint8)}, str(file))
    with pytest.raises(ValueError, match="channels-last"):
        tensors(None, path=str(file))
    save_file({"train_images": torch.zeros(3, 1, 2, 2, dtype=torch.uint8), "train_labels": torch.zeros(2)}, str(file))
    with pytest.raises(ValueError, match=r"'train_labels' must be integer labels of shape \(3,\)"):
        tensors(None, path=str(file))
    with pytest.raises(FileNotFoundError, match="no file at .*missing.safetensors"):
        tensors(None, path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="needs the safetensors file"):
        tensors(None)


# ------------------------------------------------------------------------------ image-folder


def _png(path: Path, value: int, h: int = 6, w: int = 6, c: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L" if c == 1 else "RGB", (w, h), (value,) * c).save(path)


def test_image_folder_train_test_with_classes(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for cls, value in (("boot", 200), ("ant", 10)):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", value)
    data = image_folder(None, path=str(tmp_path))
    assert data.classes == ["ant", "boot"]  # sorted subfolder names
    assert data.train_images.shape == (6, 1, 6, 6) and data.test_images.shape == (2, 1, 6, 6)
    # Labels follow the class folders: ants are 10-valued, boots 200-valued.
    values = data.train_images[:, 0, 0, 0]
    assert torch.equal(values, torch.where(data.train_labels == 0, 10, 200).to(torch.uint8))
    assert data.test_labels.tolist() == [0, 1]


def test_image_folder_flat_hold_out_rgb_resize_and_jpeg(tmp_path):
    for i in range(9):
        _png(tmp_path / f"{i:02d}.png", 20 * i, h=8, w=4, c=3)
    Image.new("RGB", (4, 8), (128, 128, 128)).save(tmp_path / "z.jpg", quality=100)
    data = image_folder(str(tmp_path), channels=3, size=[4, 2], test_fraction=0.2)
    assert data.train_images.shape == (8, 3, 4, 2) and data.test_images.shape == (2, 3, 4, 2)
    assert data.train_labels is None and data.classes == []
    rest = torch.cat([data.train_images, data.test_images])[:, 0, 0, 0].tolist()
    for value in range(0, 180, 20):
        rest.remove(value)  # PNG is lossless and resizing a flat image keeps it flat: exact values
    assert len(rest) == 1 and abs(rest[0] - 128) <= 2  # the JPEG, lossy
    gray = image_folder(str(tmp_path), channels=1, size=5)
    assert gray.train_images.shape[1:] == (1, 5, 5)


def test_image_folder_errors(tmp_path):
    _png(tmp_path / "mixed" / "a.png", 1, h=6)
    _png(tmp_path / "mixed" / "b.png", 1, h=7)
    with pytest.raises(ValueError, match=r"images differ in size: set data.dataset.size"):
        image_folder(None, path=str(tmp_path / "mixed"))
    assert image_folder(None, path=str(tmp_path / "mixed"), size=6, test_fraction=0.5).train_images.shape == (1, 1, 6, 6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no png/jpg/jpeg images in .*empty"):
        image_folder(None, path=str(tmp_path / "empty"))
    _png(tmp_path / "both" / "loose.png", 1)
    _png(tmp_path / "both" / "cls" / "x.png", 1)
    with pytest.raises(ValueError, match="both images .* and subfolders"):
        image_folder(None, path=str(tmp_path / "both"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    (tmp_path / "broken" / "y.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image .*x\.png"):
        image_folder(None, path=str(tmp_path / "broken"))
    with pytest.raises(FileNotFoundError, match="no folder at"):
        image_folder(None, path=str(tmp_path / "nope"))


# ------------------------------------------------------------------------------ configs


def test_yaml_data_configs_validate_and_build(tmp_path, isolated):
    write_tiny_idx_set(tmp_path / "mnist-files", marker=9)
    tensors_file = _id_tensors(tmp_path)
    for cls in ("a", "b"):
        for i in range(4):
            _png(tmp_path / "imgs" / cls / f"{i}.png", 50, h=5, w=5)
    cases = {
        f"dataset: mnist\nroot: {tmp_path / 'mnist-files'}\nval_size: 2\n": (4, 2, 2),
        f"dataset: {{name: tensors, path: {tensors_file}}}\nbinarize: dynamic\nval_size: 5\n": (35, 5, 10),
        f"dataset: {{name: image-folder, size: [3, 3], channels: 3, test_fraction: 0.25}}\n"
        f"root: {tmp_path / 'imgs'}\nval_size: 1\n": (5, 1, 2),
    }
    for text, sizes in cases.items():
        config = DataConfig.model_validate(yaml.safe_load(text))
        s = load_splits(config)
        assert (s.train.shape[0], s.val.shape[0], s.test.shape[0]) == sizes, text
    assert s.shape == (3, 3, 3) and s.classes == ["a", "b"]
    with pytest.raises(Exception, match="sise"):  # a typo in a dataset parameter is caught
        DataConfig.model_validate(yaml.safe_load("dataset: {name: image-folder, sise: 28}"))
    with pytest.raises(Exception, match="Input should be 1 or 3"):
        DataConfig.model_validate(yaml.safe_load("dataset: {name: image-folder, channels: 2}"))


def test_yaml_fashion_mnist_config_builds(fashion_mnist_dir):
    config = DataConfig.model_validate(yaml.safe_load("dataset: fashion-mnist\nval_size: 1000\n"))
    s = load_splits(config)
    assert (s.train.shape[0], s.val.shape[0], s.test.shape[0]) == (59000, 1000, 10000)
    assert s.source == str(fashion_mnist_dir)
