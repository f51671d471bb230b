# ductile — build, run the demo, run the tests.
#   make          library (build/libductile.so, build/libductile.a) and CLI (build/ductile)
#   make run      installs what it needs, builds, and runs the whole workflow on a model the
#                 repo makes itself (scripts/make_demo_model.py)
#   make test     installs what the tests need, builds, runs every test
#   make serve-bench  ductile and onnxruntime served by Triton on loopback, under load
#                 (bench/serve_bench.py; bench/results/serve-<date>.md)
#   make conformance  ONNX's five backend suites through ONNX's runner, fixed and symbolic dims:
#                 counts per suite, build/conformance.json (conformance-expectations: also
#                 rewrites tests/conformance/expected_failures.txt, the ratchet make test checks)
#   make pool-trace  build/trace/libductile.so, whose pool records each loop in thread CPU time
#                 (bench/pool_trace.py: two-thread scaling on a machine whose second core is busy)
#   make op-table README.md's table of supported ops, from the code and the node-test results
#                 (scripts/op_table.py; build/conformance.json's when there is one)
CC      ?= gcc
BUILD   ?= build
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -Wall -Wextra -Wno-unused-parameter -pthread \
           -Iinclude -Isrc -fvisibility=hidden
# Debug sections compressed (objects and every link that passes CFLAGS or LDFLAGS): each C test
# statically links the whole library, and uncompressed a clean `make test` (build/ plus
# build-asan/) wrote 4.3 GB, which filled CI's disk.
GZ      := $(shell $(CC) -gz -x c -c /dev/null -o /dev/null 2>/dev/null && echo -gz)
CFLAGS  += $(GZ)
LDFLAGS += $(GZ)
# Kernel tables (dt_kernel) are initialized positionally and leave their optional trailing
# hooks (plan_shapes) zero, as C does.
CFLAGS  +=
LDLIBS  += -lm -pthread
# ImageDecoder's codecs (src/ops/image_*.c) link the system's image libraries; `make sysdeps`
# (and the first build in a folder) installs them where they are missing (Debian and Ubuntu
# packages: libjpeg-dev is libjpeg62-turbo-dev on Debian, libjpeg-turbo8-dev on Ubuntu).
# `make IMAGE=0` (a machine that cannot install them) links none: BMP and PNM are still
# decoded, the other formats refused by name.
IMAGE      ?= 1
IMG_PKGS   := libjpeg-dev libpng-dev libtiff-dev libwebp-dev libopenjp2-7-dev
IMG_CFLAGS := $(shell pkg-config --cflags-only-I libopenjp2 2>/dev/null || echo -I/usr/include/openjpeg-2.5)
ifeq ($(IMAGE),1)
IMG_LDLIBS := -ljpeg -lpng -ltiff -lwebpdemux -lwebp -lopenjp2
else
IMG_LDLIBS :=
CFLAGS     += -DDT_IMAGE_LIBS=0
endif
LDLIBS  += $(IMG_LDLIBS)
PYTHON  ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
export DUCTILE_MODELS ?= $(abspath ../shared/models)

# CUDA backend (src/backend/cuda): built when nvcc is found; `make CUDA=0` is CPU-only.
# Own kernels are .cu (nvcc, sm_90 machine code plus compute_90 PTX for later GPUs); the
# cuDNN/cuBLASLt callers are plain C against the toolkit's headers.
CUDA      ?= auto
NVCC      ?= nvcc
ifeq ($(CUDA),auto)
CUDA      := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(shell command -v $(NVCC) 2>/dev/null)))
CUDNN_INC ?= /usr/local/include
CUDNN_LIB ?= $(firstword $(wildcard $(CUDA_HOME)/lib /usr/local/cuda-13.0/lib))
NVFLAGS   ?= -O3 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
# Device code compressed for size (nvcc >= 12.8; the driver inflates it when it loads the
# module): every C test links the whole static library, and the default mode left 15 MB of
# fatbinary in each (conv_tc_nhwc.o 2.5 MB -> 0.34 MB).
NVFLAGS   += $(if $(filter 1,$(CUDA)),$(shell $(NVCC) --help 2>/dev/null | grep -q -- --compress-mode && echo -compress-mode=size))
CUDA_SRCS := $(shell find src/backend/cuda -name '*.c' 2>/dev/null | sort)
CU_SRCS   := $(shell find src/backend/cuda -name '*.cu' 2>/dev/null | sort)
ifeq ($(CUDA),1)
CFLAGS    += -DDT_WITH_CUDA=1 -I$(CUDA_HOME)/include -I$(CUDNN_INC)
# cuBLASLt and cuDNN are not linked: dynload.c opens them on the CUDA backend's first use (a
# GPU found), so CPU-only users never map them (import ductile: 184 -> 33 MB resident); the
# rpaths are where that dlopen looks. The CUDA runtime is linked static (lazy, no RSS at load,
# no libcudart.so needed to load the library); -lstdc++ for the .cu objects.
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDNN_LIB) \
               -lcudart_static -lrt -ldl -lstdc++
LDLIBS    += $(CUDA_LDLIBS)
# The same for pkg-config and CMake: full paths handed to the linker with -Wl, which a
# pkg-config sysroot (a DESTDIR-staged install) leaves alone, unlike -L and bare paths, since
# these libraries belong to the system, not to the install; plus their run-time rpaths.
CUDA_PC_LIBS := -Wl,$(CUDA_HOME)/lib64/libcudart_static.a -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDNN_LIB) \
               -lrt -ldl -lstdc++
endif

SRCS    := $(filter-out $(if $(filter 1,$(CUDA)),,$(CUDA_SRCS)),$(shell find src -name '*.c' | sort))
OBJS    := $(SRCS:%.c=$(BUILD)/obj/%.o) $(if $(filter 1,$(CUDA)),$(CU_SRCS:%.cu=$(BUILD)/obj/%.o))
DEPS    := $(OBJS:.o=.d)
CTESTS  := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all run test ctest pytest venv sysdeps imgdeps clean bench bench-quick bench-cuda layers examples fakedev pool-trace \
        conformance conformance-expectations op-table serve-deps serve-bench
all: $(BUILD)/libductile.so $(BUILD)/libductile.a $(BUILD)/ductile

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

IMG_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/ops/image*.c))
$(IMG_OBJS): CFLAGS += $(IMG_CFLAGS)
$(IMG_OBJS): $(BUILD)/image.cfg $(if $(filter 1,$(IMAGE)),| $(BUILD)/imgdeps.ok)
$(BUILD)/image.cfg: FORCE
	@mkdir -p $(BUILD); echo $(IMAGE) | cmp -s - $@ || echo $(IMAGE) > $@
$(BUILD)/imgdeps.ok:
	@$(MAKE) --no-print-directory imgdeps
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -std=c++17 -Iinclude -Isrc -Xcompiler -fPIC,-fvisibility=hidden -MMD -MP -c $< -o $@

# The backend registry says which backends this build has: rebuilt when CUDA changes.
$(BUILD)/cuda.cfg: FORCE
	@mkdir -p $(BUILD); echo $(CUDA) | cmp -s - $@ || echo $(CUDA) > $@
$(BUILD)/obj/src/backend/backends.o: $(BUILD)/cuda.cfg
.PHONY: FORCE

$(BUILD)/libductile.a: $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# SONAME libductile.so.<major> (include/ductile.h's DUCTILE_VERSION_MAJOR), with the link the
# loader looks for next to the library.
SOMAJOR := $(shell sed -n 's/^\#define DUCTILE_VERSION_MAJOR //p' include/ductile.h)
$(BUILD)/libductile.so: $(OBJS)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libductile.so.$(SOMAJOR) -Wl,-z,defs -o $@ $^ $(LDLIBS)
	ln -sf libductile.so $@.$(SOMAJOR)

# The library with a fake device standing in for "cuda" (tests/conformance/fake_device.c):
# run_conformance.py --device=FAKE runs the ONNX node tests through the device path with it.
fakedev: $(BUILD)/libductile_fakedev.so
$(BUILD)/libductile_fakedev.so: tests/conformance/fake_device.c $(OBJS)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS)

$(BUILD)/ductile: tools/ductile.c tools/*.h tools/cli_*.c $(BUILD)/libductile.a
	$(CC) $(CFLAGS) -Itools -o $@ tools/ductile.c $(wildcard tools/cli_*.c) $(BUILD)/libductile.a $(LDLIBS)

# C unit tests link the static library so they can reach internal symbols.
$(BUILD)/tests/%: tests/c/%.c tests/c/*.h tools/*.c tools/*.h $(BUILD)/libductile.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fvisibility=default -Itests/c -o $@ $< $(BUILD)/libductile.a $(LDLIBS)

# The kernel bench (bench/bench_kernels.c: each GEMM micro-kernel in cache against the peak).
$(BUILD)/bench_kernels: bench/bench_kernels.c $(BUILD)/libductile.a
	$(CC) $(CFLAGS) -fvisibility=default -o $@ $< $(BUILD)/libductile.a $(LDLIBS)

# test_cuda_no_alloc counts ductile's calls: it interposes the CUDA runtime, so it links the
# shared one, and wraps the cuDNN / cuBLASLt calls its WRAP(C_OBJ, ...) lines name.
NO_ALLOC_WRAPS := ${shell sed -En 's/^WRAP[(]C_OBJ, *[^,]+, *([A-Za-z0-9_]+),.*/-Wl,--wrap=\1/p' tests/c/test_cuda_no_alloc.c}
$(BUILD)/tests/test_cuda_no_alloc: LDLIBS := $(subst -lcudart_static,-lcudart,$(LDLIBS)) $(NO_ALLOC_WRAPS)

# examples/workflow.c (README's "The workflow in C") built with the two link lines the README
# documents; tests/python/test_cli.py runs both and checks the README shows this very file.
# The static library of a CUDA build also needs the CUDA libraries (CUDA_LDLIBS).
EXAMPLE_CFLAGS := -std=c11 -Wall -Wextra -pedantic
$(BUILD)/examples/workflow: examples/workflow.c include/ductile.h $(BUILD)/libductile.a
	@mkdir -p $(dir $@)
	$(CC) $(EXAMPLE_CFLAGS) -o $@ $< -Iinclude $(BUILD)/libductile.a -lm -pthread $(IMG_LDLIBS) $(CUDA_LDLIBS)
$(BUILD)/examples/workflow_shared: examples/workflow.c include/ductile.h $(BUILD)/libductile.so
	@mkdir -p $(dir $@)
	$(CC) $(EXAMPLE_CFLAGS) -o $@ $< -Iinclude -L$(BUILD) -lductile -Wl,-rpath,$(abspath $(BUILD))
examples: $(BUILD)/examples/workflow $(BUILD)/examples/workflow_shared

# ---- Install ------------------------------------------------------------------------------
#   make install [PREFIX=/usr/local] [DESTDIR=/stage]   make uninstall (same variables)
# The version has one home, include/ductile.h; the library, the pkg-config file, the CMake
# package and the Python wheel (setup.py) all read it from there.
hdr_version = $(shell sed -n 's/^\#define DUCTILE_VERSION_$(1) //p' include/ductile.h)
VERSION      := $(SOMAJOR).$(call hdr_version,MINOR).$(call hdr_version,PATCH)
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/ductile
# What a static link needs besides libductile.a: what the shared library links with (so a
# backend that adds its libraries to LDLIBS, CUDA's, reaches Libs.private unasked), plus any
# extra given here.
PRIVATE_LIBS  = $(strip -lm -pthread $(IMG_LDLIBS) $(CUDA_PC_LIBS) $(EXTRA_PRIVATE_LIBS))
# Relative paths from the CMake package to the library and header, so it can be moved.
relpath       = $(shell realpath -m --relative-to=$(2) $(1))
INSTALL_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
  -e 's|@MAJOR@|$(SOMAJOR)|g' -e 's|@MINOR@|$(call hdr_version,MINOR)|g' \
  -e 's|@PRIVATE_LIBS@|$(PRIVATE_LIBS)|g' \
  -e 's|@PRIVATE_LIBS_NO_PTHREAD@|$(filter-out -pthread,$(PRIVATE_LIBS))|g' \
  -e 's|@LIBDIR_REL@|$(call relpath,$(LIBDIR),$(CMAKEDIR))|g' \
  -e 's|@INCLUDEDIR_REL@|$(call relpath,$(INCLUDEDIR),$(CMAKEDIR))|g'
# Everything install writes, and so everything uninstall removes (no more: the folders are
# shared with other packages, except the CMake package's own).
INSTALLED := $(BINDIR)/ductile $(INCLUDEDIR)/ductile.h $(LIBDIR)/libductile.a \
  $(LIBDIR)/libductile.so.$(VERSION) $(LIBDIR)/libductile.so.$(SOMAJOR) $(LIBDIR)/libductile.so \
  $(PKGCONFIGDIR)/ductile.pc $(PKGCONFIGDIR)/ductile-static.pc $(CMAKEDIR)/ductile-config.cmake \
  $(CMAKEDIR)/ductile-config-version.cmake

# What a program linking build/libductile.a needs besides it (README, "The workflow in C").
link-flags:
	@echo -lm -pthread $(IMG_LDLIBS) $(CUDA_LDLIBS)
print-private-libs:
	@echo $(PRIVATE_LIBS)

.PHONY: install uninstall link-flags print-private-libs
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR)
	install -m 755 $(BUILD)/ductile $(DESTDIR)$(BINDIR)/ductile
	install -m 644 include/ductile.h $(DESTDIR)$(INCLUDEDIR)/ductile.h
	install -m 644 $(BUILD)/libductile.a $(DESTDIR)$(LIBDIR)/libductile.a
	install -m 755 $(BUILD)/libductile.so $(DESTDIR)$(LIBDIR)/libductile.so.$(VERSION)
	ln -sf libductile.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libductile.so.$(SOMAJOR)
	ln -sf libductile.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libductile.so
	$(INSTALL_SUBST) packaging/ductile.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/ductile.pc
	$(INSTALL_SUBST) packaging/ductile-static.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/ductile-static.pc
	$(INSTALL_SUBST) packaging/ductile-config.cmake.in > $(DESTDIR)$(CMAKEDIR)/ductile-config.cmake
	$(INSTALL_SUBST) packaging/ductile-config-version.cmake.in \
	  > $(DESTDIR)$(CMAKEDIR)/ductile-config-version.cmake

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true

# System packages: only installed when missing (CI machines have them; apt-get otherwise).
sysdeps:
	@command -v $(CC) >/dev/null && command -v make >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends gcc make)
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends python3-venv)
	@$(if $(filter 1,$(IMAGE)),$(MAKE) --no-print-directory imgdeps,true)
# The image libraries' headers, found by the compiler, or their packages installed.
imgdeps:
	@printf '#include <stdio.h>\n#include <jpeglib.h>\n#include <png.h>\n#include <tiffio.h>\n#include <webp/demux.h>\n#include <openjpeg.h>\n' | \
	  $(CC) $(IMG_CFLAGS) -E -o /dev/null - 2>/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends $(IMG_PKGS)) || \
	  { echo "imgdeps: the image libraries ($(IMG_PKGS)) are missing and could not be installed;" \
	    "make IMAGE=0 builds without them (ImageDecoder then reads BMP and PNM only)" >&2; exit 1; }

$(VENV)/.done: requirements.txt
	$(MAKE) sysdeps
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@
venv: $(VENV)/.done

# Serving: Triton (bundled by nvidia-pytriton) and its clients, every package pinned in
# requirements-serve.txt, which says why --no-deps.
$(VENV)/.serve: requirements-serve.txt $(VENV)/.done
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-serve.txt
	touch $@
serve-deps: $(VENV)/.serve
serve-bench: venv all serve-deps
	PYTHONPATH=python $(VPY) bench/serve_bench.py

run: venv all serve-deps
	$(VPY) scripts/make_demo_model.py $(BUILD)/demo
	PYTHONPATH=python $(VPY) examples/demo.py $(BUILD)/demo/superres_demo.onnx

ctest: $(CTESTS)
	@set -e; for t in $(CTESTS); do echo "== $$t"; $$t; done

pytest: venv all examples serve-deps fakedev
	PYTHONPATH=python $(VPY) -m pytest -q tests/python

# The include rules between the parts (docs/DESIGN.md, "Layout and layering").
layers:
	$(PYTHON) scripts/check_layers.py

test: layers venv all ctest pytest

conformance: venv all
	PYTHONPATH=python $(VPY) tests/conformance/run_conformance.py --json $(BUILD)/conformance.json

conformance-expectations: venv all
	PYTHONPATH=python $(VPY) tests/conformance/run_conformance.py --json $(BUILD)/conformance.json \
	  --write-expectations
	$(PYTHON) scripts/op_table.py --write --conformance $(BUILD)/conformance.json

op-table:
	$(PYTHON) scripts/op_table.py --write $(if $(wildcard $(BUILD)/conformance.json),--conformance $(BUILD)/conformance.json)


# Benchmarks (bench/bench.py): ductile and onnxruntime each in its own process, alternating.
$(VENV)/.bench: bench/requirements.txt $(VENV)/.done
	$(VPY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@
bench: venv all $(VENV)/.bench
	PYTHONPATH=python $(VPY) bench/bench.py
bench-quick: venv all $(VENV)/.bench
	PYTHONPATH=python $(VPY) bench/bench.py --quick
# A library whose pool records each loop's parts in thread CPU time (src/core/pool_trace.h), for
# bench/pool_trace.py: two-thread scaling measured where the second core is often busy.
pool-trace:
	CFLAGS="-O3 -g -DDT_POOL_TRACE" $(MAKE) BUILD=$(BUILD)/trace CUDA=0 IMAGE=0 $(BUILD)/trace/libductile.so
# On a machine with an NVIDIA GPU, PyTorch and torchvision (the system python3 that holds
# PyTorch, not the venv): ductile's CUDA engines against PyTorch eager / compile / CUDA graphs.
bench-cuda: all
	PYTHONPATH=python python3 bench/bench_cuda.py --commit $$(git rev-parse --short HEAD 2>/dev/null || echo $${DUCTILE_COMMIT:-unknown})

clean:
	rm -rf $(BUILD)

-include $(DEPS)

# ---- Untrusted input (docs/DESIGN.md): fuzzing and sanitizer runs -------------------------
#   make fuzz         libFuzzer harnesses (clang) in build/fuzz/; run them: scripts/fuzz.sh [s]
#   make asan-test    the library and C tests with ASan + UBSan in build-asan/, then run them
#   make tsan-test    tests/c/test_threads.c and test_context_sharing.c with ThreadSanitizer in
#                     build-tsan/, then run them
# The flags reach the sub-make through the environment so the Makefile's `CFLAGS +=` still
# adds -std, -I and warnings (a command-line CFLAGS would replace them).
FUZZERS     := fuzz_onnx fuzz_engine fuzz_engine_body fuzz_shapes fuzz_image
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
SAN_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
.PHONY: fuzz fuzz-bins asan-test tsan-test
fuzz:
	CFLAGS="$(FUZZ_CFLAGS)" LDLIBS= $(MAKE) CC=clang BUILD=build/fuzz fuzz-bins
fuzz-bins: $(FUZZERS:%=$(BUILD)/%)
$(BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h tools/cli_shapes.c $(BUILD)/libductile.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itools -o $@ $< \
	  $(if $(filter shapes,$*),tools/cli_shapes.c) $(BUILD)/libductile.a $(LDLIBS)

asan-test:
	CFLAGS="$(SAN_CFLAGS)" LDLIBS= $(MAKE) BUILD=build-asan \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest

# TSan instruments target_clones resolvers, which the loader runs before TSan starts (a crash
# at startup): the TSan build turns the attribute into a harmless one and keeps the baseline.
tsan-test:
	CFLAGS="-O1 -g -fsanitize=thread -D'target_clones(...)=unused'" LDLIBS= $(MAKE) BUILD=build-tsan build-tsan/tests/test_threads build-tsan/tests/test_context_sharing
	TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_threads
	TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_context_sharing
