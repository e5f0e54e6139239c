import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FASHION_MNIST = REPO.parent / "shared" / "data" / "fashion-mnist"


def pytest_configure(config):
    # The test models are tiny: one thread avoids OpenMP's hand-offs, which cost more than the
    # work itself, and keeps subprocess tests (DDP, SIGKILL) from oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    # Tests read Fashion-MNIST from the shared folder beside the checkout unless told otherwise.
    if "VAEZOO_DATA" not in os.environ and SHARED_FASHION_MNIST.is_dir():
        os.environ["VAEZOO_DATA"] = str(SHARED_FASHION_MNIST)


@pytest.fixture
def fashion_mnist_dir() -> Path:
    path = Path(os.environ.get("VAEZOO_DATA", SHARED_FASHION_MNIST))
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"Fashion-MNIST is needed for this test; set VAEZOO_DATA (looked in {path})")
    return path
