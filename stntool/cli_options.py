"""Option bundles shared by commands (plain decorators, sqlite-utils style). No heavy imports here."""

from __future__ import annotations

import math
import re

import click


def _compose(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def parse_numbers(text: str, what: str, counts=None) -> list:
    """Comma/space separated finite floats; raises click.BadParameter with a precise message."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    values = []
    for i, p in enumerate(parts, 1):
        try:
            v = float(p)
        except ValueError:
            raise click.BadParameter(f"{what}: value {i} ({p!r}) is not a number") from None
        if math.isnan(v):
            raise click.BadParameter(f"{what}: value {i} is NaN")
        if math.isinf(v):
            raise click.BadParameter(f"{what}: value {i} ({p!r}) is infinite or overflows")
        values.append(v)
    if counts is not None and len(values) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise click.BadParameter(f"{what}: expected {want} numbers, got {len(values)}")
    return values


def _size(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= 1 << 16 and 1 <= h <= 1 << 16):
        raise click.BadParameter(f"width and height must be between 1 and 65536, got {w}x{h}")
    return h, w  # (H, W), stntool's order


def _fill(ctx, param, value):
    if value is None:
        return None
    v = value.strip().lower()
    if re.fullmatch(r"#?[0-9a-f]{6}([0-9a-f]{2})?", v) and (v.startswith("#") or not v.isdigit()):
        h = v.lstrip("#")
        rgb = [int(h[i:i + 2], 16) for i in range(0, len(h), 2)]
        return ("hex", rgb)  # RGB(A) in 0-255, converted per image
    return ("values", parse_numbers(value, "--fill"))


def _jobs(ctx, param, value):
    if value < 1:
        raise click.BadParameter("must be at least 1")
    return value


sampling_options = _compose(
    click.option("--mode", type=click.Choice(["bilinear", "nearest", "bicubic"]), default="bilinear",
                 show_default=True, help="Interpolation."),
    click.option("--padding", type=click.Choice(["zeros", "border", "reflection", "constant"]), default="zeros",
                 show_default=True, help="Values for samples outside the input."),
    click.option("--fill", "fill", metavar="COLOR", callback=_fill,
                 help="With --padding constant: '#RRGGBB[AA]' (8-bit scale) or numbers in the image's own "
                      "channel order and range, e.g. 255 or 0,0,255."),
    click.option("--align-corners", is_flag=True, help="PyTorch align_corners=True (corner pixel centres at ±1)."),
    click.option("--size", "out_hw", metavar="WxH", callback=_size, help="Output size (default: input size)."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                 help="Where to sample; asking for cuda without a GPU is an error."),
    click.option("-j", "--jobs", type=int, default=2, show_default=True, callback=_jobs,
                 help="Images processed concurrently (threads)."),
)
