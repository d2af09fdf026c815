#!/usr/bin/env python3
"""Golden reference data from PyTorch for dyad's tests, and the reverse check of a dyad checkpoint.

Development-time only: neither the build nor the tests run Python. The files it writes are committed.

  make_golden.py generate [--out tests/golden]
      Writes safetensors files into tests/golden/ (see the docstring of each writer). Every file is
      regenerated; the existing ones come out identical.
  make_golden.py check CHECKPOINT INPUTS
      Loads a checkpoint saved by dyad's tests "a dyad checkpoint gives PyTorch the same logits" (baseline
      CNN) or "a dyad resnet18_small checkpoint gives torchvision the same logits" into the equivalent
      PyTorch model (the second needs torchvision), runs it on the input stored in INPUTS and compares with the logits dyad
      computed (also in INPUTS). Exit status 0 when they agree.

Every reference is computed in float64 from float32 starting values (weights, inputs), then stored as
float32: dyad's float64 run can then be compared to the rounding of float32, its float32 run to the
accumulated float32 error.
"""
import argparse
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from torch_models import BasicBlock, baseline_cnn


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def state(prefix, module):
    return {prefix + k: (f32(v) if v.is_floating_point() else v.to(torch.int32)) for k, v in module.state_dict().items()}


def randomise(module, gen):
    """Random float32-representable weights; BN affine parameters away from 1/0 so they matter."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:  # batch-norm gamma
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (2.0 / fan_in) ** 0.5)
            p.copy_(p.to(torch.float32).to(torch.float64))


def gen_baseline(out):
    """baseline_cnn(10 classes, 3 channels, 8x8 images), batch 4: weights, input, labels, logits, loss,
    every parameter gradient, then 3 SGD steps (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4) on the
    same batch: the loss before each step and the weights after the third."""
    gen = torch.Generator().manual_seed(1)
    model = baseline_cnn(10, 3, 8).double()
    randomise(model, gen)
    x = torch.randn(4, 3, 8, 8, generator=gen).to(torch.float64)
    labels = torch.tensor([3, 0, 9, 3], dtype=torch.int64)
    tensors = {"input": f32(x), "labels": labels.to(torch.int32)}
    tensors.update(state("param.", model))
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    tensors["logits"] = f32(logits)
    tensors["loss"] = f32(loss)
    for name, p in model.named_parameters():
        tensors["grad." + name] = f32(p.grad)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    losses = []
    model.zero_grad()
    for _ in range(3):
        opt.zero_grad()
        step_loss = nn.functional.cross_entropy(model(x), labels)
        losses.append(step_loss.item())
        step_loss.backward()
        opt.step()
    tensors["sgd.losses"] = torch.tensor(losses, dtype=torch.float32)
    tensors.update(state("after3.", model))
    save_file(tensors, f"{out}/baseline_cnn.safetensors",
              {"lr": "0.05", "momentum": "0.9", "weight_decay": "5e-4", "nesterov": "true", "steps": "3"})


def gen_block(out):
    """A BasicBlock(4 -> 8, stride 2) with downsample, in training mode, input (3, 4, 9, 9): output,
    the gradient of sum(output * upstream) for the input and every parameter, the running statistics after
    the forward, and the eval-mode output with those statistics."""
    gen = torch.Generator().manual_seed(2)
    block = BasicBlock(4, 8, 2).double()
    randomise(block, gen)
    x = (torch.randn(3, 4, 9, 9, generator=gen, dtype=torch.float64) * 1.5 + 0.3).to(torch.float32).double()
    x.requires_grad_(True)
    tensors = {"input": f32(x)}
    tensors.update(state("param.", block))
    block.train()
    y = block(x)
    upstream = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(torch.float32).double()
    (y * upstream).sum().backward()
    tensors["output"] = f32(y)
    tensors["upstream"] = f32(upstream)
    tensors["grad.input"] = f32(x.grad)
    for name, p in block.named_parameters():
        tensors["grad." + name] = f32(p.grad)
    tensors.update(state("after.", block))  # running statistics updated by the training forward
    block.eval()
    with torch.no_grad():
        tensors["eval_output"] = f32(block(x))
    save_file(tensors, f"{out}/basic_block.safetensors", {"momentum": "0.1", "eps": "1e-5"})


def gen_cross_entropy(out):
    """cross_entropy on logits (7, 11) with spread-out values, with and without label smoothing 0.1: the
    loss and the gradient of the logits."""
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(7, 11, generator=gen, dtype=torch.float64) * 4.0).to(torch.float32).double()
    labels = torch.tensor([0, 10, 5, 5, 2, 7, 1], dtype=torch.int64)
    tensors = {"logits": f32(logits), "labels": labels.to(torch.int32)}
    for tag, eps in (("plain", 0.0), ("smooth", 0.1)):
        z = logits.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(z, labels, label_smoothing=eps)
        loss.backward()
        tensors[f"{tag}.loss"] = f32(loss)
        tensors[f"{tag}.grad"] = f32(z.grad)
    save_file(tensors, f"{out}/cross_entropy.safetensors", {"label_smoothing": "0.1"})


def gen_optim(out):
    """torch.optim.Adam and AdamW over 5 steps on three parameters a (5, 3), b (4), c (2, 2) from float32
    starting values and float32 gradients (stored as "grad<k>.<name>"); c has a gradient only at steps 0, 2
    and 4, so its own step count (bias correction) lags behind. For each configuration (its options in the
    metadata as "<config>.<option>"), the parameters after every step: "<config>.step<k>.<name>". Plus
    clip_grad_norm_ of the step-0 gradients (max_norm 0.5, norm types 2 and inf): the total norm and the
    clipped gradients ("clip.<type>.total", "clip.<type>.<name>")."""
    gen = torch.Generator().manual_seed(5)
    shapes = {"a": (5, 3), "b": (4,), "c": (2, 2)}

    def rnd(shape, scale=1.0):
        return (scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(torch.float32).to(torch.float64)

    start = {n: rnd(s) for n, s in shapes.items()}
    steps = 5
    grads = [{n: rnd(s, 0.5 + k) for n, s in shapes.items()} for k in range(steps)]
    tensors = {f"start.{n}": f32(v) for n, v in start.items()}
    for k in range(steps):
        tensors.update({f"grad{k}.{n}": f32(v) for n, v in grads[k].items()})
    configs = {
        "adam": (torch.optim.Adam, dict(lr=0.01)),
        "adam_l2": (torch.optim.Adam, dict(lr=0.02, weight_decay=0.1)),
        "adamw": (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
        "adamw_amsgrad": (torch.optim.AdamW, dict(lr=0.03, betas=(0.8, 0.99), weight_decay=0.05, amsgrad=True)),
        "adam_low_beta": (torch.optim.Adam, dict(lr=0.05, betas=(0.3, 0.9), eps=1e-3)),
    }
    meta = {"steps": str(steps)}
    for cfg, (cls, opts) in configs.items():
        params = {n: v.clone().requires_grad_() for n, v in start.items()}
        opt = cls([params["a"], params["b"], params["c"]], foreach=False, **opts)
        for k in range(steps):
            for n, p in params.items():
                p.grad = None if (n == "c" and k % 2 == 1) else grads[k][n].clone()
            opt.step()
            tensors.update({f"{cfg}.step{k}.{n}": f32(p) for n, p in params.items()})
        full = dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False)
        if cls is torch.optim.AdamW:
            full["weight_decay"] = 0.01
        full.update(opts)
        meta.update({f"{cfg}.type": cls.__name__, f"{cfg}.lr": repr(full["lr"]), f"{cfg}.beta1": repr(full["betas"][0]),
                     f"{cfg}.beta2": repr(full["betas"][1]), f"{cfg}.eps": repr(full["eps"]),
                     f"{cfg}.weight_decay": repr(full["weight_decay"]), f"{cfg}.amsgrad": str(full["amsgrad"]).lower()})
    for kind, norm_type in (("l2", 2.0), ("inf", float("inf"))):
        params = {n: v.clone().requires_grad_() for n, v in start.items()}
        for n, p in params.items():
            p.grad = grads[0][n].clone()
        total = torch.nn.utils.clip_grad_norm_(list(params.values()), 0.5, norm_type=norm_type)
        tensors[f"clip.{kind}.total"] = f32(total.reshape(1))
        tensors.update({f"clip.{kind}.{n}": f32(p.grad) for n, p in params.items()})
    save_file(tensors, f"{out}/optim.safetensors", meta)


def resnet18_small(num_classes, in_channels):
    """torchvision's resnet18 with a 3x3 stride-1 stem and no max-pool, as dyad's models::resnet18_small."""
    import torchvision
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


def check(checkpoint, inputs):
    ckpt = load_file(checkpoint)
    data = load_file(inputs)
    x = data["input"]
    kind, classes, channels, size = (int(v) for v in data["config"].tolist())
    model = baseline_cnn(classes, channels, size) if kind == 0 else resnet18_small(classes, channels)
    model_state = {k: v for k, v in ckpt.items() if not k.startswith("optimizer.")}
    model.load_state_dict(model_state, strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    err = (logits - data["logits"]).abs().max().item()
    scale = logits.abs().max().item()
    ok = err <= 1e-4 * max(1.0, scale)
    print(f"{type(model).__name__}: {len(model_state)} tensors loaded; logits {tuple(logits.shape)}; "
          f"max |torch - dyad| = {err:.3g} (max |logit| {scale:.3g}): {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", default="tests/golden")
    c = sub.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("inputs")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    if args.cmd == "generate":
        gen_baseline(args.out)
        gen_block(args.out)
        gen_cross_entropy(args.out)
        gen_optim(args.out)
        return 0
    return check(args.checkpoint, args.inputs)


if __name__ == "__main__":
    sys.exit(main())
