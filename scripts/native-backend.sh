#!/usr/bin/env bash
# Opt-in native TensorFlow backend for Ticketsmith (`npm run native-backend`;
# never run by install or tests).
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
# Environment: TICKETSMITH_ROOT (project dir, default: this repo),
# NATIVE_SCRATCH (default: $TICKETSMITH_ROOT/.native, git-ignored),
# TF_WHEEL_VERSION (e.g. 2.9.1), PIP_DOWNLOAD_ARGS (extra pip arguments, e.g.
# "--python-version 3.10 --only-binary=:all:" for a wheel of another Python).
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
ROOT="${TICKETSMITH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SCRATCH="${NATIVE_SCRATCH:-$ROOT/.native}"
PKG="$ROOT/node_modules/@tensorflow/tfjs-node"

step() { printf '\n== %s\n' "$*"; }
die() { printf 'native-backend: %s\n' "$*" >&2; exit 1; }

for tool in node npm unzip make g++ python3; do
  command -v "$tool" >/dev/null || die "needs '$tool' on PATH"
done
python3 -m pip --version >/dev/null 2>&1 || die "needs pip (python3 -m pip)"
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only Linux x86_64 is supported (the wheel layout differs elsewhere)"
mkdir -p "$SCRATCH"
cd "$ROOT"

step "1/5 npm install --no-save --ignore-scripts @tensorflow/tfjs-node@$TFJS_NODE_VERSION"
before="$SCRATCH/node_modules.before"
(cd node_modules && find . -maxdepth 2 -name package.json -printf '%h\n' | sort) >"$before"
npm install --no-save --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node@$TFJS_NODE_VERSION"
missing=$(cd node_modules && find . -maxdepth 2 -name package.json -printf '%h\n' | sort | comm -23 "$before" -)
[ -z "$missing" ] || die "npm removed packages from node_modules (restore them with 'npm ci'):
$missing"
node -e "const fs = require('fs'); for (const d of Object.keys(require('./package.json').dependencies))
  if (!fs.existsSync('node_modules/' + d + '/package.json')) throw new Error(d + ' is missing')" ||
  die "a dependency in package.json is missing after npm install; run 'npm ci'"
[ -f "$PKG/binding.gyp" ] || die "$PKG/binding.gyp missing after npm install"

step "2/5 TensorFlow C library from a tensorflow-cpu wheel"
spec="tensorflow-cpu${TF_WHEEL_VERSION:+==$TF_WHEEL_VERSION}"
wheel=$(ls "$SCRATCH"/wheel/tensorflow_cpu-"${TF_WHEEL_VERSION:-}"*.whl 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$wheel" ]; then
  # shellcheck disable=SC2086 # PIP_DOWNLOAD_ARGS is a list of arguments
  python3 -m pip download --no-deps --retries 1 --timeout 30 ${PIP_DOWNLOAD_ARGS:-} "$spec" -d "$SCRATCH/wheel" ||
    die "pip could not download $spec (is a package index reachable? try TF_WHEEL_VERSION or PIP_DOWNLOAD_ARGS)"
  wheel=$(ls "$SCRATCH"/wheel/tensorflow_cpu-*.whl | sort -V | tail -n 1)
fi
echo "wheel: $wheel"
tfver=$(basename "$wheel" | cut -d- -f2)
unpacked="$SCRATCH/tensorflow-$tfver"
if [ ! -f "$unpacked/.complete" ]; then
  rm -rf "$unpacked"
  mkdir -p "$unpacked"
  unzip -q "$wheel" 'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' \
    'tensorflow/include/*' -d "$unpacked"
  touch "$unpacked/.complete"
fi
lib="$unpacked/tensorflow"
nm -D --defined-only "$lib/libtensorflow_cc.so.2" "$lib/libtensorflow_framework.so.2" >"$SCRATCH/exports.txt"
for sym in TF_NewStatus TF_NewTensor TFE_NewContext TFE_Execute; do
  grep -Eq " T $sym(@|$)" "$SCRATCH/exports.txt" || die "the libraries of tensorflow-cpu $tfver do not export $sym"
done

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
node -e "require('@tensorflow/tfjs-node'); console.log('tfjs-node loads; default backend:', require('@tensorflow/tfjs').getBackend())"
TICKETSMITH_BACKEND=tensorflow node --import tsx --input-type=module -e \
  "const m = await import('./src/runtime/backend.ts'); console.log(JSON.stringify(await m.initBackend()));"
echo "native backend ready: tfjs-node $TFJS_NODE_VERSION on TensorFlow C library $tfver ($PKG)"
