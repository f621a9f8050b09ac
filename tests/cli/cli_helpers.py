import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from stntool.cli import cli

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "samples")
SHIFT = "1,0,0.5,0,1,0"  # samples x + 0.5 (normalized): shifts content left by a quarter width


def encode(img, ext, params=()):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def small_rgb(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def cli_run():
    """``cli_run(command, *args)``: any stntool command, in-process, exceptions raised."""
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def run(cli_run):
    """``run(*args)``: ``stntool warp`` with ``args``."""
    return lambda *args, input=None: cli_run("warp", *args, input=input)


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path
