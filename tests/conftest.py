import os

import pytest


def pytest_configure(config):
    # The test models are tiny: one thread avoids OpenMP's hand-offs, which cost more than the
    # work itself, and keeps subprocess tests (DDP, SIGKILL) from oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """The real Fashion-MNIST, found as the product finds it ($VAEZOO_DATA, the Debian package, the
    cache that `vaezoo data fashion-mnist` fills); a test without it fails with the product's message."""
    from vaezoo.data import DataNotFoundError
    from vaezoo.data.datasets import locate_idx

    try:
        return locate_idx("fashion-mnist").files["train-images-idx3-ubyte"].parent
    except DataNotFoundError as exc:
        pytest.fail(f"this test needs the real Fashion-MNIST (run `vaezoo data fashion-mnist` first):\n{exc}",
                    pytrace=False)


def pytest_addoption(parser):
    parser.addoption("--browser", action="store_true",
                     help="run the browser tests too (headless Chromium and ChromeDriver from Debian: "
                          "apt-get install chromium chromium-driver); .ci/run runs them")


def pytest_collection_modifyitems(config, items):
    # A test that needs the real data says so through its fixture; the marker lets
    # `pytest -m "not realdata"` run everything else on a machine without the data.
    for item in items:
        if "fashion_mnist_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
    # The browser tests need a browser that a fresh machine lacks: they run with --browser (CI's second step)
    if not config.getoption("--browser"):
        browser = [item for item in items if item.get_closest_marker("browser")]
        if browser:
            config.hook.pytest_deselected(items=browser)
            items[:] = [item for item in items if not item.get_closest_marker("browser")]
