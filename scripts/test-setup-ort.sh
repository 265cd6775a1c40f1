#!/usr/bin/env bash
# test-setup-ort.sh tests setup-ort.sh --gpu against a stand-in of the NuGet
# package Microsoft.ML.OnnxRuntime.Gpu.Linux built here (the registry is not
# reachable from CI): installation beside the CPU library, the checksum
# check, the manifest fast path, repair of a damaged install, a package
# lacking a library, and argument errors.
#
# The CPU library must already be in the real cache (setup-ort.sh, or
# `make ort`): it is copied into a temporary cache so that the CPU step takes
# its fast path. Exit status 77 means the test could not run (skipped).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
setup="${here}/setup-ort.sh"
readonly version=1.30.0 lib=libonnxruntime.so.1

[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] || { echo "skip: linux-x64 only" >&2; exit 77; }
for tool in zip unzip openssl sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "skip: $tool not installed" >&2; exit 77; }
done
real_cache=${ROBUST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/robust}
cpu_lib="${real_cache}/ort/${version}/${lib}"
[[ -f $cpu_lib ]] || { echo "skip: no CPU library at ${cpu_lib} (run scripts/setup-ort.sh)" >&2; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/robust-ort-test.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# A stand-in package: the layout of the real one, libraries replaced by text.
make_nupkg() { # make_nupkg OUT LIB...
	local out=$1 d="${work}/pkg.$RANDOM"
	shift
	mkdir -p "${d}/runtimes/linux-x64/native"
	printf '<?xml version="1.0"?><package><metadata><id>Microsoft.ML.OnnxRuntime.Gpu.Linux</id><version>%s</version></metadata></package>\n' \
		"$version" >"${d}/Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec"
	for l in "$@"; do
		printf 'stand-in %s %s\n' "$l" "$RANDOM" >"${d}/runtimes/linux-x64/native/${l}"
	done
	printf 'not extracted\n' >"${d}/runtimes/linux-x64/native/libonnxruntime.so"
	(cd "$d" && zip -q -r "$out" .)
}
sha512() { openssl dgst -sha512 -binary "$1" | base64 | tr -d '\n'; }

# fresh_cache DIR: a cache holding only the CPU library.
fresh_cache() {
	mkdir -p "$1/ort/${version}"
	cp "$cpu_lib" "$1/ort/${version}/"
}

pkg="${work}/good.nupkg"
make_nupkg "$pkg" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so libonnxruntime_providers_tensorrt.so
hash=$(sha512 "$pkg")

# 1. Install: the providers land beside the CPU library, with a manifest;
#    the last stdout line is the CPU library's path.
cache="${work}/cache1"
fresh_cache "$cache"
dir="${cache}/ort/${version}"
out=$(ROBUST_CACHE_DIR=$cache ROBUST_ORT_GPU_NUPKG=$pkg ROBUST_ORT_GPU_SHA512=$hash bash "$setup" --gpu 2>"${work}/err") ||
	fail "install: exit $?: $(cat "${work}/err")"
[[ $(tail -n1 <<<"$out") == "${dir}/${lib}" ]] || fail "install: last line '$(tail -n1 <<<"$out")', want ${dir}/${lib}"
for l in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so libonnxruntime_providers_tensorrt.so; do
	cmp -s "${dir}/${l}" <(unzip -p "$pkg" "runtimes/linux-x64/native/${l}") || fail "install: ${l} missing or different"
done
[[ ! -e ${dir}/libonnxruntime.so ]] || fail "install: the package's own libonnxruntime.so was extracted"
(cd "$dir" && sha256sum --status -c gpu.sha256) || fail "install: manifest does not match"

# 2. Rerun: the manifest fast path needs no package.
ROBUST_CACHE_DIR=$cache ROBUST_ORT_GPU_NUPKG=/nonexistent bash "$setup" --gpu >/dev/null 2>"${work}/err" ||
	fail "rerun: exit $?: $(cat "${work}/err")"
grep -q "CUDA provider already installed" "${work}/err" || fail "rerun: no fast path: $(cat "${work}/err")"

# 3. A damaged library is noticed and reinstalled.
echo damaged >"${dir}/libonnxruntime_providers_cuda.so"
ROBUST_CACHE_DIR=$cache ROBUST_ORT_GPU_NUPKG=$pkg ROBUST_ORT_GPU_SHA512=$hash bash "$setup" --gpu >/dev/null 2>"${work}/err" ||
	fail "repair: exit $?: $(cat "${work}/err")"
cmp -s "${dir}/libonnxruntime_providers_cuda.so" <(unzip -p "$pkg" runtimes/linux-x64/native/libonnxruntime_providers_cuda.so) ||
	fail "repair: damaged library not replaced"

# 4. A package whose checksum does not match installs nothing.
cache="${work}/cache2"
fresh_cache "$cache"
other="${work}/other.nupkg"
make_nupkg "$other" libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so
if ROBUST_CACHE_DIR=$cache ROBUST_ORT_GPU_NUPKG=$other ROBUST_ORT_GPU_SHA512=$hash bash "$setup" --gpu >/dev/null 2>"${work}/err"; then
	fail "bad checksum: accepted"
fi
grep -q "checksum mismatch" "${work}/err" || fail "bad checksum: message: $(cat "${work}/err")"
ls "${cache}/ort/${version}" | grep -q providers && fail "bad checksum: files installed"

# 5. A package lacking the CUDA provider is refused, naming it.
partial_pkg="${work}/partial.nupkg"
make_nupkg "$partial_pkg" libonnxruntime_providers_shared.so
if ROBUST_CACHE_DIR=$cache ROBUST_ORT_GPU_NUPKG=$partial_pkg ROBUST_ORT_GPU_SHA512=$(sha512 "$partial_pkg") bash "$setup" --gpu >/dev/null 2>"${work}/err"; then
	fail "missing library: accepted"
fi
grep -q "lacks runtimes/linux-x64/native/libonnxruntime_providers_cuda.so" "${work}/err" ||
	fail "missing library: message: $(cat "${work}/err")"
[[ ! -e ${cache}/ort/${version}/gpu.sha256 ]] || fail "missing library: manifest written"

# 6. Without --gpu nothing GPU-related happens; unknown arguments are errors.
ROBUST_CACHE_DIR=$cache bash "$setup" >/dev/null 2>&1 || fail "CPU only: exit $?"
ls "${cache}/ort/${version}" | grep -q providers && fail "CPU only: providers installed"
code=0
bash "$setup" --gpus >/dev/null 2>"${work}/err" || code=$?
[[ $code == 2 ]] && grep -q "unknown argument --gpus" "${work}/err" || fail "bad argument: exit ${code}: $(cat "${work}/err")"

if ((failures)); then
	echo "test-setup-ort: ${failures} failure(s)" >&2
	exit 1
fi
echo "test-setup-ort: ok" >&2
