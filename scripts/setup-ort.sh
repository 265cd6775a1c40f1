#!/usr/bin/env bash
# setup-ort.sh installs the ONNX Runtime shared library that robust uses.
#
# The library comes from the npm package onnxruntime-node@1.30.0, which ships
# a CPU-only libonnxruntime.so.1 for Linux. The script downloads the package
# tarball with `npm pack`, extracts only that file, checks its SHA-256 and
# moves it atomically into the cache:
#
#   ${ROBUST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/robust}/ort/1.30.0/libonnxruntime.so.1
#
# This is the path package ort searches after --ort-lib and $ROBUST_ORT_LIB.
# When the cached library is already present and intact the script does
# nothing. The last line on stdout is the library path (for Makefiles);
# diagnostics go to stderr.
#
# With --gpu it also installs ONNX Runtime's CUDA execution provider for the
# same version, the way onnxruntime-node's own installer (script/install.js)
# does: it fetches the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux
# 1.30.0, verifies the package's SHA-512 against the hash NuGet publishes for
# it (the check NuGet clients make), and extracts
# runtimes/linux-x64/native/libonnxruntime_providers_{shared,cuda,tensorrt}.so
# next to the CPU library, where ONNX Runtime looks for them when a session
# asks for CUDA (robust --device cuda). A manifest of their SHA-256 sums
# (gpu.sha256) lets later runs check the installed files without
# downloading. The package is built for CUDA 13 and cuDNN 9 (ORT >= 1.27);
# those libraries and an NVIDIA driver must be installed separately. This
# GPU path is not exercised by CI (no GPU, no NuGet access there):
# scripts/test-setup-ort.sh tests its logic against a stand-in package.
#
# Usage: setup-ort.sh [--gpu]
#
# Environment:
#   ROBUST_CACHE_DIR       cache root (default: $XDG_CACHE_HOME/robust or ~/.cache/robust)
#   ROBUST_ORT_TGZ         use this pre-downloaded onnxruntime-node-1.30.0.tgz
#                          instead of running `npm pack`
#   ROBUST_ORT_GPU_NUPKG   --gpu: use this pre-downloaded
#                          microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg
#   ROBUST_ORT_GPU_SHA512  --gpu: the package's expected SHA-512, base64 as
#                          NuGet publishes it (default: asked from NuGet)
set -euo pipefail

gpu=0
for arg in "$@"; do
	case $arg in
	--gpu) gpu=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
		exit 0
		;;
	*)
		printf 'setup-ort: error: unknown argument %s (usage: setup-ort.sh [--gpu])\n' "$arg" >&2
		exit 2
		;;
	esac
done

readonly ORT_VERSION=1.30.0
readonly NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
readonly LIB_NAME=libonnxruntime.so.1

log() { printf 'setup-ort: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Pick the tarball member and its measured checksum for this machine.
os=$(uname -s)
[[ $os == Linux ]] || die "unsupported OS $os: the npm package only provides a Linux ${LIB_NAME}; install ONNX Runtime ${ORT_VERSION} yourself and pass --ort-lib or set ROBUST_ORT_LIB"
case "$(uname -m)" in
x86_64 | amd64)
	arch=x64
	want_sha256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
	;;
aarch64 | arm64)
	arch=arm64
	want_sha256=1f549d46250b005580b597f4164984aaf75b3bcb9f3aeb07c7f8a8fe60b23c76
	;;
*) die "unsupported CPU architecture $(uname -m) (want x86_64 or aarch64)" ;;
esac
readonly member="package/bin/napi-v6/linux/${arch}/${LIB_NAME}"

cache_root=${ROBUST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/robust}
dest_dir="${cache_root}/ort/${ORT_VERSION}"
dest="${dest_dir}/${LIB_NAME}"

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d' ' -f1
	else
		die "neither sha256sum nor shasum is installed"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/robust-ort.XXXXXX")
partial=""
cleanup() {
	rm -rf -- "$tmp"
	if [[ -n $partial ]]; then rm -f -- "$partial"; fi
}
trap cleanup EXIT

# install_file SRC NAME copies SRC to dest_dir/NAME atomically.
install_file() {
	mkdir -p -- "$dest_dir"
	partial=$(mktemp "${dest_dir}/.$2.XXXXXX")
	cp -- "$1" "$partial"
	chmod 0644 -- "$partial"
	mv -f -- "$partial" "${dest_dir}/$2"
	partial=""
}

install_cpu() {
	# Fast path: already installed and intact.
	if [[ -f $dest ]]; then
		if [[ $(sha256 "$dest") == "$want_sha256" ]]; then
			log "ONNX Runtime ${ORT_VERSION} already installed"
			return
		fi
		log "cached ${dest} has a wrong checksum; reinstalling"
	fi

	if [[ -n ${ROBUST_ORT_TGZ:-} ]]; then
		[[ -f $ROBUST_ORT_TGZ ]] || die "ROBUST_ORT_TGZ=${ROBUST_ORT_TGZ}: no such file"
		tgz=$ROBUST_ORT_TGZ
		log "using pre-downloaded ${tgz}"
	else
		command -v npm >/dev/null 2>&1 ||
			die "npm is not installed; install Node.js/npm (e.g. apt-get install npm), or download ${NPM_PACKAGE} yourself and set ROBUST_ORT_TGZ to the .tgz"
		log "downloading ${NPM_PACKAGE} with npm pack (about 113 MB)..."
		# npm verifies the tarball against the registry's integrity hash.
		(cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >&2) || die "npm pack ${NPM_PACKAGE} failed"
		tgz="${tmp}/onnxruntime-node-${ORT_VERSION}.tgz"
		[[ -f $tgz ]] || die "npm pack did not produce ${tgz}"
	fi

	log "extracting ${member}"
	tar -xzf "$tgz" -C "$tmp" "$member" || die "cannot extract ${member} from ${tgz}"
	extracted="${tmp}/${member}"

	got_sha256=$(sha256 "$extracted")
	[[ $got_sha256 == "$want_sha256" ]] ||
		die "checksum mismatch for ${member}: got ${got_sha256}, want ${want_sha256}"

	# Copy next to the destination first so that the final rename is atomic.
	install_file "$extracted" "$LIB_NAME"

	log "installed ONNX Runtime ${ORT_VERSION} (${arch})"
}

readonly GPU_PACKAGE=microsoft.ml.onnxruntime.gpu.linux
readonly GPU_NATIVE=runtimes/linux-x64/native
readonly GPU_LIBS="libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so"
readonly GPU_OPTIONAL_LIBS="libonnxruntime_providers_tensorrt.so"
manifest="${dest_dir}/gpu.sha256"

# sha512_base64 FILE prints FILE's SHA-512 in base64, as NuGet writes it.
sha512_base64() {
	openssl dgst -sha512 -binary "$1" | base64 | tr -d '\n'
}

# nuget_hash asks NuGet for the package's published SHA-512: the
# registration leaf names the catalog entry, which holds packageHash.
nuget_hash() {
	local leaf="https://api.nuget.org/v3/registration5-semver1/${GPU_PACKAGE}/${ORT_VERSION}.json"
	local entry
	entry=$(curl -fsSL "$leaf" | python3 -c 'import json,sys; print(json.load(sys.stdin)["catalogEntry"])') ||
		die "cannot read ${leaf}; set ROBUST_ORT_GPU_SHA512 to the package's SHA-512"
	curl -fsSL "$entry" | python3 -c '
import json, sys
e = json.load(sys.stdin)
if e.get("packageHashAlgorithm") != "SHA512":
    sys.exit("unexpected hash algorithm %r" % e.get("packageHashAlgorithm"))
print(e["packageHash"])' || die "cannot read the package hash from ${entry}"
}

install_gpu() {
	[[ $arch == x64 ]] || die "--gpu: ${GPU_PACKAGE} ships CUDA providers for linux-x64 only"
	# Fast path: installed files match their manifest.
	if [[ -f $manifest ]] && (cd "$dest_dir" && sha256sum --status -c gpu.sha256 2>/dev/null); then
		log "ONNX Runtime ${ORT_VERSION} CUDA provider already installed"
		return
	fi
	command -v unzip >/dev/null 2>&1 || die "--gpu needs unzip (apt-get install unzip)"
	command -v openssl >/dev/null 2>&1 || die "--gpu needs openssl to check the package's SHA-512"
	local nupkg=${ROBUST_ORT_GPU_NUPKG:-}
	if [[ -n $nupkg ]]; then
		[[ -f $nupkg ]] || die "ROBUST_ORT_GPU_NUPKG=${nupkg}: no such file"
		log "using pre-downloaded ${nupkg}"
	else
		nupkg="${tmp}/${GPU_PACKAGE}.${ORT_VERSION}.nupkg"
		local url="https://api.nuget.org/v3-flatcontainer/${GPU_PACKAGE}/${ORT_VERSION}/${GPU_PACKAGE}.${ORT_VERSION}.nupkg"
		log "downloading ${url}..."
		curl -fsSL -o "$nupkg" "$url" || die "cannot download ${url}"
	fi
	local want=${ROBUST_ORT_GPU_SHA512:-}
	if [[ -z $want ]]; then
		want=$(nuget_hash)
	fi
	local got
	got=$(sha512_base64 "$nupkg")
	[[ $got == "$want" ]] || die "checksum mismatch for ${nupkg}: SHA-512 ${got}, want ${want}"

	local out="${tmp}/gpu" lib
	mkdir -p -- "$out"
	for lib in $GPU_LIBS; do
		unzip -q -o -j "$nupkg" "${GPU_NATIVE}/${lib}" -d "$out" 2>/dev/null ||
			die "${nupkg} lacks ${GPU_NATIVE}/${lib}"
	done
	for lib in $GPU_OPTIONAL_LIBS; do
		unzip -q -o -j "$nupkg" "${GPU_NATIVE}/${lib}" -d "$out" 2>/dev/null || true
	done
	# Manifest last: an interrupted install is redone on the next run.
	rm -f -- "$manifest"
	: >"${tmp}/gpu.sha256"
	for lib in $GPU_LIBS $GPU_OPTIONAL_LIBS; do
		[[ -f ${out}/${lib} ]] || continue
		install_file "${out}/${lib}" "$lib"
		(cd "$out" && sha256sum "$lib") >>"${tmp}/gpu.sha256"
	done
	install_file "${tmp}/gpu.sha256" gpu.sha256
	log "installed the CUDA execution provider of ONNX Runtime ${ORT_VERSION} beside ${dest}"
}

install_cpu
if ((gpu)); then
	install_gpu
fi
printf '%s\n' "$dest"
