#!/bin/bash
# Device job for the unseen-prompts featurizer study (helper "unseen"); results under $OUT.
cd "$(dirname "$0")"
export PYTHONPATH=$PWD/src:$PWD/stub PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PREFLM_DSP=$PWD/dsp/domain_specific_preference.part1.json TOKENIZERS_PARALLELISM=false
python - <<'PY' > $OUT/setup.log 2>&1
import shutil, torch
from pathlib import Path
from transformers import AutoModel
src, dst = Path("minilm16"), Path("/tmp/minilm")
AutoModel.from_pretrained(src, dtype=torch.float32).save_pretrained(dst)
for f in src.iterdir():
    if f.name not in ("model.safetensors", "config.json") and not (dst / f.name).exists():
        shutil.copytree(f, dst / f.name) if f.is_dir() else shutil.copy(f, dst / f.name)
import sentence_transformers, transformers; print(torch.__version__, transformers.__version__, sentence_transformers.__version__, torch.cuda.get_device_name())
PY
cat $OUT/setup.log | tail -2
R=$OUT/r; mkdir -p $R
F4="minilm+stats,ngrams+stats,minilm+ngrams+stats,minilm-layers+stats"
V="default;l2=1e-2:l2=0.01;h32:hidden_size=32;l2=3e-3,h64:l2=0.003,hidden_size=64"
A="default;no_svd_init:svd_init=false;no_l2:l2=0;J=2:n_factors=2;J=4:n_factors=4;J=6:n_factors=6;J=12:n_factors=12"
run() { tag=$1; shift; PREFLM_CACHE=/tmp/cache_$tag python benchmarks/unseen_prompts.py --out $R --tag _$tag "$@" > $R/$tag.log 2>&1 & }
run attr_feat --datasets attributes --featurizers $F4 --seeds 3
run dsp_feat --datasets dsp --featurizers $F4 --seeds 3
run attr_var --datasets attributes --featurizers ngrams+stats,minilm+ngrams+stats --variants "$V" --seeds 3
run dsp_var --datasets dsp --featurizers ngrams+stats,minilm+ngrams+stats --variants "$V" --seeds 3
run attr_abl --datasets attributes --featurizers minilm+ngrams+stats --variants "$A" --seeds 3
run dsp_abl --datasets dsp --featurizers minilm+ngrams+stats --variants "$A" --seeds 3
PREFLM_CACHE=/tmp/cache_tune python benchmarks/encoder_tune.py --datasets dsp,attributes --out $R \
  --settings "top2:train_layers=2,epochs=4;all:train_layers=null,epochs=4" --seeds 3 > $R/tune.log 2>&1 &
for i in $(seq 1 96); do [ -z "$(jobs -r)" ] && break; sleep 5; done
echo "elapsed: $SECONDS s; still running: $(jobs -r | wc -l)"
grep -h "acc@10\|Error\|error" $R/*.log | grep -v Warning | head -80
tar czf $OUT/results.tgz -C $OUT r && rm -rf $R
