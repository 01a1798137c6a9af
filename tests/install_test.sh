#!/usr/bin/env bash
# cmake --install to a temporary prefix, then build examples/ring_attention.c out of tree
# against it twice, with find_package(longctx) and with pkg-config, and run both on 4 PEs
# with the installed launcher: what another project does to use longctx.
# usage: install_test.sh BUILD_DIR SOURCE_DIR C_COMPILER [EXTRA_FLAGS]
set -u
build=$1 src=$2 cc=$3 flags=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL $*"; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
for f in bin/longctx include/longctx/cp.h include/longctx/symm.h lib/liblongctx.a \
         lib/cmake/longctx/longctxConfig.cmake lib/pkgconfig/longctx.pc; do
    [ -e "$prefix/$f" ] || fail "$f is not installed"
done
for f in include/longctx/gpu.h include/longctx/gpu_attn.h include/longctx/gpu_symm.h; do
    [ -e "$prefix/$f" ] && fail "$f is installed without the GPU library it declares"
done
grep -q "^prefix=$prefix\$" "$prefix/lib/pkgconfig/longctx.pc" || { cat "$prefix/lib/pkgconfig/longctx.pc"; fail "longctx.pc does not point at the prefix"; }

# 1. CMake: find_package + the exported target.
mkdir -p "$tmp/user"
cat >"$tmp/user/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(longctx_user C)
find_package(longctx 0.1 REQUIRED)
add_executable(ring_attention $src/examples/ring_attention.c)
target_link_libraries(ring_attention PRIVATE longctx::longctx m)
CM
cmake -S "$tmp/user" -B "$tmp/user/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/cm.log" 2>&1 &&
    cmake --build "$tmp/user/build" >>"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log"; fail "find_package build"; }
"$prefix/bin/longctx" launch -n 4 -- "$tmp/user/build/ring_attention" 333 || fail "find_package build: the example failed"
echo "ok   find_package(longctx) + longctx::longctx: built and ran on 4 PEs"

# 1b. A C++-only project (project(... CXX)): find_package must not need the C language.
if command -v c++ >/dev/null 2>&1; then
    mkdir -p "$tmp/cxx"
    cat >"$tmp/cxx/main.cc" <<'CC'
#include <cstdio>
#include <longctx/cp.h>
#include <longctx/symm.h>
int main() {
    lc_world *w = nullptr;
    if (lc_world_init(nullptr, &w) != LC_OK) return 1;
    std::printf("PE %d of %d, status %s\n", lc_my_pe(w), lc_n_pes(w), lc_status_str(LC_OK));
    return lc_world_finalize(w) == LC_OK ? 0 : 1;
}
CC
    cat >"$tmp/cxx/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(longctx_cxx_user CXX)
find_package(longctx 0.1 REQUIRED)
add_executable(hello main.cc)
target_link_libraries(hello PRIVATE longctx::longctx)
CM
    cmake -S "$tmp/cxx" -B "$tmp/cxx/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$flags" \
          -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/cxx.log" 2>&1 &&
        cmake --build "$tmp/cxx/build" >>"$tmp/cxx.log" 2>&1 || { cat "$tmp/cxx.log"; fail "find_package from a C++-only project"; }
    "$prefix/bin/longctx" launch -n 2 -- "$tmp/cxx/build/hello" | grep -q "of 2, status ok" ||
        fail "the C++-only project's program did not run on 2 PEs"
    echo "ok   find_package(longctx) from a C++-only project: built and ran on 2 PEs"
fi

# 2. pkg-config.
if ! command -v pkg-config >/dev/null; then
    echo "SKIP: pkg-config is missing (scripts/setup.sh installs pkgconf); the CMake package passed"
    exit 77
fi
pc=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs longctx) || fail "pkg-config longctx"
# shellcheck disable=SC2086
"$cc" $flags -std=c11 -O2 "$src/examples/ring_attention.c" -o "$tmp/ra_pc" $pc || fail "pkg-config build ($pc)"
"$prefix/bin/longctx" launch -n 4 -- "$tmp/ra_pc" 257 || fail "pkg-config build: the example failed"
echo "ok   pkg-config longctx ($pc): built and ran on 4 PEs"
