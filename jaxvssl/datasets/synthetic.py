"""Procedural ``synthetic_motion`` videos: the class is HOW things move.

Every video shows 1-3 objects over a background. The class fixes only the
motion law that all objects follow (each with its own phase); everything the
eye can see in a single frame -- shape, colours, texture, background, object
count, size, position -- is drawn from one distribution shared by all classes.
A classifier that ignores time order is therefore at chance on the seven
time-reversal pairs (14 of the 16 classes).

Classes (``CLASSES``; "rev" marks the exact time reversal of its partner: the
renderer draws the partner's video and flips its frame order, so for every
appearance seed ``render_video(B, s) == render_video(A, s)[::-1]``)::

  id name             motion law                                   partner
   0 move_right       translate +x (wraps around the frame)           1
   1 move_left        rev of move_right                               0
   2 move_down        translate +y                                    3
   3 move_up          rev of move_down                                2
   4 move_down_right  translate along (+x, +y)/sqrt(2)                5
   5 move_up_left     rev of move_down_right                          4
   6 grow             size x exp(g * (u - 1/2)), g ~ log 2.5          7
   7 shrink           rev of grow                                     6
   8 rotate_cw        spin clockwise on screen about its centre       9
   9 rotate_ccw       rev of rotate_cw                                8
  10 orbit_cw         circle path, clockwise on screen               11
  11 orbit_ccw        rev of orbit_cw                                10
  12 fall_bounce      drop under gravity, damped bounces, rest       13
  13 rise_bounce      rev of fall_bounce (bounces grow, ends high)   12
  14 approach_retreat grows then shrinks (symmetric in time)          -
  15 static_flicker   no motion; colours swap on and off              -

Time runs as ``u = t / (T - 1)`` in [0, 1] over the video, so every video
holds one complete motion whatever its length (a sampled clip shows part of
it). Images use screen coordinates: x to the right, y DOWN, so an angle that
increases turns clockwise on screen.

Appearance factors (all independent of the class):
  * object count 1-3; shape circle / square / triangle / star; size;
    position uniform over the frame (the world wraps around like a torus, so
    translating objects leave on one side and re-enter on the other);
  * colours: the background is dark and objects light, or the reverse; each
    object has a primary and a secondary colour (textures use both) and an
    off-centre marker dot so that spinning is visible on a circle;
  * texture solid / stripes / checker / noise, drawn in the object's frame
    (it rotates and scales with the object);
  * background solid / gradient / smooth noise;
  * nuisances: per-video speed jitter, per-object speed jitter and phase, and
    a small per-frame camera shake (i.i.d. Gaussian, sub-pixel).
Size changes are normalised so that the mean object area over a video is the
same for every class (grow / shrink / approach_retreat cannot be told apart
from the others by how much of the frame is covered).

Determinism: a video is a pure function of (class, ``numpy.random.SeedSequence``);
``generate_example(config, split, index)`` derives both from
``(config.seed, split, index)``, with classes assigned round robin
(``label = index % 16``) so every split is exactly balanced when its size is a
multiple of 16. Rendering is vectorised NumPy over ``[T, H, W]`` arrays.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from jaxvssl.datasets import motion as motion_lib
from jaxvssl.datasets.decode import encode_jpeg_frames


@dataclasses.dataclass(frozen=True)
class MotionClass:
  """One class of ``synthetic_motion``.

  Attributes:
    name: snake_case class name (TFDS ClassLabel name).
    law: the motion law rendered forward in time (see ``_LAWS``).
    reverse: if True the video is the law's video played backwards.
    partner: name of the time-reversed class, or None if the class is its own
      reversal (in distribution).
    description: one line for tables.
  """

  name: str
  law: str
  reverse: bool
  partner: Optional[str]
  description: str


CLASSES: Tuple[MotionClass, ...] = (
  MotionClass(
    'move_right', 'translate_right', False, 'move_left', 'translate +x, wrapping around the frame'
  ),
  MotionClass('move_left', 'translate_right', True, 'move_right', 'time reversal of move_right'),
  MotionClass('move_down', 'translate_down', False, 'move_up', 'translate +y (down on screen)'),
  MotionClass('move_up', 'translate_down', True, 'move_down', 'time reversal of move_down'),
  MotionClass(
    'move_down_right',
    'translate_down_right',
    False,
    'move_up_left',
    'translate along the (+x, +y) diagonal',
  ),
  MotionClass(
    'move_up_left',
    'translate_down_right',
    True,
    'move_down_right',
    'time reversal of move_down_right',
  ),
  MotionClass(
    'grow', 'grow', False, 'shrink', 'size grows exponentially (about x2.5 over the video)'
  ),
  MotionClass('shrink', 'grow', True, 'grow', 'time reversal of grow'),
  MotionClass(
    'rotate_cw',
    'rotate_cw',
    False,
    'rotate_ccw',
    'spin clockwise about the object centre (about 1 turn)',
  ),
  MotionClass('rotate_ccw', 'rotate_cw', True, 'rotate_cw', 'time reversal of rotate_cw'),
  MotionClass(
    'orbit_cw', 'orbit_cw', False, 'orbit_ccw', 'move along a circle, clockwise (about 1 turn)'
  ),
  MotionClass('orbit_ccw', 'orbit_cw', True, 'orbit_cw', 'time reversal of orbit_cw'),
  MotionClass(
    'fall_bounce',
    'fall_bounce',
    False,
    'rise_bounce',
    'drop under gravity, damped bounces, come to rest',
  ),
  MotionClass(
    'rise_bounce',
    'fall_bounce',
    True,
    'fall_bounce',
    'time reversal of fall_bounce: bounces grow, ends high',
  ),
  MotionClass(
    'approach_retreat', 'approach_retreat', False, None, 'grow then shrink, symmetric in time'
  ),
  MotionClass(
    'static_flicker',
    'static_flicker',
    False,
    None,
    'no motion; each object swaps its two colours on and off',
  ),
)
CLASS_NAMES: Tuple[str, ...] = tuple(c.name for c in CLASSES)
NUM_CLASSES = len(CLASSES)

SHAPES = ('circle', 'square', 'triangle', 'star')
TEXTURES = ('solid', 'stripes', 'checker', 'noise')
BACKGROUNDS = ('solid', 'gradient', 'noise')
SPLITS = ('train', 'test')

FloatRange = Tuple[float, float]


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Everything that defines the ``synthetic_motion`` distribution.

  Sizes are fractions of ``min(height, width)`` unless noted; ranges are
  ``(low, high)`` of a uniform draw.
  """

  num_frames: int = 48
  height: int = 64
  width: int = 64
  fps: float = 16.0
  seed: int = 0
  # Objects.
  min_objects: int = 1
  max_objects: int = 3
  radius: FloatRange = (0.09, 0.15)
  # Per-video speed factor (all laws) and per-object factor on top of it.
  speed_jitter: FloatRange = (0.8, 1.25)
  object_speed_jitter: FloatRange = (0.9, 1.1)
  # translate_*: distance travelled over the whole video.
  translate_distance: FloatRange = (0.6, 0.9)
  # grow / approach_retreat: log of the size ratio (largest / smallest).
  log_size_ratio: float = math.log(2.5)
  grow_phase: FloatRange = (-0.1, 0.1)  # shift of u in grow/approach_retreat
  # rotate_cw: turns over the video.
  rotate_turns: FloatRange = (0.8, 1.2)
  # orbit_cw: path radius and turns over the video.
  orbit_radius: FloatRange = (0.12, 0.2)
  orbit_turns: FloatRange = (0.8, 1.1)
  # fall_bounce: drop height, restitution, time to rest (fraction of the
  # video) and start delay (fraction of the video).
  bounce_height: FloatRange = (0.3, 0.45)
  bounce_restitution: FloatRange = (0.5, 0.65)
  bounce_settle: FloatRange = (0.6, 0.8)
  bounce_delay: FloatRange = (0.0, 0.12)
  # static_flicker: frames a colour state lasts (inclusive integer range).
  flicker_frames: Tuple[int, int] = (2, 5)
  # Camera shake: per-frame i.i.d. Gaussian offset, std in pixels.
  shake_std_px: float = 0.35
  # Colours: dark and light channel ranges (background and objects opposite).
  dark_range: Tuple[int, int] = (10, 105)
  light_range: Tuple[int, int] = (150, 245)
  # Textures: period in object radii; background noise: number of sinusoids
  # and their frequency in cycles per frame.
  texture_period: FloatRange = (0.45, 0.8)
  background_noise_components: int = 6
  background_noise_frequency: FloatRange = (1.0, 4.0)
  background_noise_amplitude: FloatRange = (0.5, 1.0)
  # Texture edges: mask = clip(1/2 + sharpness * wave, 0, 1) (1 = soft, large = hard).
  texture_sharpness: float = 2.0
  # Marker dot in object coordinates (object radius = 1).
  marker_offset: float = 0.5
  marker_radius: float = 0.25
  antialias: bool = True

  def __post_init__(self):
    if self.num_frames < 2:
      raise ValueError(f'SyntheticConfig.num_frames must be >= 2, got {self.num_frames}')
    if min(self.height, self.width) < 8:
      raise ValueError(f'SyntheticConfig height/width must be >= 8, got {self.height}x{self.width}')
    if not self.fps > 0:
      raise ValueError(f'SyntheticConfig.fps must be > 0, got {self.fps}')
    if not 1 <= self.min_objects <= self.max_objects:
      raise ValueError(
        'SyntheticConfig needs 1 <= min_objects <= max_objects, got '
        f'{self.min_objects}, {self.max_objects}'
      )


# --------------------------------------------------------------------------
# Random draws. Everything a video needs is drawn up front, in a fixed order
# and independently of the class, so that (1) the class cannot leak into
# appearance and (2) paired classes see exactly the same random numbers.


@dataclasses.dataclass(frozen=True)
class ObjectDraw:
  """Class-independent random state of one object."""

  shape: str
  texture: str
  primary: np.ndarray  # float32 [3], 0..255
  secondary: np.ndarray  # float32 [3]
  radius_px: float
  position: np.ndarray  # float [2] (x, y) in pixels
  angle: float  # initial orientation, radians
  speed: float  # per-object speed factor (includes the per-video factor)
  texture_angle: float
  texture_period: float
  texture_waves: np.ndarray  # float [3, 3]: (fu, fv, phase) for 'noise'
  phase: float  # uniform [0, 1): phase of the flicker square wave
  rate: float  # uniform [0, 1): position inside a law's range of turns
  grow_phase: float
  orbit_radius_px: float
  bounce_height_px: float
  bounce_restitution: float
  bounce_settle: float
  bounce_delay: float
  flicker_on: int
  flicker_off: int


@dataclasses.dataclass(frozen=True)
class VideoDraw:
  """Class-independent random state of one video."""

  objects: Tuple[ObjectDraw, ...]
  background: str
  background_colors: np.ndarray  # float32 [2, 3]
  gradient_direction: np.ndarray  # float [2]
  noise_waves: np.ndarray  # float [K, 4]: (fx, fy, phase, amplitude)
  shake: np.ndarray  # float32 [T, 2] (x, y) pixel offsets
  translate_distance: float


def _uniform(rng: np.random.Generator, r: Sequence[float]) -> float:
  return float(rng.uniform(r[0], r[1]))


def _colour(rng: np.random.Generator, r: Sequence[int]) -> np.ndarray:
  return rng.uniform(r[0], r[1], size=3).astype(np.float32)


def draw_video(rng: np.random.Generator, cfg: SyntheticConfig) -> VideoDraw:
  """Draws every random quantity of a video (never looks at the class)."""
  size = min(cfg.height, cfg.width)
  dark_background = bool(rng.integers(2))
  bg_range, obj_range = (
    (cfg.dark_range, cfg.light_range) if dark_background else (cfg.light_range, cfg.dark_range)
  )
  background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
  background_colors = np.stack([_colour(rng, bg_range), _colour(rng, bg_range)])
  direction = rng.uniform(0, 2 * np.pi)
  k = cfg.background_noise_components
  noise_waves = np.stack(
    [
      rng.uniform(*cfg.background_noise_frequency, size=k) * rng.choice([-1, 1], size=k),
      rng.uniform(*cfg.background_noise_frequency, size=k),
      rng.uniform(0, 2 * np.pi, size=k),
      rng.uniform(*cfg.background_noise_amplitude, size=k),
    ],
    axis=1,
  )
  video_speed = _uniform(rng, cfg.speed_jitter)
  num_objects = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
  objects = []
  for _ in range(num_objects):
    objects.append(
      ObjectDraw(
        shape=SHAPES[rng.integers(len(SHAPES))],
        texture=TEXTURES[rng.integers(len(TEXTURES))],
        primary=_colour(rng, obj_range),
        secondary=_colour(rng, obj_range),
        radius_px=_uniform(rng, cfg.radius) * size,
        position=rng.uniform([0, 0], [cfg.width, cfg.height]),
        angle=float(rng.uniform(0, 2 * np.pi)),
        speed=video_speed * _uniform(rng, cfg.object_speed_jitter),
        texture_angle=float(rng.uniform(0, np.pi)),
        texture_period=_uniform(rng, cfg.texture_period),
        texture_waves=np.stack(
          [rng.normal(size=3), rng.normal(size=3), rng.uniform(0, 2 * np.pi, size=3)], axis=1
        ),
        phase=float(rng.uniform()),
        rate=float(rng.uniform()),
        grow_phase=_uniform(rng, cfg.grow_phase),
        orbit_radius_px=_uniform(rng, cfg.orbit_radius) * size,
        bounce_height_px=_uniform(rng, cfg.bounce_height) * cfg.height,
        bounce_restitution=_uniform(rng, cfg.bounce_restitution),
        bounce_settle=_uniform(rng, cfg.bounce_settle),
        bounce_delay=_uniform(rng, cfg.bounce_delay),
        flicker_on=int(rng.integers(cfg.flicker_frames[0], cfg.flicker_frames[1] + 1)),
        flicker_off=int(rng.integers(cfg.flicker_frames[0], cfg.flicker_frames[1] + 1)),
      )
    )
  shake = rng.normal(0.0, cfg.shake_std_px, size=(cfg.num_frames, 2))
  return VideoDraw(
    objects=tuple(objects),
    background=background,
    background_colors=background_colors,
    gradient_direction=np.array([np.cos(direction), np.sin(direction)]),
    noise_waves=noise_waves,
    shake=shake.astype(np.float32),
    translate_distance=_uniform(rng, cfg.translate_distance) * size,
  )


# --------------------------------------------------------------------------
# Motion laws: per-object state over time. Each returns float arrays [T]:
# centre x, centre y (pixels), scale (x radius), angle (radians), and a bool
# [T] "swap colours" flag.


@dataclasses.dataclass
class ObjectStates:
  """One object's state per frame (all arrays [T]).

  Attributes:
    x: centre x in world pixels (wrapped around the frame when drawn).
    y: centre y in world pixels (y grows downwards).
    scale: radius multiplier.
    angle: orientation in radians (increasing = clockwise on screen).
    swap: bool, show the secondary colour as primary (static_flicker).
  """

  x: np.ndarray
  y: np.ndarray
  scale: np.ndarray
  angle: np.ndarray
  swap: np.ndarray


def _static(obj: ObjectDraw, u: np.ndarray) -> ObjectStates:
  """An object that stays where it was drawn (the base of every law)."""
  t = u.shape[0]
  return ObjectStates(
    x=np.full(t, obj.position[0]),
    y=np.full(t, obj.position[1]),
    scale=np.ones(t),
    angle=np.full(t, obj.angle),
    swap=np.zeros(t, bool),
  )


def _translate(direction: Tuple[float, float]):
  """Law: constant-speed translation along ``direction`` (screen coordinates)."""
  d = np.asarray(direction, np.float64)
  d = d / np.linalg.norm(d)

  def law(obj: ObjectDraw, video: VideoDraw, u: np.ndarray, cfg: SyntheticConfig) -> ObjectStates:
    del cfg
    s = _static(obj, u)
    # Start at the object's (uniform) position and travel; the renderer wraps
    # positions around the frame, so the phase is the position itself.
    travel = video.translate_distance * obj.speed * u
    s.x = obj.position[0] + d[0] * travel
    s.y = obj.position[1] + d[1] * travel
    return s

  return law


def _rms_normalised(log_scale: np.ndarray) -> np.ndarray:
  """exp(log_scale) divided by its RMS, so the mean area factor is 1."""
  scale = np.exp(log_scale)
  return scale / np.sqrt(np.mean(scale**2))


def _grow(obj, video, u, cfg):
  del video
  s = _static(obj, u)
  g = cfg.log_size_ratio * obj.speed
  s.scale = _rms_normalised(g * (u - 0.5 + obj.grow_phase))
  return s


def _approach_retreat(obj, video, u, cfg):
  del video
  s = _static(obj, u)
  g = cfg.log_size_ratio * obj.speed
  # cos(pi * (u - 1/2 - phase)): 0 -> 1 -> 0, peak near the middle. The phase
  # is symmetric around 0, so the law is its own time reversal in distribution.
  s.scale = _rms_normalised(g * np.cos(np.pi * (u - 0.5 - obj.grow_phase)))
  return s


def _rotate_cw(obj, video, u, cfg):
  del video
  s = _static(obj, u)
  turns = _lerp(cfg.rotate_turns, obj.rate) * obj.speed
  s.angle = obj.angle + 2 * np.pi * turns * u
  return s


def _orbit_cw(obj, video, u, cfg):
  del video
  s = _static(obj, u)
  turns = _lerp(cfg.orbit_turns, obj.rate) * obj.speed
  theta = obj.angle + 2 * np.pi * turns * u  # increasing = clockwise on screen
  s.x = obj.position[0] + obj.orbit_radius_px * np.cos(theta)
  s.y = obj.position[1] + obj.orbit_radius_px * np.sin(theta)
  return s


def bounce_height(time: np.ndarray, height: float, restitution: float, settle: float) -> np.ndarray:
  """Height above the floor of a ball dropped at time 0 from ``height``.

  Gravity is chosen so that the ball comes to rest at time ``settle``: with
  first fall time tau, the k-th bounce lasts ``2 tau e^k`` and the total is
  ``tau (1 + 2 e / (1 - e))``.

  Args:
    time: float [T] times (same unit as ``settle``); negative = before drop.
    height: drop height (>= 0).
    restitution: e in (0, 1), ratio of speeds after / before an impact.
    settle: time of rest (> 0).

  Returns:
    float [T] heights (>= 0).
  """
  e = restitution
  tau = settle / (1.0 + 2.0 * e / (1.0 - e))
  gravity = 2.0 * height / tau**2
  # Impact times: tau, tau + 2 tau e, ... (enough bounces to go below 1e-6 tau).
  num_bounces = int(np.ceil(np.log(1e-6) / np.log(e))) + 1
  durations = 2.0 * tau * e ** np.arange(1, num_bounces + 1)
  impacts = tau + np.concatenate([[0.0], np.cumsum(durations)])
  t = np.clip(time, 0.0, None)
  k = np.searchsorted(impacts, t, side='right')  # 0 = first fall
  k_clipped = np.clip(k, 1, num_bounces)
  start = impacts[k_clipped - 1]
  local = t - start
  speed = gravity * tau * e**k_clipped
  flight = np.clip(speed * local - 0.5 * gravity * local**2, 0.0, None)
  first_fall = np.clip(height - 0.5 * gravity * t**2, 0.0, None)
  h = np.where(k == 0, first_fall, flight)
  return np.where(t >= settle, 0.0, h)


def _fall_bounce(obj, video, u, cfg):
  del video, cfg
  s = _static(obj, u)
  height = obj.bounce_height_px * obj.speed
  settle = obj.bounce_settle  # delay + settle <= 0.92: at rest by the end
  # The drawn position is where the object rests; y grows downwards.
  s.y = obj.position[1] - bounce_height(
    u - obj.bounce_delay, height, obj.bounce_restitution, settle
  )
  return s


def _static_flicker(obj, video, u, cfg):
  del video, cfg
  s = _static(obj, u)
  period = obj.flicker_on + obj.flicker_off
  # A uniform phase over the period makes the square wave reversal-symmetric.
  offset = int(obj.phase * period)
  t = np.arange(u.shape[0]) + offset
  s.swap = (t % period) < obj.flicker_on
  return s


def _lerp(r: Sequence[float], a: float) -> float:
  return float(r[0] + (r[1] - r[0]) * a)


_LAWS = {
  'translate_right': _translate((1.0, 0.0)),
  'translate_down': _translate((0.0, 1.0)),
  'translate_down_right': _translate((1.0, 1.0)),
  'grow': _grow,
  'rotate_cw': _rotate_cw,
  'orbit_cw': _orbit_cw,
  'fall_bounce': _fall_bounce,
  'approach_retreat': _approach_retreat,
  'static_flicker': _static_flicker,
}


# --------------------------------------------------------------------------
# Rendering.


def _coverage(gauge: np.ndarray, radius_px: np.ndarray, antialias: bool) -> np.ndarray:
  """Alpha of a shape given its gauge function (1 on the boundary)."""
  if not antialias:
    return (gauge <= 1.0).astype(np.float32)
  # The gauge changes by about 1 / radius per pixel near the boundary: a
  # one-pixel linear ramp approximates the area coverage.
  return np.clip((1.0 - gauge) * radius_px + 0.5, 0.0, 1.0).astype(np.float32)


# Unit shapes (object radius = 1), sized so that their areas are comparable
# (circle 3.14, square 2.56, triangle 2.20, star 2.51).
SQUARE_HALF_SIDE = 0.8
TRIANGLE_INRADIUS = 0.65  # equilateral: the vertices are at 2 x 0.65 = 1.3
STAR_OUTER, STAR_INNER, STAR_POINTS = 1.2, 0.55, 5


def _shape_gauge(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Minkowski gauge of the unit shape: < 1 inside, 1 on the border."""
  if shape == 'circle':
    return np.sqrt(u * u + v * v)
  if shape == 'square':
    return np.maximum(np.abs(u), np.abs(v)) / SQUARE_HALF_SIDE
  if shape == 'triangle':
    # One vertex on +u: outward edge normals at 180, 60 and -60 degrees.
    c, s = 0.5, math.sqrt(3.0) / 2.0
    return np.maximum(np.maximum(-u, c * u + s * v), c * u - s * v) / TRIANGLE_INRADIUS
  if shape == 'star':
    rho = np.sqrt(u * u + v * v)
    a = np.arctan2(v, u) * (STAR_POINTS / (2 * np.pi))
    dist = np.abs(a - np.round(a))  # 0 at a point, 0.5 between points
    return rho / (STAR_OUTER - (STAR_OUTER - STAR_INNER) * 2.0 * dist)
  raise ValueError(f'synthetic: unknown shape {shape!r}; known: {SHAPES}')


def _texture_mask(
  obj: ObjectDraw, u: np.ndarray, v: np.ndarray, sharpness: float
) -> Optional[np.ndarray]:
  """Where the secondary colour shows (float [T,H,W] in [0, 1]); None = solid."""
  if obj.texture == 'solid':
    return None
  c, s = math.cos(obj.texture_angle), math.sin(obj.texture_angle)
  a = (c * u + s * v) * (2 * np.pi / obj.texture_period)
  if obj.texture == 'stripes':
    wave = np.sin(a)
  elif obj.texture == 'checker':
    b = (-s * u + c * v) * (2 * np.pi / obj.texture_period)
    wave = np.sin(a) * np.sin(b)
  elif obj.texture == 'noise':
    k = 2 * np.pi / obj.texture_period
    wave = sum(np.sin(k * (fu * u + fv * v) + ph) for fu, fv, ph in obj.texture_waves)
  else:
    raise ValueError(f'synthetic: unknown texture {obj.texture!r}; known: {TEXTURES}')
  return np.clip(0.5 + sharpness * wave, 0.0, 1.0)


def _background(
  video: VideoDraw, xs: np.ndarray, ys: np.ndarray, cfg: SyntheticConfig
) -> np.ndarray:
  """float32 [T, H, W, 3] background sampled at the shaken pixel centres.

  Args:
    video: the video's random draw.
    xs: float32 [T, 1, W] x of the pixel centres (camera shake included).
    ys: float32 [T, H, 1] y of the pixel centres.
    cfg: the data set configuration.
  """
  c0, c1 = video.background_colors
  shape = (cfg.num_frames, cfg.height, cfg.width)
  if video.background == 'solid':
    return np.broadcast_to(c0, shape + (3,)).astype(np.float32)
  if video.background == 'gradient':
    dx, dy = video.gradient_direction
    extent = abs(dx) * cfg.width + abs(dy) * cfg.height
    mix = (
      0.5
      + (xs - cfg.width / 2) * np.float32(dx / extent)
      + (ys - cfg.height / 2) * np.float32(dy / extent)
    )
  elif video.background == 'noise':
    fx, fy, phase, amp = (w.astype(np.float32) for w in video.noise_waves.T)
    # sum_k amp_k sin(a_k(x) + b_k(y)) with sin(a + b) = sin a cos b + cos a sin b
    # is a batched [T, H, 2K] @ [T, 2K, W] product: no [T, H, W] trigonometry.
    a = 2 * np.pi * fx[None, :, None] * xs[:, 0, None, :] / cfg.width + phase[None, :, None]
    b = 2 * np.pi * fy[None, None, :] * ys[:, :, 0, None] / cfg.height
    left = np.concatenate([np.cos(b), np.sin(b)], axis=2) * np.concatenate([amp, amp])
    right = np.concatenate([np.sin(a), np.cos(a)], axis=1)  # [T, 2K, W]
    field = np.matmul(left, right) / np.sqrt(0.5 * np.sum(amp**2))
    mix = 0.5 + 0.5 * np.tanh(field)
  else:
    raise ValueError(f'synthetic: unknown background {video.background!r}; known: {BACKGROUNDS}')
  mix = np.broadcast_to(np.clip(mix, 0.0, 1.0), shape)[..., None].astype(np.float32)
  return c0 + (c1 - c0) * mix


# Largest distance from the centre to the border of each unit shape (see
# ``_shape_gauge``): it sizes the pixel patch an object is drawn in.
_SHAPE_EXTENT = {
  'circle': 1.0,
  'square': SQUARE_HALF_SIDE * math.sqrt(2.0),
  'triangle': 2.0 * TRIANGLE_INRADIUS,
  'star': STAR_OUTER,
}


def _wrap(d: np.ndarray, period: float) -> np.ndarray:
  """Shortest signed displacement on a circle of length ``period``."""
  return (d + period / 2) % period - period / 2


def _patch_axis(
  centre: np.ndarray, shake: np.ndarray, extent: float, size: int
) -> Tuple[np.ndarray, np.ndarray]:
  """Pixel indices and object-relative offsets of a patch along one axis.

  Args:
    centre: float32 [T] object centre (world pixels).
    shake: float32 [T] camera offset: pixel i shows world coordinate i + 0.5 + shake.
    extent: half width of the patch in pixels.
    size: frame size along this axis (the world wraps with this period).

  Returns:
    (index int [T, S], offset float32 [T, S]) with S <= size, indices taken
    modulo ``size`` and offsets wrapped to the nearest copy of the object.
  """
  span = min(size, int(math.ceil(2 * extent)) + 2)
  first = np.floor(centre - shake - 0.5 - span / 2).astype(np.int64)
  index = (first[:, None] + np.arange(span)[None, :]) % size
  offset = _wrap(index + 0.5 + shake[:, None] - centre[:, None], size)
  return index, offset.astype(np.float32)


def _draw_object(
  image: np.ndarray, obj: ObjectDraw, st: ObjectStates, shake: np.ndarray, cfg: SyntheticConfig
) -> None:
  """Alpha-blends one object into ``image`` (float32 [T, H, W, 3]) in place.

  Only a per-frame patch around the object is touched: the patch follows the
  object (gathered / scattered with wrap-around indices), so the cost scales
  with the object's area, not the frame's.
  """
  num_frames = cfg.num_frames
  scale = np.asarray(st.scale, np.float32)
  extent = obj.radius_px * float(scale.max()) * _SHAPE_EXTENT[obj.shape] + 1.0
  cols, dx = _patch_axis(np.asarray(st.x, np.float32), shake[:, 0], extent, cfg.width)
  rows, dy = _patch_axis(np.asarray(st.y, np.float32), shake[:, 1], extent, cfg.height)
  dx, dy = dx[:, None, :], dy[:, :, None]  # [T, 1, Sx], [T, Sy, 1]
  f = lambda a: np.asarray(a, np.float32)[:, None, None]  # [T] -> [T, 1, 1]
  radius = f(scale) * np.float32(obj.radius_px)
  cos, sin = np.cos(f(st.angle)), np.sin(f(st.angle))
  # Object frame: rotate the displacement by -angle, divide by the radius.
  u = (cos * dx + sin * dy) / radius  # [T, Sy, Sx]
  v = (cos * dy - sin * dx) / radius
  alpha = _coverage(_shape_gauge(obj.shape, u, v), radius, cfg.antialias)
  swap = st.swap[:, None, None, None]
  primary = np.where(swap, obj.secondary, obj.primary).astype(np.float32)  # [T,1,1,3]
  secondary = np.where(swap, obj.primary, obj.secondary).astype(np.float32)
  colour = np.broadcast_to(primary, alpha.shape + (3,))
  mask = _texture_mask(obj, u, v, cfg.texture_sharpness)
  if mask is not None:
    colour = colour + (secondary - primary) * mask[..., None]
  marker_gauge = np.sqrt((u - cfg.marker_offset) ** 2 + v * v) / cfg.marker_radius
  marker = _coverage(marker_gauge, radius * cfg.marker_radius, cfg.antialias)
  colour = colour + ((255.0 - primary) - colour) * marker[..., None]
  index = (np.arange(num_frames)[:, None, None], rows[:, :, None], cols[:, None, :])
  patch = image[index]  # [T, Sy, Sx, 3]
  image[index] = patch + (colour - patch) * alpha[..., None]


def render(video: VideoDraw, states: Sequence[ObjectStates], cfg: SyntheticConfig) -> np.ndarray:
  """Renders the objects' states over the background, back to front.

  Args:
    video: the video's random draw.
    states: one ObjectStates per object (arrays of length T).
    cfg: the data set configuration.

  Returns:
    uint8 [T, H, W, 3] RGB video.
  """
  shake = video.shake.astype(np.float32)
  # Pixel centres in world coordinates, moved by the camera shake.
  xs = (np.arange(cfg.width, dtype=np.float32) + 0.5)[None, None, :] + shake[:, 0, None, None]
  ys = (np.arange(cfg.height, dtype=np.float32) + 0.5)[None, :, None] + shake[:, 1, None, None]
  image = np.array(_background(video, xs, ys, cfg), np.float32)  # writable copy
  for obj, st in zip(video.objects, states):
    _draw_object(image, obj, st, shake, cfg)
  return np.clip(image + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Public entry points.

SeedLike = Union[int, Sequence[int], np.random.SeedSequence]


def class_index(name_or_index: Union[str, int]) -> int:
  """Index of a class given its name or index (validated)."""
  if isinstance(name_or_index, str):
    if name_or_index not in CLASS_NAMES:
      raise ValueError(f'synthetic: unknown class {name_or_index!r}; known: {CLASS_NAMES}')
    return CLASS_NAMES.index(name_or_index)
  index = int(name_or_index)
  if not 0 <= index < NUM_CLASSES:
    raise ValueError(f'synthetic: class index {index} not in [0, {NUM_CLASSES})')
  return index


def render_video(
  label: Union[str, int], seed: SeedLike, cfg: SyntheticConfig = SyntheticConfig()
) -> np.ndarray:
  """Renders one video of a class.

  Args:
    label: class index or name.
    seed: appearance/nuisance seed (int, int sequence or SeedSequence). The
      same seed gives the same appearance for every class, and paired classes
      give exactly reversed videos.
    cfg: data set configuration.

  Returns:
    uint8 [T, H, W, 3] RGB video, ``T = cfg.num_frames``.
  """
  cls = CLASSES[class_index(label)]
  video, states = law_states(cls.law, seed, cfg)
  frames = render(video, states, cfg)
  # A reversed class is its partner's video played backwards: exact reversal.
  return frames[::-1].copy() if cls.reverse else frames


def law_states(
  law: str, seed: SeedLike, cfg: SyntheticConfig = SyntheticConfig()
) -> Tuple[VideoDraw, List[ObjectStates]]:
  """The random draw of a video and its objects' states under a motion law.

  Args:
    law: a key of the law table (``MotionClass.law``), e.g. 'orbit_cw'.
    seed: appearance/nuisance seed, as for ``render_video``.
    cfg: data set configuration.

  Returns:
    (VideoDraw, one ObjectStates per object), forward in time.
  """
  if law not in _LAWS:
    raise ValueError(f'synthetic: unknown motion law {law!r}; known: {sorted(_LAWS)}')
  seed_seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
  video = draw_video(np.random.default_rng(seed_seq), cfg)
  u = np.linspace(0.0, 1.0, cfg.num_frames)
  return video, [_LAWS[law](obj, video, u, cfg) for obj in video.objects]


def example_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
  """The SeedSequence of example ``index`` of ``split``."""
  if split not in SPLITS:
    raise ValueError(f'synthetic: unknown split {split!r}; known: {SPLITS}')
  return np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)])


def example_label(index: int) -> int:
  """Round-robin class assignment: exact balance for multiples of 16."""
  return int(index) % NUM_CLASSES


def video_id(split: str, index: int) -> str:
  return f'synthetic_motion_{split}_{int(index):06d}'


def default_motion_top_k(cfg: SyntheticConfig) -> int:
  """``top_k`` for motion scores scaled to the frame size (see ``motion``)."""
  return motion_lib.scaled_top_k(cfg.height, cfg.width)


def generate_example(
  cfg: SyntheticConfig, split: str, index: int, motion_top_k: Optional[int] = None
) -> Dict[str, Any]:
  """One example of the data set, as NumPy (feature names as in the TFDS set).

  Args:
    cfg: data set configuration (``cfg.seed`` is the data set seed).
    split: 'train' or 'test'.
    index: example index within the split.
    motion_top_k: ``top_k`` of the motion scores; None scales the reference
      4000 (for 128x171 frames) to ``cfg``'s frame size.

  Returns:
    dict with 'video' uint8 [T, H, W, 3], 'label' int, 'label_name' str,
    'video_id' str, 'num_frames' int, 'fps' float, 'motion_scores' float32
    [num_windows].
  """
  label = example_label(index)
  frames = render_video(label, example_seed(cfg.seed, split, index), cfg)
  top_k = default_motion_top_k(cfg) if motion_top_k is None else motion_top_k
  return {
    'video': frames,
    'label': label,
    'label_name': CLASS_NAMES[label],
    'video_id': video_id(split, index),
    'num_frames': int(frames.shape[0]),
    'fps': float(cfg.fps),
    'motion_scores': motion_lib.window_motion_scores(frames, cfg.fps, top_k=top_k),
  }


def encoded_example(
  cfg: SyntheticConfig,
  split: str,
  index: int,
  motion_top_k: Optional[int] = None,
  jpeg_quality: int = 95,
) -> Dict[str, Any]:
  """``generate_example`` with 'video' as a list of JPEG byte strings.

  The frames are encoded like those of real videos (``decode.encode_jpeg_frames``). Kept here,
  away from TensorFlow, so that build worker processes import only NumPy, OpenCV and PyAV.
  """
  ex = generate_example(cfg, split, index, motion_top_k)
  ex['video'] = encode_jpeg_frames(ex['video'], jpeg_quality)
  return ex


def encoded_example_star(args: Tuple[Any, ...]) -> Dict[str, Any]:
  """``encoded_example(*args)`` (for ``multiprocessing.Pool.imap``)."""
  return encoded_example(*args)


def single_threaded_worker() -> None:
  """Pool initializer: one OpenCV thread per worker process."""
  cv2.setNumThreads(1)
