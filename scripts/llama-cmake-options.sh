# shellcheck shell=bash
# The CMake options troupe builds llama.cpp with (scripts/bootstrap.sh), and llama.cpp's own
# llama-server and llama-batched-bench with (bench/peer/build.sh): one list, so the two sides
# of a side-by-side comparison always run the same libraries built the same way.
#   GGML_NATIVE  -march=native: the CPU's own instruction set (AVX-512 on zen4, ...)
#   GGML_OPENMP  OFF: ggml's own threadpool (as the npm prebuilt), which troupe keeps per engine
#                and pauses when it is idle. Against libgomp's threads (bench/peer/build.sh
#                --openmp): one model as fast or faster (1.31x at 1 stream of `small` F16),
#                and a second model loaded costs nothing, where with two OpenMP teams libgomp
#                turns every barrier into a sleep (docs/BENCHMARKS.md "Which build options
#                matter"). Two busy models split the cores (--cpu-share), since ggml's
#                barriers spin.
# Shared libraries with RPATH $ORIGIN, so each finds its siblings wherever they are copied.
# On x86-64 without AMX (-mno-amx-*, which -march=native does not override): on a Sapphire
# Rapids VM (Firecracker, Linux 6.18) whose kernel grants the tile permission, ggml's AMX matrix
# kernels for Q8_0/Q4_0 die of SIGILL at their first `tilezero` (tinygemm_kernel_amx), while a
# plain ldtilecfg/tilezero program runs there; the AVX-512 kernels serve those types instead.
llama_cmake_options=(
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
  -DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DGGML_BACKEND_DL=OFF
  -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN'
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
)
if [ "$(uname -m)" = x86_64 ]; then
  llama_cmake_options+=(
    '-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
    '-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
  )
fi
