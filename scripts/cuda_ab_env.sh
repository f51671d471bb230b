# Sourced by the one-call GPU A/B scripts (cuda_ab_small.sh, cuda_ab_tactic.sh) after they set
# OUT and MODELS: the summary file $S and log(), the environment of a device build and run
# (IMAGE=0: no image headers there; cuDNN from the nvidia.cudnn wheel), make's arguments in
# MK, and the GPU's name into the summary.
mkdir -p "$OUT"
S=$OUT/summary.txt
log() { echo "== $* ($(date +%T))" | tee -a "$S"; }
export PATH=$PATH:/usr/local/cuda/bin PYTHONUNBUFFERED=1 IMAGE=0 DUCTILE_MODELS=$MODELS
d=$(python3 -c 'import os,nvidia.cudnn as m;print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])')
MK=(IMAGE=0 CUDNN_INC="$d/include" CUDNN_LIB="$d/lib")
nvidia-smi -L | tee -a "$S"
