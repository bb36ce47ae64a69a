#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs jaxvssl with its test extras into it, with the jax
# build of this machine's accelerator. Used by both README commands; safe to re-run (pip skips
# what is already installed).
#
# JAXVSSL_ACCELERATOR chooses the jax build: cpu, cuda12, cuda13 or tpu (the extras of
# pyproject.toml, docs/install.md). auto (the default): cuda13 or cuda12 when `nvidia-smi`
# reports a driver for CUDA 13 or 12, tpu when a TPU chip is on the PCI bus, cpu otherwise.
# JAXVSSL_SETUP_DRY_RUN=1 prints the choice and the pip command, and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Where TPU chips are looked for (a directory of PCI devices; tests point it elsewhere).
PCI_DEVICES=${JAXVSSL_PCI_DEVICES:-/sys/bus/pci/devices}
# TPU chips: Google's PCI vendor id and the device ids of v3 ... 7x, as jax itself finds them
# (jax/_src/hardware_utils.py).
GOOGLE_VENDOR=0x1ae0
TPU_DEVICE_IDS=' 0x0027 0x0056 0x005e 0x0062 0x0063 0x006f 0x0076 '

has_tpu() {
  local dev
  for dev in "$PCI_DEVICES"/*; do
    [ -r "$dev/vendor" ] && [ -r "$dev/device" ] || continue
    if [ "$(cat "$dev/vendor")" = "$GOOGLE_VENDOR" ] \
      && [[ "$TPU_DEVICE_IDS" == *" $(cat "$dev/device") "* ]]; then
      return 0
    fi
  done
  return 1
}

detect() {
  local cuda=''
  if command -v nvidia-smi > /dev/null 2>&1; then
    # The header says e.g. "CUDA Version: 12.4": the newest CUDA the driver runs.
    cuda=$(nvidia-smi 2> /dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
  fi
  if [ -n "$cuda" ] && [ "$cuda" -ge 13 ]; then
    echo cuda13
  elif [ -n "$cuda" ] && [ "$cuda" -ge 12 ]; then
    echo cuda12
  elif has_tpu; then
    echo tpu
  else
    if [ -n "$cuda" ]; then
      echo "setup_env.sh: the NVIDIA driver runs CUDA $cuda only; jax needs 12 or newer: CPU" >&2
    fi
    echo cpu
  fi
}

ACCELERATOR=${JAXVSSL_ACCELERATOR:-auto}
if [ "$ACCELERATOR" = auto ]; then
  ACCELERATOR=$(detect)
fi
case "$ACCELERATOR" in
  cpu) EXTRAS=test ;;
  cuda12 | cuda13 | tpu) EXTRAS="test,$ACCELERATOR" ;;
  *)
    echo "setup_env.sh: JAXVSSL_ACCELERATOR=$ACCELERATOR: use auto, cpu, cuda12, cuda13 or tpu" >&2
    exit 2
    ;;
esac
echo "setup_env.sh: jax for $ACCELERATOR (set JAXVSSL_ACCELERATOR=cpu|cuda12|cuda13|tpu to choose)" >&2
if [ "${JAXVSSL_SETUP_DRY_RUN:-0}" = 1 ]; then
  echo "pip install -e .[$EXTRAS]"
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
