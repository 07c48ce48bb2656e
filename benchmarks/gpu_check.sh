#!/usr/bin/env bash
# Device check on a CUDA machine: train-teacher + distill with every generator on --device cuda, briefly,
# printing wall time and throughput per step, and each --precision side by side. About 3-5 minutes on one H100.
#
#   bash benchmarks/gpu_check.sh            # uses `python` on PATH (dfkd installed, or run from the repo root)
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Exits non-zero at the first failing command; the last lines then name it.
set -euo pipefail
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
echo "== machine"
$PY - "$DEVICE" <<'EOF'
import platform, sys, torch
print(platform.platform(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA DEVICE")
assert torch.cuda.is_available() or sys.argv[1] == "cpu", "no CUDA device: this check needs a GPU (DEVICE=cpu for a dry run)"
EOF

run() {  # run LABEL CMD...: time one command, print its last output line
  local label=$1; shift
  local start=$(date +%s%N)
  "$@" > "$OUT/$label.log" 2>&1 || { echo "FAILED: $label: $*"; tail -20 "$OUT/$label.log"; exit 1; }
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '%-28s %5d.%01d s   %s\n' "$label" $((ms / 1000)) $((ms % 1000 / 100)) "$(tail -1 "$OUT/$label.log")"
}

echo "== teacher (gin-5-64, MUTAG fold 1, 30 epochs)"
run train-teacher $PY -m dfkd train-teacher --dataset MUTAG --fold 1 --arch gin-5-64 --epochs 30 \
    --device "$DEVICE" --out "$OUT/teacher.pt" --quiet

echo "== distill, every generator (2 epochs, 256 graphs per epoch, batch 32)"
for gen in random prior gfkd dfad conditional; do
  extra=()
  [ "$gen" = gfkd ] && extra=(--iterations 100)
  run "distill-$gen" $PY -m dfkd distill --teacher "$OUT/teacher.pt" --generator "$gen" --num-graphs 256 \
      --epochs 2 --eval-dataset MUTAG --device "$DEVICE" --out "$OUT/student-$gen.pt" --quiet "${extra[@]}"
done
echo "== gfkd with the concrete estimator (soft adjacency through the teacher)"
run distill-gfkd-concrete $PY -m dfkd distill --teacher "$OUT/teacher.pt" --generator gfkd --estimator concrete \
    --iterations 100 --num-graphs 128 --epochs 2 --device "$DEVICE" --out "$OUT/student-concrete.pt" --quiet
echo "== 5,000-node graphs (sparse random candidates)"
run distill-gfkd-5000 $PY -m dfkd distill --teacher "$OUT/teacher.pt" --generator gfkd --nodes 5000:5000 \
    --num-graphs 8 --iterations 20 --epochs 2 --batch-size 4 --device "$DEVICE" --out "$OUT/student-5000.pt" --quiet

echo "== mixed precision (prior, 20 epochs, MUTAG): wall time and student accuracy per --precision"
for precision in fp32 bf16 fp16; do
  run "distill-prior-$precision" $PY -m dfkd distill --teacher "$OUT/teacher.pt" --generator prior --num-graphs 256 \
      --epochs 20 --eval-dataset MUTAG --precision "$precision" --device "$DEVICE" --out "$OUT/student-$precision.pt"
  grep -h "test:" "$OUT/distill-prior-$precision.log" | sed 's/^/    /'
done

echo "== throughput per generator on $DEVICE (graphs/s generated, student steps/s)"
$PY - "$OUT/teacher.pt" "$DEVICE" <<'EOF'
import sys, time, torch
import dfkd
from dfkd.distill import DistillConfig, Distiller, build_student, make_generator
from dfkd.distill.sources import OnlineSource, SyntheticSetSource
teacher, device = dfkd.load_checkpoint(sys.argv[1]), sys.argv[2]
for name in ("random", "prior", "gfkd", "dfad", "conditional"):
    gen = make_generator(name, teacher, device=device, **({"iterations": 100} if name == "gfkd" else {}))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    if gen.online:
        gen.build(0)
        rng = torch.Generator().manual_seed(0)
        for _ in range(10):
            gen.sample(32, rng)
        source = OnlineSource(gen, 256, 32)
    else:
        source = SyntheticSetSource(gen.generate(256, show_progress=False), 32, resample=True)
    sync()
    gen_rate = (320 if gen.online else 256) / (time.perf_counter() - start)
    torch.manual_seed(0)
    report = Distiller(teacher.build_model(), build_student("gin-2-32", teacher), source,
                       DistillConfig(epochs=3, checkpoint_every=0, loss=gen.recommended_loss), device=device,
                       show_progress=False).fit()
    steps = 3 * 8
    print(f"{name:12s} {gen_rate:9.1f} graphs/s generated   {steps / report.distill_seconds:7.1f} student steps/s")
EOF
echo "== 2-process DDP (NCCL) when 2+ GPUs are visible"
if [ "$DEVICE" != cpu ] && [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  run distill-nproc2 $PY -m dfkd distill --teacher "$OUT/teacher.pt" --generator prior --num-graphs 256 --epochs 2 \
      --nproc 2 --device cuda --out "$OUT/student-ddp.pt" --quiet
else
  echo "skipped (one GPU)"
fi
echo "all device checks passed; logs in $OUT"
