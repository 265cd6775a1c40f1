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
# Environment:
#   ROBUST_CACHE_DIR  cache root (default: $XDG_CACHE_HOME/robust or ~/.cache/robust)
#   ROBUST_ORT_TGZ    use this pre-downloaded onnxruntime-node-1.30.0.tgz
#                     instead of running `npm pack`
set -euo pipefail

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

# Fast path: already installed and intact.
if [[ -f $dest ]]; then
	if [[ $(sha256 "$dest") == "$want_sha256" ]]; then
		log "ONNX Runtime ${ORT_VERSION} already installed"
		printf '%s\n' "$dest"
		exit 0
	fi
	log "cached ${dest} has a wrong checksum; reinstalling"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/robust-ort.XXXXXX")
partial=""
cleanup() {
	rm -rf -- "$tmp"
	if [[ -n $partial ]]; then rm -f -- "$partial"; fi
}
trap cleanup EXIT

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
mkdir -p -- "$dest_dir"
partial=$(mktemp "${dest_dir}/.${LIB_NAME}.XXXXXX")
cp -- "$extracted" "$partial"
chmod 0644 -- "$partial"
mv -f -- "$partial" "$dest"
partial=""

log "installed ONNX Runtime ${ORT_VERSION} (${arch})"
printf '%s\n' "$dest"
