#!/usr/bin/env bash
# The quality study behind the README's "Quality" section: decam variants vs RISE and Grad-CAM,
# paired on the same photos. Usage: experiments/quality_gpu.sh DEVICE N_IMAGES PHOTOS OUT_JSON
set -euo pipefail
device=${1:-cuda}; n=${2:-20}; photos=${3:-../shared/data/imagenet-dev}; out=${4:-quality.json}
python experiments/quality_probe.py --device "$device" --images "$n" --photos "$photos" --out "$out" \
  "paper:aggregator=paper" \
  "ev:aggregator=evaluated" \
  "ev-big:aggregator=evaluated,encoding.max_side=0.5" \
  "ev-big-prob:aggregator=evaluated,encoding.max_side=0.5,objective=probability" \
  "ev-big-blur:aggregator=evaluated,encoding.max_side=0.5,fill=blur" \
  "ev-big-logit:aggregator=evaluated,encoding.max_side=0.5,aggregator.score=logit" \
  "ev-big-cr9:aggregator=evaluated,encoding.max_side=0.5,searcher.CR=0.9" \
  "ev-big-a0:aggregator=evaluated,encoding.max_side=0.5,alpha=0" \
  "ev-sp:aggregator=evaluated,encoding=superpixels" \
  "ev-big-1k:aggregator=evaluated,encoding.max_side=0.5,budget=1000" \
  "ev-big-2k:aggregator=evaluated,encoding.max_side=0.5,budget=2000" \
  "ev-big-4k:aggregator=evaluated,encoding.max_side=0.5,budget=4000" \
  "rise1000@rise:n_masks=1000" "rise2000@rise:n_masks=2000" "rise4000@rise:n_masks=4000" \
  "gradcam@gradcam:"
