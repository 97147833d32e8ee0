"""Which layer CAM methods hook: chosen automatically for known networks, or named by the user.

CAM methods (pytorch-grad-cam) read activations and gradients of one *target layer* through
forward hooks, so the layer must be a module that runs exactly once per forward pass.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from decam.errors import ConfigError
from decam.models.loaded import Normalized


@dataclass
class CamModel:
    """The pixel-space network CAM methods run (may be a view sharing the caller's weights) and its layer."""

    module: nn.Module
    layer: nn.Module | None
    layer_name: str


class _LiteHead(nn.Module):
    """EfficientNet-Lite's head ``conv → BN → ReLU6`` as one module with its own activation."""

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _LiteView(nn.Module):
    """EfficientNet-Lite with its head wrapped in :class:`_LiteHead`; same weights, same logits.

    The stem and the head of ``efficientnet_lite_pytorch`` share one ReLU6 instance, so a hook on it
    fires twice per forward; CAM methods need a head that is a module of its own.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.head = _LiteHead(net._conv_head, net._bn1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        rate = net._global_params.drop_connect_rate
        for idx, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=rate * idx / len(net._blocks) if rate else rate)
        x = net._avg_pooling(self.head(x)).flatten(1)
        return net._fc(net._dropout(x))


def _is_efficientnet_lite(net: nn.Module) -> bool:
    return all(hasattr(net, a) for a in ("_conv_stem", "_blocks", "_conv_head", "_bn1", "_swish", "_fc"))


def _lite_view(root: nn.Module) -> nn.Module | None:
    """A CAM-ready view of an EfficientNet-Lite root (bare or inside :class:`Normalized`), else None."""
    if _is_efficientnet_lite(root):
        return _LiteView(root)
    if isinstance(root, Normalized) and _is_efficientnet_lite(root.net):
        view = Normalized(_LiteView(root.net))
        view.mean, view.std = root.mean, root.std
        return view
    return None


@contextlib.contextmanager
def preserved_state(root: nn.Module) -> Iterator[None]:
    """Undo what explanation libraries do to a caller's network: ``eval()``, gradients, swapped children."""
    modes = {m: m.training for m in root.modules()}
    children = {m: dict(m._modules) for m in root.modules()}
    grads = {p: p.grad for p in root.parameters()}
    flags = {p: p.requires_grad for p in root.parameters()}
    try:
        yield
    finally:
        for m, children_of_m in children.items():
            m._modules.clear()
            m._modules.update(children_of_m)
        for m, mode in modes.items():
            m.training = mode
        for p, g in grads.items():
            p.grad = g
            p.requires_grad_(flags[p])


def _trace(root: nn.Module, input_size: tuple[int, int]) -> list[tuple[str, nn.Module, tuple, int]]:
    """Modules in the order their forward finished: (name, module, output shape, calls per forward)."""
    names = {m: n for n, m in root.named_modules(remove_duplicate=False)}
    finished: dict[nn.Module, list] = {}

    def hook(module, _inputs, output):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
        entry = finished.pop(module, [names[module], module, shape, 0])
        entry[3] += 1
        finished[module] = entry  # re-inserted: dict order = order of the last finish

    handles = [m.register_forward_hook(hook) for m in set(names)]
    try:
        device = module_device(root)
        with preserved_state(root), torch.no_grad():
            root.eval()
            root(torch.zeros(1, 3, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    return [tuple(e) for e in finished.values()]


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (or buffers) live; CPU for a module with neither."""
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def find_cam_model(root: nn.Module, input_size: tuple[int, int], target_layer: str | None = None) -> CamModel:
    """The network and target layer for CAM methods on ``root`` (a pixel-space ``nn.Module``).

    ``target_layer`` is a dotted module path in ``root`` (e.g. ``net.layer4``; the ``net.`` of a
    :class:`Normalized` wrapper may be left out). Without it: EfficientNet-Lite's head; otherwise the
    last module, in execution order, that contains a ``Conv2d``, runs once per forward and outputs a
    spatial map larger than 1×1 (``layer4`` of a ResNet, ``features`` of VGG or MobileNet).
    """
    if target_layer is None:
        view = _lite_view(root)
        if view is not None:
            head = view.net.head if isinstance(view, Normalized) else view.head
            return CamModel(view, head, "efficientnet head (conv_head → bn1 → ReLU6)")
    trace = _trace(root, input_size)
    if target_layer is not None:
        name = _resolve_name(root, target_layer)
        entry = next((e for e in trace if e[0] == name), None)
        if entry is None:
            raise ConfigError(f"target_layer={target_layer!r} does not run in the model's forward pass")
        if entry[3] != 1:
            raise ConfigError(f"target_layer={target_layer!r} runs {entry[3]} times per forward pass; "
                              "CAM methods need a module that runs once (wrap it or pick its parent)")
        if len(entry[2]) != 4:
            raise ConfigError(f"target_layer={target_layer!r} outputs shape {entry[2]}; CAM methods need (B, C, H, W)")
        return CamModel(root, entry[1], name)
    for name, module, shape, calls in reversed(trace):
        if calls == 1 and len(shape) == 4 and shape[2] * shape[3] > 1 and _has_conv(module):
            return CamModel(root, module, name)
    raise ConfigError("no convolutional feature map found for CAM methods; set target_layer=<dotted module path>")


def _resolve_name(root: nn.Module, path: str) -> str:
    names = [n for n, _ in root.named_modules() if n]
    for candidate in (path, f"net.{path}"):
        if candidate in names:
            return candidate
    close = difflib.get_close_matches(path, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"target_layer={path!r} is not a module of the model{hint}")
