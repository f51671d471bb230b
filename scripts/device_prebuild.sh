#!/usr/bin/env bash
# Builds the CUDA backend's kernels HERE for the H200 machine (sm_90 SASS only, no PTX, IMAGE=0,
# debug info stripped) into .devbuild, so a device call links instead of compiling: nvcc took
# 118-124 s of each session-10 device call on 16 cores, of 30 minutes a session. nvcc here is
# the device's version (13.0); cuDNN is loaded at run time (dynload.c), so its headers' place
# does not matter. Carry ".devbuild/obj/src/backend/cuda" (about 20 MiB: with the four suite
# models' 41 MiB under the 64 MiB carry limit; the script packs .devcarry/cuobj.tgz) and begin
# the device command with (after unpacking the tgz into .devbuild)
#     find .devbuild/obj -type f -exec touch {} +; rm -rf build; ln -s .devbuild build
#     make -j16 IMAGE=0 CUDNN_INC=$d/include CUDNN_LIB=$d/lib all ...
# (touched objects are newer than the sources, so make compiles only the C files, ~20 s).
# Run it after the last change to a .cu/.cuh file; it takes minutes on 2 cores. The strip keeps
# each object's date (--preserve-dates): a date after a source's later edit hid that edit from the
# next make (session 12 ran stale attention objects on the H200 that way).
set -eu
cd "$(dirname "$0")/.."
make BUILD=.devbuild IMAGE=0 NVFLAGS="-O3 -gencode arch=compute_90,code=sm_90 --threads 2" -j2 all
find .devbuild/obj/src/backend/cuda -name '*.o' -exec objcopy --strip-debug --preserve-dates {} \;
# The carry: the kernels' objects only. The C files' objects beside them must not travel: the
# device touches what it unpacks, and a stale C object made newer than its edited source is
# linked as it is (session 13 ran a DepthToSpace compiled before its edit that way).
mkdir -p .devcarry
tar czf .devcarry/cuobj.tgz -C .devbuild $(cd .devbuild && for f in ../src/backend/cuda/*.cu; do b=$(basename "$f" .cu); echo obj/src/backend/cuda/$b.o; done)
du -sh .devcarry/cuobj.tgz
