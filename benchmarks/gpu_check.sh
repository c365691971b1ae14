#!/usr/bin/env bash
# Device checks on a CUDA machine, under 5 minutes in all (run from the repository root):
#   1. the device-sensitive tests (devices, checkpoints across devices, bf16, two-process gloo runs);
#   2. training speed of fit against a plain-PyTorch loop on the GPU (ratio ours/plain), fp32 and bf16;
#   3. bf16 smoke runs of the CLI on the GPU (VAE, evaluated again on the CPU; VQ-VAE);
#   4. a two-GPU torchrun smoke run (NCCL) where there are two GPUs.
# DEVICE=cpu runs the python parts on the CPU (to check the script where there is no GPU).
set -euo pipefail
DEVICE="${DEVICE:-cuda}"
OUT="$(mktemp -d)"
export MPLBACKEND=Agg PYRO_LVM_DATA="${PYRO_LVM_DATA:-/work/shared/data}"
echo "== 1. device-sensitive tests"
timeout 120 python -m pytest -q -x tests/train/test_device.py tests/train/test_distributed.py \
    tests/vqvae/test_vq_distributed.py
echo "== 2. training speed on $DEVICE (fp32, then bf16)"
timeout 60 python benchmarks/train_speed.py --quick --device "$DEVICE"
timeout 60 python benchmarks/train_speed.py --quick --device "$DEVICE" --precision bf16
echo "== 3. bf16 CLI run on $DEVICE"
timeout 60 pyro-lvm train vae --smoke --device "$DEVICE" --precision bf16 --no-progress --out "$OUT/bf16"
timeout 60 pyro-lvm evaluate "$OUT/bf16" --device cpu --samples 50 --images 50  # a GPU run read on the CPU
timeout 90 pyro-lvm train vqvae --smoke --data synthetic --device "$DEVICE" --precision bf16 --no-progress \
    --out "$OUT/vq"
GPUS="$(python -c 'import torch; print(torch.cuda.device_count())')"
if [ "$DEVICE" != "cpu" ] && [ "$GPUS" -ge 2 ]; then
    echo "== 4. two-GPU torchrun smoke run (NCCL)"
    timeout 90 torchrun --standalone --nproc_per_node 2 -m pyro_lvm.cli train vae --smoke --device cuda \
        --no-progress --out "$OUT/ddp"
    timeout 90 torchrun --standalone --nproc_per_node 2 -m pyro_lvm.cli train vqvae --smoke --data synthetic \
        --device cuda --no-progress --out "$OUT/vq-ddp"
else
    echo "== 4. skipped: $GPUS GPU(s) on $DEVICE"
fi
echo "gpu_check: all done ($OUT)"
