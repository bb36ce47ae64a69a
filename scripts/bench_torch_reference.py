"""PyTorch reference for scripts/bench_step.py: the same networks, step and conv layers.

torch is the optional `[bench]` extra, not a dependency of jaxvssl:
`.venv/bin/pip install torch==2.13.0` (a CPU wheel; an unpinned torch pulls multi-GB CUDA builds). Runs with
`torch.set_num_threads(2)`, `OMP_WAIT_POLICY=PASSIVE` (unless set; see below), NCDHW tensors
(PyTorch's default layout), float32.

Parts (same names and JSON layout as scripts/bench_step.py, so its `--with-torch` driver can
compare them):
  step    one MoCo training step of the tiny config (configs/moco.py:tiny, read from its
          values below): R3D-10 at 1/8 width on residual input (frame differences of 8x32x32
          clips), batch 32 query + 32 key clips; the query encoder (backbone + 64->128->128 MLP
          head) forward+backward, the momentum (key) encoder forward without gradients in
          train-mode BatchNorm, InfoNCE against a 1024-key queue (tau 0.1), SGD (momentum 0.9,
          weight decay 1e-4 on kernels only), the EMA update of the key encoder (0.99) and the
          queue push.
  layers  forward and forward+backward of every distinct Conv3d of the tiny backbone (found
          with forward hooks); the first layer differentiates the kernel only, as in training.
  large   torchvision-layout R3D-18 and R(2+1)D-18 forward+backward at batch 8 x 16x112x112.

Usage:
  .venv/bin/python scripts/bench_torch_reference.py --parts=step,layers
  .venv/bin/python scripts/bench_torch_reference.py --parts=large --large_repeats 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Callable


# Idle OpenMP threads sleep instead of spinning. On a loaded machine (other processes on the
# same 2 cores) torch's default spinning made the tiny step 2.5 s instead of 0.19 s (measured
# with torch 2.13.0, load average ~4): every parallel region waited for a descheduled thread.
# Passive waiting is within noise of the default on an idle machine. Override by setting it.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

try:
  import torch
  from torch import nn
  import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - optional extra
  raise SystemExit(
    'scripts/bench_torch_reference.py needs torch: .venv/bin/pip install torch==2.13.0'
  ) from e

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import LARGE, PARTS, fmt, layer_key, print_layers, time_calls  # noqa: E402

STAGE_WIDTHS = (64, 128, 256, 512)
# configs/moco.py:tiny (configs/common.py cpu_tiny + the moco section).
TINY = dict(
  batch=32,
  frames=8,
  crop=32,
  width=0.125,
  stage_sizes=(1, 1, 1, 1),
  embed=128,
  hidden=128,
  queue=1024,
  tau=0.1,
  ema=0.99,
  lr=0.1,
  momentum=0.9,
  weight_decay=1e-4,
)


def scaled(c: int, m: float) -> int:
  return max(1, int(round(c * m)))


def conv_bn(cin: int, cout: int, k, s, relu: bool = True) -> nn.Sequential:
  pad = tuple(x // 2 for x in k)
  layers = [
    nn.Conv3d(cin, cout, k, s, pad, bias=False),
    nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1),
  ]
  if relu:
    layers.append(nn.ReLU(inplace=True))
  return nn.Sequential(*layers)


class Block(nn.Module):
  """torchvision BasicBlock (3x3x3 or (2+1)D), the same layout as jaxvssl BasicBlock3D."""

  def __init__(self, cin: int, cout: int, stride: int, conv_type: str):
    super().__init__()
    mid = (cin * cout * 27) // (cin * 9 + 3 * cout)

    def unit(ci, co, s, relu):
      if conv_type == '3d':
        return conv_bn(ci, co, (3, 3, 3), (s,) * 3, relu)
      return nn.Sequential(
        conv_bn(ci, mid, (1, 3, 3), (1, s, s), True), conv_bn(mid, co, (3, 1, 1), (s, 1, 1), relu)
      )

    self.conv1 = unit(cin, cout, stride, True)
    self.conv2 = unit(cout, cout, 1, False)
    self.down = (
      conv_bn(cin, cout, (1, 1, 1), (stride,) * 3, False)
      if stride != 1 or cin != cout
      else nn.Identity()
    )

  def forward(self, x):
    return F.relu(self.down(x) + self.conv2(self.conv1(x)))


class VideoResNet(nn.Module):
  """R3D / R(2+1)D (torchvision layout), `[B, C, T, H, W]` -> `[B, 512 * width]`."""

  def __init__(self, stage_sizes, conv_type: str = '3d', width: float = 1.0, residual=False):
    super().__init__()
    w = lambda c: scaled(c, width)
    self.residual = residual
    if conv_type == '3d':
      self.stem = conv_bn(3, w(64), (3, 7, 7), (1, 2, 2))
    else:
      self.stem = nn.Sequential(
        conv_bn(3, w(45), (1, 7, 7), (1, 2, 2)), conv_bn(w(45), w(64), (3, 1, 1), (1, 1, 1))
      )
    blocks, cin = [], w(64)
    for i, (n, c) in enumerate(zip(stage_sizes, STAGE_WIDTHS)):
      for j in range(n):
        blocks.append(Block(cin, w(c), 2 if (i > 0 and j == 0) else 1, conv_type))
        cin = w(c)
    self.blocks = nn.Sequential(*blocks)

  def forward(self, x):
    if self.residual:
      x = x[:, :, 1:] - x[:, :, :-1]
    return self.blocks(self.stem(x)).mean(dim=(2, 3, 4))


class EncoderWithHead(nn.Module):
  def __init__(self):
    super().__init__()
    t = TINY
    self.backbone = VideoResNet(t['stage_sizes'], '3d', t['width'], residual=True)
    feat = scaled(512, t['width'])
    self.head = nn.Sequential(
      nn.Linear(feat, t['hidden']), nn.ReLU(inplace=True), nn.Linear(t['hidden'], t['embed'])
    )

  def forward(self, x):
    return self.head(self.backbone(x))


def tiny_step_fn() -> Callable[[], None]:
  """The MoCo step of configs/moco.py:tiny (see the module docstring)."""
  t = TINY
  torch.manual_seed(0)
  query_enc = EncoderWithHead()
  key_enc = copy.deepcopy(query_enc)
  for p in key_enc.parameters():
    p.requires_grad_(False)
  decay = [p for p in query_enc.parameters() if p.ndim > 1]
  no_decay = [p for p in query_enc.parameters() if p.ndim <= 1]
  opt = torch.optim.SGD(
    [dict(params=decay, weight_decay=t['weight_decay']), dict(params=no_decay, weight_decay=0.0)],
    lr=t['lr'],
    momentum=t['momentum'],
  )
  queue = F.normalize(torch.randn(t['queue'], t['embed']), dim=1)
  shape = (t['batch'], 3, t['frames'], t['crop'], t['crop'])
  xq, xk = torch.randn(shape), torch.randn(shape)
  state = dict(ptr=0, queue=queue)

  def step():
    q = F.normalize(query_enc(xq), dim=1)
    with torch.no_grad():
      k = F.normalize(key_enc(xk), dim=1)
    pos = (q * k).sum(dim=1, keepdim=True)
    neg = q @ state['queue'].t()
    logits = torch.cat([pos, neg], dim=1) / t['tau']
    loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
      for pk, pq in zip(key_enc.parameters(), query_enc.parameters()):
        pk.mul_(t['ema']).add_(pq.detach(), alpha=1 - t['ema'])
      ptr = state['ptr']
      state['queue'][ptr : ptr + k.shape[0]] = k
      state['ptr'] = (ptr + k.shape[0]) % t['queue']
    loss.item()

  return step


def tiny_conv_layers() -> list[dict[str, Any]]:
  """Every Conv3d of the tiny backbone with its input shape (NTHWC, as bench_step records)."""
  t = TINY
  net = VideoResNet(t['stage_sizes'], '3d', t['width'], residual=True)
  layers, hooks = [], []
  for name, module in net.named_modules():
    if isinstance(module, nn.Conv3d):

      def hook(mod, inputs, _out, name=name):
        b, c, tt, h, w = inputs[0].shape
        layers.append(
          dict(
            name=name,
            x=[b, tt, h, w, c],
            kernel=list(mod.kernel_size) + [mod.in_channels // mod.groups, mod.out_channels],
            strides=list(mod.stride),
            padding=[[p, p] for p in mod.padding],
            groups=mod.groups,
            module=mod,
          )
        )

      hooks.append(module.register_forward_hook(hook))
  with torch.no_grad():
    net(torch.zeros(t['batch'], 3, t['frames'], t['crop'], t['crop']))
  for h in hooks:
    h.remove()
  for i, layer in enumerate(layers):
    layer['input_grad'] = i > 0
  return layers


def bench_layers(layers, warmup: int, repeats: int) -> list[dict[str, Any]]:
  results, seen = [], {}
  for layer in layers:
    key = layer_key(layer)
    if key in seen:
      seen[key]['count'] += 1
      seen[key]['names'].append(layer['name'])
      continue
    seen[key] = _time_layer(layer, warmup, repeats)
    results.append(seen[key])
  return results


def _time_layer(layer, warmup: int, repeats: int) -> dict[str, Any]:
  mod = copy.deepcopy(layer['module'])
  b, tt, h, w, c = layer['x']
  x = torch.randn(b, c, tt, h, w)
  with torch.no_grad():
    ct = torch.randn_like(mod(x))
  xg = x.clone().requires_grad_(layer['input_grad'])

  def fwd():
    with torch.no_grad():
      mod(x)

  def fwd_bwd():
    mod.zero_grad(set_to_none=True)
    if xg.grad is not None:
      xg.grad = None
    mod(xg).backward(ct)

  row = {k: v for k, v in layer.items() if k != 'module'}
  return dict(
    row,
    names=[layer['name']],
    count=1,
    impl='torch',
    fwd=time_calls(fwd, warmup, repeats),
    fwd_bwd=time_calls(fwd_bwd, warmup, repeats),
  )


def large_fn(name: str, batch: int) -> Callable[[], None]:
  conv_type = '3d' if name.startswith('r3d') else '2plus1d'
  net = VideoResNet((2, 2, 2, 2), conv_type, 1.0)
  x = torch.randn(batch, 3, 16, 112, 112)

  def fwd_bwd():
    net.zero_grad(set_to_none=True)
    net(x).square().mean().backward()

  return fwd_bwd


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument('--parts', default=','.join(PARTS))
  p.add_argument('--skip_large', action='store_true')
  p.add_argument(
    '--config',
    default='configs/moco.py:tiny',
    help='accepted for the driver; the tiny values are fixed in TINY',
  )
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--repeats', type=int, default=10)
  p.add_argument('--large_batch', type=int, default=8)
  p.add_argument('--large_repeats', type=int, default=2)
  p.add_argument('--threads', type=int, default=2)
  p.add_argument('--json', default='')
  args = p.parse_args(argv)
  parts = [x for x in args.parts.split(',') if x and not (args.skip_large and x == 'large')]
  torch.set_num_threads(args.threads)
  result: dict[str, Any] = dict(impl='torch', torch=torch.__version__, threads=args.threads)
  if 'step' in parts:
    step = tiny_step_fn()
    result['step'] = time_calls(step, args.warmup, args.repeats)
    print(f'step (torch {torch.__version__}): {fmt(result["step"])} ms', flush=True)
  if 'layers' in parts:
    result['layers'] = bench_layers(tiny_conv_layers(), args.warmup, args.repeats)
    print_layers({'torch': result['layers']})
  if 'large' in parts:
    result['large'] = {}
    for name in LARGE:
      result['large'][name] = time_calls(large_fn(name, args.large_batch), 1, args.large_repeats)
      print(f'{name} fwd+bwd batch {args.large_batch}x16x112x112: {fmt(result["large"][name])} ms')
  if args.json:
    with open(args.json, 'w') as fh:
      json.dump(result, fh)


if __name__ == '__main__':
  main()
