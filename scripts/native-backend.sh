#!/usr/bin/env bash
# Opt-in native TensorFlow backend for Ticketsmith (`npm run native-backend`,
# or `npm run native-backend -- --gpu`; run by .ci/run, never by install or tests).
#
# Builds @tensorflow/tfjs-node 4.22.0 against TensorFlow's C library taken from
# a `tensorflow-cpu` Python wheel instead of the libtensorflow tarball its
# install script downloads from storage.googleapis.com (unreachable from our
# build machines). The wheel's libtensorflow_cc.so.2 and libtensorflow_framework.so.2
# export the C and eager C APIs (TF_*, TFE_*) the addon calls, and the wheel
# ships their headers.
#   1. npm install --no-save --ignore-scripts @tensorflow/tfjs-node@4.22.0
#      (checks that nothing already in node_modules went missing);
#   2. pip download --no-deps tensorflow-cpu (newest pip reaches, or
#      $TF_WHEEL_VERSION), unzip the two libraries and the headers;
#   3. stage them where binding.gyp looks: deps/lib (-ltensorflow
#      -ltensorflow_framework, rpath $ORIGIN/../../deps/lib) and deps/include;
#   4. build the addon with node-gyp into the path node-pre-gyp will look up;
#   5. check that initBackend() now picks 'tensorflow'.
# tfjs-node 4.22 was written against libtensorflow 2.9.1; any 2.x wheel whose
# C API still has the functions the addon uses links (step 4 fails otherwise).
# A later `npm ci`/`npm install` removes the package again (it is not saved).
#
# --gpu: the same for @tensorflow/tfjs-node-gpu 4.22.0 (backend 'tensorflow-gpu')
# against the C libraries of the `tensorflow` wheel, which on Linux x86_64 is
# built with CUDA 12 and cuDNN 9 (tfjs-node-gpu's own download wants CUDA 11.2
# and cuDNN 8.1, too old for Hopper). TensorFlow dlopen()s the CUDA runtime at
# start; with TF_CUDA_LIBS=pip (default) step 2b installs the nvidia-*-cu12
# wheels that `tensorflow[and-cuda]` lists into $NATIVE_SCRATCH/cuda-<version>
# and writes $PKG/deps/cuda-env.sh, which sets LD_LIBRARY_PATH to their lib
# folders: source it (or set the same LD_LIBRARY_PATH) before starting Node, as
# the dynamic loader reads it only at process start. TF_CUDA_LIBS=system skips
# that where CUDA 12 and cuDNN 9 are installed system-wide (the nvidia/cuda
# cudnn images; Dockerfile.cuda). Without a GPU, TensorFlow's GPU build logs
# that it found none and runs on the CPU. TF_WHEEL_PACKAGE=tensorflow-cpu with
# --gpu builds the GPU package on CPU-only libraries (a link check where the
# `tensorflow` wheel cannot be reached).
#
# Environment: TICKETSMITH_ROOT (project dir, default: this repo),
# NATIVE_SCRATCH (default: $TICKETSMITH_ROOT/.native, git-ignored),
# TF_WHEEL_VERSION (e.g. 2.9.1), TF_WHEEL_PACKAGE (default tensorflow-cpu, or
# tensorflow with --gpu), TF_CUDA_LIBS (--gpu only: pip or system), PIP_DOWNLOAD_ARGS (extra pip arguments, e.g.
# "--python-version 3.10 --only-binary=:all:" for a wheel of another Python).
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
GPU=0
for arg in "$@"; do
  case "$arg" in
    --gpu) GPU=1 ;;
    *) printf 'native-backend: unknown argument %s (usage: native-backend.sh [--gpu])\n' "$arg" >&2; exit 2 ;;
  esac
done
ROOT="${TICKETSMITH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SCRATCH="${NATIVE_SCRATCH:-$ROOT/.native}"
if [ "$GPU" = 1 ]; then
  NPM_PKG=@tensorflow/tfjs-node-gpu
  WHEEL_PKG="${TF_WHEEL_PACKAGE:-tensorflow}"
  BACKEND=tensorflow-gpu
else
  NPM_PKG=@tensorflow/tfjs-node
  WHEEL_PKG="${TF_WHEEL_PACKAGE:-tensorflow-cpu}"
  BACKEND=tensorflow
fi
WHEEL_FILE=${WHEEL_PKG//-/_}
PKG="$ROOT/node_modules/$NPM_PKG"

step() { printf '\n== %s\n' "$*"; }
die() { printf 'native-backend: %s\n' "$*" >&2; exit 1; }

for tool in node npm unzip make g++ python3; do
  command -v "$tool" >/dev/null || die "needs '$tool' on PATH"
done
python3 -m pip --version >/dev/null 2>&1 || die "needs pip (python3 -m pip)"
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only Linux x86_64 is supported (the wheel layout differs elsewhere)"
mkdir -p "$SCRATCH"
cd "$ROOT"

step "1/5 npm install --no-save --ignore-scripts $NPM_PKG@$TFJS_NODE_VERSION"
before="$SCRATCH/node_modules.before"
# The other native package, unsaved too, may be pruned by this install: not an error.
(cd node_modules && find . -maxdepth 2 -name package.json -printf '%h\n' | grep -v '^\./@tensorflow/tfjs-node' | sort) >"$before"
npm install --no-save --ignore-scripts --no-audit --no-fund "$NPM_PKG@$TFJS_NODE_VERSION"
missing=$(cd node_modules && find . -maxdepth 2 -name package.json -printf '%h\n' | sort | comm -23 "$before" -)
[ -z "$missing" ] || die "npm removed packages from node_modules (restore them with 'npm ci'):
$missing"
node -e "const fs = require('fs'); for (const d of Object.keys(require('./package.json').dependencies))
  if (!fs.existsSync('node_modules/' + d + '/package.json')) throw new Error(d + ' is missing')" ||
  die "a dependency in package.json is missing after npm install; run 'npm ci'"
[ -f "$PKG/binding.gyp" ] || die "$PKG/binding.gyp missing after npm install"

step "2/5 TensorFlow C library from a $WHEEL_PKG wheel"
spec="$WHEEL_PKG${TF_WHEEL_VERSION:+==$TF_WHEEL_VERSION}"
wheel=$(ls "$SCRATCH"/wheel/"$WHEEL_FILE"-"${TF_WHEEL_VERSION:-}"*.whl 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$wheel" ]; then
  # shellcheck disable=SC2086 # PIP_DOWNLOAD_ARGS is a list of arguments
  python3 -m pip download --no-deps --retries 1 --timeout 30 ${PIP_DOWNLOAD_ARGS:-} "$spec" -d "$SCRATCH/wheel" ||
    die "pip could not download $spec (is a package index reachable? try TF_WHEEL_VERSION or PIP_DOWNLOAD_ARGS)"
  wheel=$(ls "$SCRATCH"/wheel/"$WHEEL_FILE"-*.whl | sort -V | tail -n 1)
fi
echo "wheel: $wheel"
tfver=$(basename "$wheel" | cut -d- -f2)
unpacked="$SCRATCH/$WHEEL_PKG-$tfver"
if [ ! -f "$unpacked/.complete" ]; then
  rm -rf "$unpacked"
  mkdir -p "$unpacked"
  unzip -o -q "$wheel" 'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' \
    'tensorflow/include/*' -d "$unpacked"
  touch "$unpacked/.complete"
fi
lib="$unpacked/tensorflow"
nm -D --defined-only "$lib/libtensorflow_cc.so.2" "$lib/libtensorflow_framework.so.2" >"$SCRATCH/exports.txt"
for sym in TF_NewStatus TF_NewTensor TFE_NewContext TFE_Execute; do
  grep -Eq " T $sym(@|$)" "$SCRATCH/exports.txt" || die "the libraries of $WHEEL_PKG $tfver do not export $sym"
done

cuda_dirs=()
if [ "$GPU" = 1 ] && [ "${TF_CUDA_LIBS:-pip}" = pip ]; then
  step "2b/5 CUDA 12 runtime from the nvidia-*-cu12 wheels tensorflow[and-cuda] lists"
  cuda="$SCRATCH/cuda-$tfver"
  if [ ! -f "$cuda/.complete" ]; then
    mapfile -t reqs < <(unzip -p "$wheel" '*.dist-info/METADATA' |
      sed -n 's/^Requires-Dist: \(nvidia-[^;]*\); extra == "and-cuda".*/\1/p' | tr -d ' ')
    [ "${#reqs[@]}" -gt 0 ] || die "the $WHEEL_PKG $tfver wheel lists no nvidia-* packages for its and-cuda extra"
    rm -rf "$cuda"
    # shellcheck disable=SC2086 # PIP_DOWNLOAD_ARGS is a list of arguments
    python3 -m pip install --no-deps --retries 1 --timeout 30 ${PIP_DOWNLOAD_ARGS:-} --target "$cuda" "${reqs[@]}" ||
      die "pip could not install the CUDA wheels (${reqs[*]}); or set TF_CUDA_LIBS=system where CUDA 12 and cuDNN 9 are installed"
    touch "$cuda/.complete"
  fi
  mapfile -t cuda_dirs < <(find "$cuda/nvidia" -mindepth 2 -maxdepth 2 -type d -name lib | sort)
fi

step "3/5 stage libraries and headers in $PKG/deps"
rm -rf "$PKG/deps"
mkdir -p "$PKG/deps/lib" "$PKG/deps/include"
# Hard links when the scratch dir is on the same filesystem (the libraries are ~850 MB).
cp -l "$lib/libtensorflow_cc.so.2" "$lib/libtensorflow_framework.so.2" "$PKG/deps/lib/" 2>/dev/null ||
  cp "$lib/libtensorflow_cc.so.2" "$lib/libtensorflow_framework.so.2" "$PKG/deps/lib/"
# The linker resolves -ltensorflow / -ltensorflow_framework through these
# names and records the real SONAMEs, which the rpath then finds at run time.
ln -sf libtensorflow_cc.so.2 "$PKG/deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$PKG/deps/lib/libtensorflow_framework.so"
cp -r "$lib/include/." "$PKG/deps/include/"
if [ "${#cuda_dirs[@]}" -gt 0 ]; then
  ld_path=$(IFS=:; echo "${cuda_dirs[*]}")
  printf '# Source before starting Node: TensorFlow dlopen()s CUDA and cuDNN from these folders.\nexport LD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' "$ld_path" >"$PKG/deps/cuda-env.sh"
  echo "CUDA libraries: source $PKG/deps/cuda-env.sh (LD_LIBRARY_PATH=$ld_path)"
  # shellcheck disable=SC1091
  . "$PKG/deps/cuda-env.sh"
fi

step "4/5 build the addon with node-gyp"
binding=$(cd "$PKG" && node -e "console.log(require('@mapbox/node-pre-gyp').find(require('path').resolve('package.json')))")
module_path=$(dirname "$binding")
napi=${module_path##*napi-v}
node_gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || node_gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || die "node-gyp (bundled with npm) not found"
gyp_args=(--module_name=tfjs_binding "--module_path=$module_path" "--napi_build_version=$napi" -j "$(nproc)")
node_prefix=$(dirname "$(dirname "$(command -v node)")")
# Use the local Node headers when present; otherwise node-gyp downloads them.
[ -f "$node_prefix/include/node/node_api.h" ] && gyp_args+=("--nodedir=$node_prefix")
(cd "$PKG" && node "$node_gyp" rebuild "${gyp_args[@]}")
[ -f "$binding" ] || die "build finished but $binding is missing"

step "5/5 check"
node -e "require('$NPM_PKG'); console.log('$NPM_PKG loads; default backend:', require('@tensorflow/tfjs').getBackend())"
TICKETSMITH_BACKEND=$BACKEND node --import tsx --input-type=module -e \
  "const m = await import('./src/runtime/backend.ts'); console.log(JSON.stringify(await m.initBackend()));"
echo "native backend ready: $NPM_PKG $TFJS_NODE_VERSION on TensorFlow C library $tfver ($WHEEL_PKG wheel, $PKG)"
