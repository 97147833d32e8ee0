"""Fold what inference makes foldable into the convolutions, for the forward path every query takes.

- BatchNorm at inference is a per-channel affine map, so ``bn(conv(x))`` is one convolution with
  scaled weights and a bias (the output is unchanged up to rounding).
- A symmetric zero padding module before a convolution (TF-style "same" padding, as in
  EfficientNet-Lite) is the convolution's own ``padding`` (the output is unchanged exactly); the
  copy of every activation tensor the padding made disappears.

Both remove passes over large activations (docs/speed.md). Models that ``torch.fx`` cannot trace,
or that have nothing to fold, are returned unchanged; the original module stays untouched for the
gradient baselines, which hook its layers.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

_CONV_FUNCTIONS = (F.conv2d, torch.conv2d)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (in eval mode) with BatchNorm2d and symmetric zero padding folded into
    the convolutions next to them, or ``module`` itself when it is training, cannot be traced or
    has nothing to fold."""
    if module.training:
        return module
    try:
        gm = fx.symbolic_trace(copy.deepcopy(module))
    except Exception:  # data-dependent control flow, unsupported ops: keep the model as it is
        return module
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, nn.BatchNorm2d) or not bn.track_running_stats or len(node.args) != 1:
            continue
        conv = node.args[0]
        if not isinstance(conv, fx.Node) or len(conv.users) != 1:
            continue
        if _fold_into(gm, modules, conv, bn, folded):
            node.replace_all_uses_with(conv)
            gm.graph.erase_node(node)
            folded += 1
    folded += _fold_padding(gm, modules)
    if not folded:
        return module
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.eval()


def _fold_into(gm: fx.GraphModule, modules: dict, conv: fx.Node, bn: nn.BatchNorm2d, index: int) -> bool:
    """Rewrite ``conv`` to include ``bn``; False (nothing changed) when it is not a plain conv."""
    if conv.op == "call_module" and type(modules[conv.target]) is nn.Conv2d:
        fused = fuse_conv_bn_eval(modules[conv.target], bn)
        parent, _, name = conv.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, name, fused)
        return True
    if conv.op != "call_function" or conv.target not in _CONV_FUNCTIONS:
        return False
    args = list(conv.args) + [None] * (3 - len(conv.args))
    weight, bias = args[1], args[2]
    params = [weight] + ([bias] if bias is not None else [])
    if conv.kwargs.keys() - {"stride", "padding", "dilation", "groups"} or not all(
            isinstance(p, fx.Node) and p.op == "get_attr" for p in params):
        return False
    try:
        w = gm.get_parameter(weight.target)
        b = gm.get_parameter(bias.target) if bias is not None else None
    except AttributeError:  # a buffer or computed tensor, not a parameter: leave it
        return False
    new_w, new_b = fuse_conv_bn_weights(w, b, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    gm.register_parameter(f"_folded{index}_weight", new_w)
    gm.register_parameter(f"_folded{index}_bias", new_b)
    with gm.graph.inserting_before(conv):
        args[1] = gm.graph.get_attr(f"_folded{index}_weight")
        args[2] = gm.graph.get_attr(f"_folded{index}_bias")
    conv.args = tuple(args)
    return True


def _fold_padding(gm: fx.GraphModule, modules: dict) -> int:
    """Give each convolution the symmetric zero padding a module applies just before it; the number folded."""
    folded = 0
    for node in list(gm.graph.nodes):
        pad = modules.get(node.target) if node.op == "call_module" else None
        if type(pad) not in (nn.ZeroPad2d, nn.ConstantPad2d) or getattr(pad, "value", 0.0) != 0.0:
            continue
        left, right, top, bottom = pad.padding
        if left != right or top != bottom or len(node.users) != 1:
            continue
        conv = next(iter(node.users))
        if conv.args[0] is not node or not _set_padding(gm, modules, conv, (top, left)):
            continue
        conv.replace_input_with(node, node.args[0])
        gm.graph.erase_node(node)
        folded += 1
    return folded


def _set_padding(gm: fx.GraphModule, modules: dict, conv: fx.Node, padding: tuple[int, int]) -> bool:
    """Make an unpadded ``conv`` pad by ``padding`` itself; False (nothing changed) for anything else."""
    if conv.op == "call_module":
        mod = modules.get(conv.target)
        if type(mod) is not nn.Conv2d or tuple(mod.padding) != (0, 0) or mod.padding_mode != "zeros":
            return False
        mod.padding = padding
        mod._reversed_padding_repeated_twice = [padding[1], padding[1], padding[0], padding[0]]
        return True
    if conv.op != "call_function" or conv.target not in _CONV_FUNCTIONS or "padding" in conv.kwargs:
        return False
    args = list(conv.args)  # conv2d(input, weight, bias, stride, padding, dilation, groups)
    if len(args) > 4:
        if args[4] not in (0, (0, 0), [0, 0]):
            return False
        args[4] = padding
        conv.args = tuple(args)
    else:
        conv.kwargs = {**conv.kwargs, "padding": padding}
    return True
