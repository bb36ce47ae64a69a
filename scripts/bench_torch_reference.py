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

`--paper`: the PyTorch side of scripts/bench_step.py's accelerator benchmark, same rows and JSON
fields: C3D, R3D-18, R(2+1)D-18 at 16x112x112 and CACL's transformer (768-d, 6 layers, 6 heads,
pre-norm, on 32 x 2048 features) forward+backward in train mode, and the MoCo R3D-18 train step of
configs/moco.py:r3d18 (batch 64, queue 65,536, 2048-d hidden head, tau 0.07), in float32 and
bf16 (`torch.autocast`, AMP: parameters and optimizer in float32), channels-last 3D
(`torch.channels_last_3d`) for the conv nets, `--compile` for `torch.compile`.
S3D-G and MViT-B (torchvision's `s3d`, `mvit_v1_b`; paper size only) run when torchvision is
installed; the other methods' steps have no PyTorch reference here; such rows say `skipped` with
the reason. FLOPs from `torch.utils.flop_counter`,
MFU against bench_step's `PEAK_FLOPS`, peak memory from `torch.cuda.max_memory_allocated` (GPU
only). `--tiny` shrinks every network (seconds on a CPU: the smoke test).

Usage:
  .venv/bin/python scripts/bench_torch_reference.py --paper --tiny
  .venv/bin/python scripts/bench_torch_reference.py --paper --compile --json torch.json
  .venv/bin/python scripts/bench_torch_reference.py --parts=step,layers
  .venv/bin/python scripts/bench_torch_reference.py --parts=large --large_repeats 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
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
from bench_step import (  # noqa: E402
  LARGE,
  PAPER_BACKBONES,
  PARTS,
  fmt,
  format_paper_row,
  layer_key,
  paper_row,
  print_layers,
  time_calls,
)

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


# ------------------------------------------------------------------------------------------------
# The accelerator benchmark (`--paper`).

# configs/moco.py:r3d18 (the paper MoCo step).
PAPER_MOCO = dict(
  batch=64,
  frames=16,
  crop=112,
  width=1.0,
  stage_sizes=(2, 2, 2, 2),
  embed=128,
  hidden=2048,
  queue=65_536,
  tau=0.07,
  ema=0.999,
  lr=0.01,
  momentum=0.9,
  weight_decay=5e-4,
)
# S3D-G and MViT-B come from torchvision when it is installed (paper size only: they have no
# width option for --tiny); otherwise these rows are skipped with this reason.
TORCHVISION_BACKBONES = ('s3d', 'mvit_b_scvrl')
SKIPPED = {
  's3d': 'no hand-written S3D-G in the PyTorch reference and torchvision is not installed',
  'mvit_b_scvrl': 'no MViT-B in the PyTorch reference and torchvision is not installed',
}


def _torchvision_backbone(name: str) -> nn.Module | None:
  """torchvision's S3D (features + mean pool) or MViT-B (head removed), None without torchvision.

  torchvision's `mvit_v1_b` embeds 3 x 7 x 7 cubes; SCVRL's kt=2 variant (jaxvssl
  `mvit_b_scvrl`) embeds 2 x 7 x 7 cubes at temporal stride 2 like it, so the two differ only in
  that first layer's kernel (1.5x its FLOPs, a small share of the whole network).
  """
  try:
    from torchvision.models import video  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  if name == 's3d':
    features = video.s3d(weights=None).features
    return nn.Sequential(features, nn.AdaptiveAvgPool3d(1), nn.Flatten())
  net = video.mvit_v1_b(weights=None)
  net.head = nn.Identity()
  return net


PAPER_METHODS_TORCH = ('moco',)


class C3D(nn.Module):
  """C3D with BN (jaxvssl/models/c3d.py layout): 8 convs 3x3x3, 5 max-pools, mean pool."""

  LAYOUT = (((64,), (1, 2, 2), (0, 0, 0)), ((128,), (2, 2, 2), (0, 0, 0)))
  LAYOUT += (((256, 256), (2, 2, 2), (0, 0, 0)), ((512, 512), (2, 2, 2), (0, 0, 0)))
  LAYOUT += (((512, 512), (2, 2, 2), (0, 1, 1)),)

  def __init__(self, width: float = 1.0):
    super().__init__()
    layers, cin = [], 3
    for widths, window, pad in self.LAYOUT:
      for c in widths:
        layers.append(conv_bn(cin, scaled(c, width), (3, 3, 3), (1, 1, 1)))
        cin = scaled(c, width)
      layers.append(nn.MaxPool3d(window, window, pad, ceil_mode=False))
    self.net = nn.Sequential(*layers)

  def forward(self, x):
    return self.net(x).mean(dim=(2, 3, 4))


class CACLTransformer(nn.Module):
  """Linear 2048 -> d, CLS token, learned positions, pre-norm encoder, final LN, CLS out."""

  def __init__(self, features: int, tokens: int, d: int = 768, layers: int = 6, heads: int = 6):
    super().__init__()
    self.embed = nn.Linear(features, d)
    self.cls = nn.Parameter(torch.zeros(1, 1, d))
    self.pos = nn.Parameter(torch.zeros(1, tokens + 1, d))
    layer = nn.TransformerEncoderLayer(
      d, heads, 4 * d, dropout=0.0, activation='gelu', batch_first=True, norm_first=True
    )
    self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    self.norm = nn.LayerNorm(d, eps=1e-6)

  def forward(self, x):
    x = self.embed(x)
    x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
    return self.norm(self.encoder(x))[:, 0]


def _device() -> torch.device:
  return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def _device_kind(device: torch.device) -> str:
  return torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'


def _autocast(device: torch.device, dtype: str):
  enabled = dtype == 'bfloat16'
  return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _paper_backbone(name: str, batch: int, tiny: bool):
  """(network, input) of one backbone row, NCDHW (or [B, S, F] for the transformer)."""
  frames, side = PAPER_BACKBONES[name]
  if name == 'cacl_transformer':
    if tiny:
      return CACLTransformer(64, 8, d=32, layers=2, heads=2), torch.randn(batch, 8, 64)
    return CACLTransformer(side, frames), torch.randn(batch, frames, side)
  width = 1 / 16 if tiny else 1.0
  # Tiny C3D needs 16 frames: PyTorch's pools (unlike jaxvssl's, which skip a window larger
  # than the map) cannot pool 4 frames four times.
  tiny_frames = 16 if name == 'c3d' else 4
  shape = (batch, 3, tiny_frames, 32, 32) if tiny else (batch, 3, frames, side, side)
  if name == 'c3d':
    net = C3D(width)
  else:
    net = VideoResNet((2, 2, 2, 2), '3d' if name == 'r3d18' else '2plus1d', width)
  return net, torch.randn(shape)


def _measure(step, warmup: int, repeats: int, device: torch.device) -> list[float]:
  sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
  for _ in range(warmup):
    step()
  sync()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    step()
    sync()
    times.append(1e3 * (time.perf_counter() - t0))
  return times


def _flops(step) -> float | None:
  """FLOPs of one call of `step` (forward + backward) from torch's flop counter."""
  from torch.utils.flop_counter import FlopCounterMode

  counter = FlopCounterMode(display=False)
  with counter:
    step()
  total = counter.get_total_flops()
  return float(total) if total else None


def _paper_row(kind, name, dtype, clips, times, flops, device, extra) -> dict[str, Any]:
  return paper_row(
    kind=kind,
    name=name,
    dtype=dtype,
    clips=clips,
    times=times,
    flops=flops,
    device_kind=_device_kind(device),
    device_peak_bytes=torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None,
    extra=extra,
  )


def bench_paper_backbone(name, dtype, batch, tiny, compile_, warmup, repeats) -> dict[str, Any]:
  device = _device()
  if name in TORCHVISION_BACKBONES:
    net = None if tiny else _torchvision_backbone(name)
    if net is None:
      why = 'torchvision backbones have no --tiny width' if tiny else SKIPPED[name]
      return dict(kind='backbone', name=name, dtype=dtype, skipped=why)
    frames, side = PAPER_BACKBONES[name]
    x = torch.randn(batch, 3, frames, side, side)
  else:
    net, x = _paper_backbone(name, batch, tiny)
  channels_last = x.ndim == 5
  net, x = net.to(device), x.to(device)
  if channels_last:  # NDHWC in memory: the layout cuDNN's fast 3D convolutions want
    net, x = (
      net.to(memory_format=torch.channels_last_3d),
      x.to(memory_format=torch.channels_last_3d),
    )
  opt = torch.optim.SGD(net.parameters(), lr=1e-3)
  forward = torch.compile(net) if compile_ else net

  def step():
    opt.zero_grad(set_to_none=True)
    with _autocast(device, dtype):
      loss = forward(x).float().square().mean()
    loss.backward()
    opt.step()

  if device.type == 'cuda':
    torch.cuda.reset_peak_memory_stats(device)
  times = _measure(step, warmup, repeats, device)
  extra = dict(input=list(x.shape), channels_last=channels_last, compiled=compile_)
  return _paper_row('backbone', name, dtype, batch, times, _flops(step), device, extra)


def moco_step_fn(t: dict[str, Any], device: torch.device, dtype: str, compile_: bool):
  """The MoCo step of `t` (TINY or PAPER_MOCO) on `device`, AMP bf16 when dtype says so."""
  torch.manual_seed(0)

  class Encoder(nn.Module):
    def __init__(self):
      super().__init__()
      self.backbone = VideoResNet(t['stage_sizes'], '3d', t['width'])
      feat = scaled(512, t['width'])
      self.head = nn.Sequential(
        nn.Linear(feat, t['hidden']), nn.ReLU(inplace=True), nn.Linear(t['hidden'], t['embed'])
      )

    def forward(self, x):
      return self.head(self.backbone(x))

  fmt_ = torch.channels_last_3d
  query_enc = Encoder().to(device, memory_format=fmt_)
  key_enc = copy.deepcopy(query_enc)
  for p in key_enc.parameters():
    p.requires_grad_(False)
  q_fn = torch.compile(query_enc) if compile_ else query_enc
  k_fn = torch.compile(key_enc) if compile_ else key_enc
  decay = [p for p in query_enc.parameters() if p.ndim > 1]
  no_decay = [p for p in query_enc.parameters() if p.ndim <= 1]
  opt = torch.optim.SGD(
    [dict(params=decay, weight_decay=t['weight_decay']), dict(params=no_decay, weight_decay=0.0)],
    lr=t['lr'],
    momentum=t['momentum'],
  )
  shape = (t['batch'], 3, t['frames'], t['crop'], t['crop'])
  xq = torch.randn(shape, device=device).to(memory_format=fmt_)
  xk = torch.randn(shape, device=device).to(memory_format=fmt_)
  state = dict(ptr=0, queue=F.normalize(torch.randn(t['queue'], t['embed'], device=device), dim=1))
  labels = torch.zeros(t['batch'], dtype=torch.long, device=device)

  def step():
    with _autocast(device, dtype):
      q = F.normalize(q_fn(xq).float(), dim=1)
      with torch.no_grad():
        k = F.normalize(k_fn(xk).float(), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ state['queue'].t()], 1) / t['tau']
    loss = F.cross_entropy(logits, labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
      torch._foreach_lerp_(list(key_enc.parameters()), list(query_enc.parameters()), 1 - t['ema'])
      ptr = state['ptr']
      state['queue'][ptr : ptr + k.shape[0]] = k
      state['ptr'] = (ptr + k.shape[0]) % t['queue']

  return step


def bench_paper_method(name, dtype, tiny, compile_, warmup, repeats) -> dict[str, Any]:
  if name not in PAPER_METHODS_TORCH:
    return dict(
      kind='method', name=name, dtype=dtype, skipped='no PyTorch reference of this method step'
    )
  device = _device()
  t = dict(TINY, batch=8) if tiny else PAPER_MOCO
  step = moco_step_fn(t, device, dtype, compile_)
  if device.type == 'cuda':
    torch.cuda.reset_peak_memory_stats(device)
  times = _measure(step, warmup, repeats, device)
  extra = dict(config='configs/moco.py:tiny on RGB' if tiny else 'configs/moco.py:r3d18')
  return _paper_row('method', name, dtype, t['batch'], times, _flops(step), device, extra)


def run_paper(args) -> dict[str, Any]:
  rows = []
  for dtype in args.dtypes:
    for name in args.backbones:
      rows.append(
        bench_paper_backbone(
          name, dtype, args.paper_batch, args.tiny, args.compile, args.warmup, args.repeats
        )
      )
      row = rows[-1]
      print(
        format_paper_row(row)
        if 'skipped' not in row
        else f'{name} {dtype}: skipped, {row["skipped"]}',
        flush=True,
      )
    for name in args.methods:
      rows.append(
        bench_paper_method(name, dtype, args.tiny, args.compile, args.warmup, args.repeats)
      )
      row = rows[-1]
      print(
        format_paper_row(row)
        if 'skipped' not in row
        else f'{name} {dtype}: skipped, {row["skipped"]}',
        flush=True,
      )
  return dict(paper=rows, tiny=args.tiny, torch=torch.__version__, device=_device_kind(_device()))


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
  p.add_argument('--paper', action='store_true', help='the accelerator benchmark (see above)')
  p.add_argument('--tiny', action='store_true', help='--paper at smoke-test size (seconds)')
  p.add_argument('--dtypes', default='float32,bfloat16')
  p.add_argument('--backbones', default=','.join(PAPER_BACKBONES))
  p.add_argument('--methods', default='moco,frames,cacl,scvrl,mlfo')
  p.add_argument('--paper_batch', type=int, default=8)
  p.add_argument('--compile', action='store_true', help='--paper: torch.compile the networks')
  args = p.parse_args(argv)
  parts = [x for x in args.parts.split(',') if x and not (args.skip_large and x == 'large')]
  torch.set_num_threads(args.threads)
  if args.paper:
    split = lambda text: tuple(x for x in text.split(',') if x)
    args.dtypes, args.backbones, args.methods = (
      split(args.dtypes),
      split(args.backbones),
      split(args.methods),
    )
    if args.tiny:
      args.paper_batch = min(args.paper_batch, 2)
      args.warmup, args.repeats = min(args.warmup, 1), min(args.repeats, 2)
    result = run_paper(args)
    if args.json:
      with open(args.json, 'w') as fh:
        json.dump(result, fh)
    return
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
