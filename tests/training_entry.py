"""``python tests/training_entry.py train ...``: the vaezoo CLI with the tiny test parts registered.

Run by the subprocess and torchrun tests. With ``VAEZOO_TEST_HANG_AT_STEP=N`` it prints
``CHECKPOINTED N`` on stdout once the checkpoint of step N is on disk and then sleeps, so that
the test can SIGKILL it at a known point in the middle of an epoch. With
``VAEZOO_TEST_SIGTERM_AT_STEP=N`` it sends itself SIGTERM during step N; with
``VAEZOO_TEST_SIGINT_AT_STEPS=N,M`` a Ctrl-C (SIGINT) during each of those steps.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _tiny_training  # noqa: E402

import vaezoo.training.setup as setup  # noqa: E402
from vaezoo.cli import main  # noqa: E402

_tiny_training.register()

hang_at = int(os.environ.get("VAEZOO_TEST_HANG_AT_STEP", "0"))
if hang_at:
    _save = setup.save_checkpoint

    def save_then_hang(run_dir, **kwargs):
        path = _save(run_dir, **kwargs)
        if kwargs["state"]["progress"]["global_step"] == hang_at:
            print(f"CHECKPOINTED {hang_at}", flush=True)
            time.sleep(600)  # the test kills us here
        return path

    setup.save_checkpoint = save_then_hang

signals_at = {int(os.environ.get("VAEZOO_TEST_SIGTERM_AT_STEP", "0")): "SIGTERM"}
signals_at.update({int(step): "SIGINT" for step in os.environ.get("VAEZOO_TEST_SIGINT_AT_STEPS", "").split(",") if step})
signals_at.pop(0, None)
if signals_at:
    import signal

    import vaezoo.training.loop as loop

    _step, _calls = loop.train_step, [0]

    def step_then_signal(*args, **kwargs):
        _calls[0] += 1
        if _calls[0] in signals_at:  # as a scheduler's pre-emption notice, or a user's Ctrl-C, would
            os.kill(os.getpid(), getattr(signal, signals_at[_calls[0]]))
        return _step(*args, **kwargs)

    loop.train_step = step_then_signal

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
