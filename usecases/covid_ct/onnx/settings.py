"""Settings of covid_ct's ONNX steps (``usecase.export``) and how to rebuild the TV-UNet.

The defaults live in one place, ``conf/usecase/covid_ct.yaml``; ``usecase_defaults`` reads
that file for code that runs outside a Hydra run (tests, benchmarks).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from usecases import paths
from usecases.covid_ct.onnx.runtime import MIN_OPSET
from usecases.errors import ConfigError
from usecases.numbers import is_whole


@functools.cache
def usecase_defaults() -> dict:
    """``conf/usecase/covid_ct.yaml`` as a dict (train, evaluate, timing, export ...)."""
    path = paths.require(paths.conf_dir() / "usecase" / "covid_ct.yaml", what="covid_ct's config")
    return yaml.safe_load(path.read_text())


@dataclass(frozen=True)
class OnnxSettings:
    """``usecase.export`` of the config: on/off, opset and the parity tolerances.

    ``tolerance`` bounds max |p_onnx - p_keras| of the float32 probabilities (absolute);
    ``dice_tolerance`` bounds |Dice_onnx - Dice_keras| per threshold (5e-4: equal to 3
    decimals); ``timeout_s`` limits the fresh export process of a JAX run (seconds).
    ``int8`` adds a statically quantized copy (check ``onnx_int8_dice``: its pooled Dice may
    drop at most ``int8_dice_drop`` below Keras's at the threshold ``int8_dice_at``),
    calibrated on ``calibration_images`` validation slices spread evenly over the set.
    """

    onnx: bool
    opset: int
    tolerance: float
    dice_tolerance: float
    timeout_s: int
    int8: bool
    int8_dice_drop: float
    int8_dice_at: float
    calibration_images: int

    @classmethod
    def from_config(cls, export: Mapping | None) -> OnnxSettings:
        """Settings from ``usecase.export``; absent keys (or None) take the defaults of
        conf/usecase/covid_ct.yaml; ConfigError for a bad value or an unknown key."""
        values = {**usecase_defaults()["export"], **dict(export or {})}
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"usecase.export has unknown key(s) {', '.join(unknown)}; known: "
                f"{', '.join(cls.__dataclass_fields__)}."
            )
        settings = cls(**values)
        for key in ("onnx", "int8"):
            if not isinstance(getattr(settings, key), bool):
                raise ConfigError(
                    f"usecase.export.{key}={getattr(settings, key)} must be true or false."
                )
        for key, low in (("opset", MIN_OPSET), ("calibration_images", 1)):
            value = getattr(settings, key)
            if not is_whole(value, least=low):
                raise ConfigError(f"usecase.export.{key}={value} must be an integer >= {low}.")
        for key in (
            "tolerance",
            "dice_tolerance",
            "timeout_s",
            "int8_dice_drop",
            "int8_dice_at",
        ):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"usecase.export.{key}={value} must be a positive number.")
        return settings


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild the TV-UNet in a fresh process: width n, dropout, slice size (pixels)."""

    n_filters: int
    dropout: float = 0.2
    size: int = 128
