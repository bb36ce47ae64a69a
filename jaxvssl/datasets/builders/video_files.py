"""TFDS builders of real video data sets, prepared from files the user has.

Importing this module registers (nothing is ever downloaded):

    name           configs                  annotations (see the module)
    ucf101         split1, split2, split3   builders/ucf101.py  (replaces the
                                            TFDS web-download builder of that
                                            name, see _replace_tfds_builder)
    hmdb51         split1, split2, split3   builders/hmdb51.py
    kinetics       k400, k600, k700         builders/kinetics.py
    video_folder   default (or any name)    builders/video_folder.py

so that, once prepared (``jaxvssl prepare``, see jaxvssl/datasets/prepare.py),
``tfds.builder('ucf101/split1', data_dir=...)`` reads the data set. Every data
set has these features (docs/data.md): 'video' (JPEG frames, short side
``DecodeOptions.short_side``), 'label', 'video_id', 'num_frames', 'fps',
'motion_scores'.

Building::

    builder = Ucf101(config='split1', data_dir='~/tensorflow_datasets',
                     videos_dir='/data/UCF-101',
                     annotations_dir='/data/ucfTrainTestlist',
                     decode_options=DecodeOptions(short_side=128),
                     num_workers=None)         # None: every core
    builder.download_and_prepare()
    print(format_summary(builder.build_summary))

Two execution modes, identical output:

* local (default): a pool of ``num_workers`` processes decodes the videos
  (``decode.VideoProcessor``), in order, and feeds TFDS's example writer;
* Apache Beam (``use_beam=True`` and a ``tfds.download.DownloadConfig`` with
  ``beam_options``): each video is decoded in a Beam ``DoFn``, so the build
  scales over the workers of Dataflow, Spark or Flink (TFDS's Beam support).

Bad videos never stop a build: unreadable, truncated, zero-frame, too-short and
missing files, and files listed twice in a split ('duplicate'), are listed in
``bad_videos.json`` and ``bad_videos.tsv`` (``split, path, video_id, reason,
detail``) inside the prepared data set directory, and counted in
``build_summary`` (also stored in the data set metadata). Video ids are the
TFDS keys and are made unique before decoding (``video_folder.make_ids_unique``):
two files that would share one (``clip.avi`` and ``clip.mp4``) are both written,
each with its path relative to the videos directory as id.
"""

from __future__ import annotations

import abc
import collections
import csv
import dataclasses
import importlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxvssl.datasets import decode
from jaxvssl.datasets.builders import hmdb51 as hmdb51_lib
from jaxvssl.datasets.builders import kinetics as kinetics_lib
from jaxvssl.datasets.builders import ucf101 as ucf101_lib
from jaxvssl.datasets.builders import video_folder
from jaxvssl.tf_setup import import_tensorflow

import_tensorflow()  # hide GPUs before TFDS initialises TensorFlow
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,g-bad-import-order

REPORT_JSON = 'bad_videos.json'
REPORT_TSV = 'bad_videos.tsv'
_BAD_TAG = 'bad'


@dataclasses.dataclass(eq=False)
class VideoFilesConfig(tfds.core.BuilderConfig):
  """A split variant of a data set.

  Attributes:
    split_number: official split (UCF101, HMDB51).
    variant: Kinetics variant ('400', '600', '700').
  """

  split_number: int | None = None
  variant: str | None = None


def video_features(class_names: list[str] | None) -> tfds.features.FeaturesDict:
  """The feature dict every jaxvssl data set has; unnamed labels when only reading."""
  label = tfds.features.ClassLabel(names=class_names) if class_names else tfds.features.ClassLabel()
  return tfds.features.FeaturesDict(
    {
      # Frames are JPEG-encoded by the decoding workers (quality is a
      # DecodeOptions field); the Video feature stores the bytes unchanged and
      # reads back, with SkipDecoding, a tf.string [T].
      'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format='jpeg'),
      'label': label,
      'video_id': tfds.features.Text(),
      'num_frames': tfds.features.Scalar(dtype=np.int32),
      'fps': tfds.features.Scalar(dtype=np.float32),
      'motion_scores': tfds.features.Tensor(shape=(None,), dtype=np.float32),
    }
  )


class VideoFilesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the real-video builders: a listing of files -> a TFDS data set.

  Subclasses implement ``list_sources`` (annotations -> SourceListing). The
  same class reads a prepared data set: constructed without ``videos_dir``,
  it takes classes and metadata from the data set directory.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'JPEG frames, short side resize, motion scores.'}
  DESCRIPTION = ''
  HOMEPAGE = ''

  def __init__(
    self,
    *,
    videos_dir: str | os.PathLike | None = None,
    annotations_dir: str | os.PathLike | None = None,
    decode_options: decode.DecodeOptions | None = None,
    num_workers: int | None = None,
    use_beam: bool = False,
    **kwargs: Any,
  ):
    """See ``tfds.core.GeneratorBasedBuilder`` for kwargs (data_dir, config...).

    Args:
      videos_dir: root of the source videos; None to read a prepared set.
      annotations_dir: split files / CSVs (None: the data set's default place,
        see its listing module).
      decode_options: frame size, fps, JPEG quality, min_frames...
      num_workers: decoding processes of a local build (None: every core;
        1: in this process). Changes the speed only, never the data.
      use_beam: decode in an Apache Beam pipeline (pass ``beam_options`` in
        the ``download_config`` of ``download_and_prepare``).
    """
    self._videos_dir = None if videos_dir is None else os.fspath(videos_dir)
    self._annotations_dir = None if annotations_dir is None else os.fspath(annotations_dir)
    self._decode_options = decode_options or decode.DecodeOptions()
    self._num_workers = num_workers
    self._use_beam = use_beam
    self._listing_cache: video_folder.SourceListing | None = None
    self._processor: decode.VideoProcessor | None = None
    self._bad: dict[str, list[decode.BadVideo]] = {}
    self._build_summary: dict[str, Any] | None = None
    super().__init__(**kwargs)

  @abc.abstractmethod
  def list_sources(self) -> video_folder.SourceListing:
    """Classes and per-split videos of ``self._videos_dir``."""

  # --- Listing ---------------------------------------------------------------

  @property
  def listing(self) -> video_folder.SourceListing:
    """The source listing (read once; needs ``videos_dir``)."""
    if self._listing_cache is None:
      if self._videos_dir is None:
        raise ValueError(
          f'{self.name}: videos_dir is needed to prepare the data set '
          '(this builder was created to read a prepared one)'
        )
      listing = self.list_sources()
      # Ids are the TFDS keys: a clash would abort the whole build at its end.
      video_folder.make_ids_unique(listing, self._videos_dir)
      empty = [s for s, tasks in listing.tasks.items() if not tasks]
      for split in empty:
        listing.notes.append(
          f'split {split!r}: none of its {listing.listed(split)} listed '
          'videos exists; split not written'
        )
      if len(empty) == len(listing.tasks):
        raise ValueError(
          f'{self.name}/{self.builder_config.name}: no video of the '
          f'annotations exists under {self._videos_dir}'
        )
      self._listing_cache = listing
    return self._listing_cache

  # --- TFDS interface --------------------------------------------------------

  def _info(self) -> tfds.core.DatasetInfo:
    class_names = self.listing.class_names if self._videos_dir is not None else None
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      features=video_features(class_names),
      supervised_keys=('video', 'label'),
      homepage=self.HOMEPAGE or None,
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing is downloaded: the files are local.
    listing = self.listing
    generators = {}
    for split, tasks in listing.tasks.items():
      self._bad[split] = listing.not_decoded(split)
      if not tasks:
        continue
      generators[split] = self._generate_examples(split, tasks)
    return generators

  def _generate_examples(self, split: str, tasks: list[decode.VideoTask]):
    """A generator of (key, example) (local build) or a Beam PTransform."""
    if self._use_beam:
      return self._beam_examples(split, tasks)
    return self._local_examples(split, tasks)

  def _download_and_prepare(self, dl_manager, download_config) -> None:
    self._bad = {}
    if self._use_beam:
      super()._download_and_prepare(dl_manager, download_config)
      self._collect_beam_reports()
    else:
      with decode.VideoProcessor(self._decode_options, self._num_workers) as processor:
        self._processor = processor
        try:
          super()._download_and_prepare(dl_manager, download_config)
        finally:
          self._processor = None
    # Beam shards come in runner order: sort for a reproducible report.
    for videos in self._bad.values():
      videos.sort(key=lambda bad: (bad.video_id, bad.path))
    # Here self.data_path is still TFDS's temporary directory, renamed to the
    # final one only after success: the report is part of the atomic output.
    self._build_summary = self._summarize()
    write_report(self.data_path, self._bad)
    self.info.metadata.update(
      {
        'decode_options': self._decode_options.to_json(),
        'build_summary': self._build_summary,
        'report_files': [REPORT_JSON, REPORT_TSV],
      }
    )

  # --- Local build -------------------------------------------------------------

  def _local_examples(
    self, split: str, tasks: list[decode.VideoTask]
  ) -> Iterator[tuple[str, dict[str, Any]]]:
    assert self._processor is not None
    written = 0
    for task, result in self._processor.imap(tasks):
      if isinstance(result, decode.BadVideo):
        self._bad[split].append(result)
        continue
      written += 1
      yield task.video_id, result
    if not written:
      raise RuntimeError(_all_bad_message(self.name, split, self._bad[split]))

  # --- Beam build ----------------------------------------------------------------

  def _beam_examples(self, split: str, tasks: list[decode.VideoTask]):
    """A PTransform: task manifest -> decoded (key, example); bad -> shards."""
    beam = tfds.core.lazy_imports.apache_beam
    # The task list travels as a file next to the output (local or on a
    # bucket): a beam.Create of a million tasks would bloat the pipeline graph
    # that runners such as Dataflow upload.
    manifest = self.data_path / f'{split}-tasks.jsonl'
    manifest.write_text(''.join(json.dumps(t.to_json()) + '\n' for t in tasks))
    bad_prefix = os.fspath(self.data_path / f'{split}-bad')
    options = self._decode_options

    def expand(pbegin):
      results = (
        pbegin
        | 'ReadTasks' >> beam.io.ReadFromText(os.fspath(manifest))
        | 'ParseTasks' >> beam.Map(_task_from_line)
        # Spread the tasks over all workers (a text file may be read by one).
        | 'Distribute' >> beam.Reshuffle()
        | 'Decode' >> beam.FlatMap(_beam_decode, options).with_outputs(_BAD_TAG, main='examples')
      )
      _ = (
        results[_BAD_TAG]
        | 'BadToJson' >> beam.Map(lambda bad: json.dumps(bad.to_json()))
        | 'WriteBad' >> beam.io.WriteToText(bad_prefix, file_name_suffix='.jsonl')
      )
      return results.examples

    return beam.ptransform_fn(expand)()

  def _collect_beam_reports(self) -> None:
    """Merges the bad-video shards of the Beam workers, then removes them."""
    for split in self.listing.tasks:
      self._bad.setdefault(split, self.listing.not_decoded(split))
      shards = sorted(self.data_path.glob(f'{split}-bad*.jsonl'))
      for shard in shards:
        for line in shard.read_text().splitlines():
          if line.strip():
            self._bad[split].append(decode.BadVideo(**json.loads(line)))
        shard.unlink()
      manifest = self.data_path / f'{split}-tasks.jsonl'
      if manifest.exists():
        manifest.unlink()

  # --- Summary -------------------------------------------------------------------

  def _summarize(self) -> dict[str, Any]:
    listing = self.listing
    splits = {}
    for split in listing.tasks:
      written = self.info.splits[split].num_examples if split in self.info.splits else 0
      reasons = collections.Counter(bad.reason for bad in self._bad[split])
      splits[split] = {
        'listed': listing.listed(split),
        'written': int(written),
        'bad': dict(sorted(reasons.items())),
        'expected': listing.expected_counts.get(split),
      }
    return {
      'dataset': f'{self.name}/{self.builder_config.name}',
      'videos_dir': self._videos_dir,
      'num_classes': len(listing.class_names),
      'splits': splits,
      'notes': list(listing.notes),
    }

  @property
  def build_summary(self) -> dict[str, Any]:
    """Per split: listed / written / bad-by-reason / expected counts.

    Available after ``download_and_prepare`` built the data set, or read from
    the metadata of a prepared one.
    """
    if self._build_summary is not None:
      return self._build_summary
    summary = self.info.metadata.get('build_summary') if self.info.metadata else None
    if summary is None:
      raise ValueError(
        f'{self.name}/{self.builder_config.name}: no build '
        f'summary in {self.data_dir} (not prepared yet?)'
      )
    return summary


def _all_bad_message(name: str, split: str, bad: list[decode.BadVideo]) -> str:
  reasons = collections.Counter(b.reason for b in bad)
  examples = '\n'.join(f'  {b.path}: {b.reason}: {b.detail}' for b in bad[:5])
  return (
    f'{name}: split {split!r}: no video could be decoded ({dict(reasons)}); first ones:\n{examples}'
  )


def _task_from_line(line: str) -> decode.VideoTask:
  return decode.VideoTask.from_json(json.loads(line))


def _beam_decode(task: decode.VideoTask, options: decode.DecodeOptions):
  """Beam FlatMap: (key, example) on the main output, BadVideo on 'bad'."""
  beam = tfds.core.lazy_imports.apache_beam
  decode.init_worker()
  _, result = decode.process(task, options)
  if isinstance(result, decode.BadVideo):
    yield beam.pvalue.TaggedOutput(_BAD_TAG, result)
  else:
    yield task.video_id, result


def write_report(directory: Any, bad: dict[str, list[decode.BadVideo]]) -> None:
  """Writes bad_videos.json and bad_videos.tsv (split, path, video_id, reason, detail)."""
  directory = epath.Path(directory)
  rows = [dict(split=split, **b.to_json()) for split, videos in bad.items() for b in videos]
  counts = {
    split: dict(sorted(collections.Counter(b.reason for b in videos).items()))
    for split, videos in bad.items()
  }
  (directory / REPORT_JSON).write_text(
    json.dumps({'counts': counts, 'reasons': decode.REASONS, 'videos': rows}, indent=1) + '\n'
  )
  buffer = io.StringIO()
  writer = csv.DictWriter(
    buffer,
    fieldnames=['split', 'path', 'video_id', 'reason', 'detail'],
    delimiter='\t',
    lineterminator='\n',
  )
  writer.writeheader()
  writer.writerows(rows)
  (directory / REPORT_TSV).write_text(buffer.getvalue())


def format_summary(summary: dict[str, Any]) -> str:
  """Human-readable build summary, with a WARNING line per count mismatch."""
  lines = [f'{summary["dataset"]}: {summary["num_classes"]} classes']
  warnings = []
  for split, s in summary['splits'].items():
    bad = sum(s['bad'].values())
    reasons = ', '.join(f'{k} {v}' for k, v in s['bad'].items()) or 'none'
    line = (
      f'  {split:<10} written {s["written"]:>7,} of {s["listed"]:>7,} '
      f'listed; bad {bad:,} ({reasons})'
    )
    if s.get('expected') is not None:
      line += f'; expected {s["expected"]:,}'
      if s['written'] != s['expected']:
        warnings.append(
          f'WARNING: {summary["dataset"]} {split}: {s["written"]:,} videos '
          f'written, the official split has {s["expected"]:,} '
          f'({s["listed"]:,} listed by the annotations, {bad:,} bad): '
          'results are not comparable with published numbers'
        )
    lines.append(line)
  lines += [f'  note: {note}' for note in summary.get('notes', ())]
  return '\n'.join(lines + warnings)


# --- Data sets -------------------------------------------------------------------


def _official_split_configs(split_numbers: Sequence[int]) -> list[VideoFilesConfig]:
  """One config 'split<k>' per official train/test split k."""
  return [
    VideoFilesConfig(
      name=f'split{k}', split_number=k, description=f'Official train/test split {k}.'
    )
    for k in split_numbers
  ]


class Ucf101(VideoFilesBuilder, skip_registration=True):
  """UCF101 (101 actions, 13,320 YouTube clips), official splits 1-3."""

  name = 'ucf101'
  DESCRIPTION = (
    'UCF101 from local files: 101 human action classes, 13,320 '
    'videos; train/test from the official split files.'
  )
  HOMEPAGE = 'https://www.crcv.ucf.edu/data/UCF101.php'
  BUILDER_CONFIGS = _official_split_configs(ucf101_lib.SPLIT_NUMBERS)

  def list_sources(self) -> video_folder.SourceListing:
    return ucf101_lib.list_ucf101(
      self._videos_dir, self._annotations_dir, self.builder_config.split_number
    )


class Hmdb51(VideoFilesBuilder):
  """HMDB51 (51 actions, 6,766 clips), official splits 1-3."""

  name = 'hmdb51'
  DESCRIPTION = (
    'HMDB51 from local files: 51 action classes; train/test from '
    'the official per-class split files.'
  )
  HOMEPAGE = 'https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/'
  BUILDER_CONFIGS = _official_split_configs(hmdb51_lib.SPLIT_NUMBERS)

  def list_sources(self) -> video_folder.SourceListing:
    return hmdb51_lib.list_hmdb51(
      self._videos_dir, self._annotations_dir, self.builder_config.split_number
    )


class Kinetics(VideoFilesBuilder):
  """Kinetics-400/600/700 clips from local files and the official CSVs."""

  name = 'kinetics'
  DESCRIPTION = (
    'Kinetics from local clips and the official CSV annotations '
    '(train / validation / test where labelled).'
  )
  HOMEPAGE = 'https://github.com/cvdfoundation/kinetics-dataset'
  BUILDER_CONFIGS = [
    VideoFilesConfig(name=f'k{v}', variant=v, description=f'Kinetics-{v}.')
    for v in kinetics_lib.VARIANTS
  ]

  def list_sources(self) -> video_folder.SourceListing:
    return kinetics_lib.list_kinetics(
      self._videos_dir, self._annotations_dir, self.builder_config.variant
    )


class VideoFolder(VideoFilesBuilder):
  """Any videos in one sub-folder per class, with optional split lists.

  The config name is free: ``VideoFolder(config=VideoFilesConfig(name='mine'),
  ...)`` prepares ``video_folder/mine`` (read back with
  ``tfds.builder('video_folder/mine', data_dir=...)``).
  """

  name = 'video_folder'
  DESCRIPTION = 'Videos from class sub-folders, optional split list files.'
  BUILDER_CONFIGS = [VideoFilesConfig(name='default', description='One folder of videos.')]

  def list_sources(self) -> video_folder.SourceListing:
    return video_folder.list_folder(self._videos_dir, self._annotations_dir)


def _replace_tfds_builder(cls: type[tfds.core.DatasetBuilder], tfds_module: str) -> None:
  """Registers ``cls`` under a name that a TFDS built-in builder already uses.

  TFDS ships a ``ucf101`` builder that downloads the videos and stores other
  features; jaxvssl never downloads and needs its own features, and the
  configs say 'ucf101/split1'. TFDS imports its built-in builders lazily (on
  the first lookup of an unknown name), which would fail with "already
  registered" if ours came first; importing that module now and then
  overwriting the registry entry makes the result independent of import
  order. Only the private registry dict offers this; tensorflow-datasets is
  pinned below 4.10 in pyproject.toml.
  """
  from tensorflow_datasets.core import registered  # pylint: disable=g-import-not-at-top

  importlib.import_module(tfds_module)
  registered._DATASET_REGISTRY[cls.name] = cls  # pylint: disable=protected-access


_replace_tfds_builder(Ucf101, 'tensorflow_datasets.video.ucf101')

BUILDERS: dict[str, type[VideoFilesBuilder]] = {
  'ucf101': Ucf101,
  'hmdb51': Hmdb51,
  'kinetics': Kinetics,
  'folder': VideoFolder,
}
