#!/usr/bin/env bash
# Regenerates the README's "Every built-in policy" results: compare tables + plots for DDIM-50 and
# DDPM-50 (100 images each), the calibrations behind the teacache/fbcache/magcache settings, and
# the replay ranking (estimate vs measured PSNR). Takes about an hour on the shared 2-core VM.
# Usage: fora-examples/docs/run-policies.sh [OUTDIR]   (default: fora-examples/docs)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-fora-examples/docs}"
jar=fora-examples/target/fora.jar
[ -f "$jar" ] || mvn -B -q -pl fora-examples -am package -DskipTests
fora() { java -jar "$jar" "$@"; }

# thresholds calibrated on 20 images (seeds 0..19), checked on 20 held-out ones (seeds 1000000..)
fora calibrate --policy teacache --target-speedup 3 --sampler ddim --threads 1 -q --json "$out/calibrate-teacache-3-ddim50.json"
fora calibrate --policy fbcache --target-speedup 2.5 --sampler ddim --threads 1 -q --json "$out/calibrate-fbcache-2.5-ddim50.json"
fora calibrate --policy magcache --target-speedup 3 --sampler ddim --threads 1 -q --json "$out/calibrate-magcache-3-ddim50.json"

policies=$(cat fora-examples/docs/policies.txt)
for sampler in ddim ddpm; do
  fora compare --all-classes --per-class 10 --sampler "$sampler" --steps 50 --seed 0 --repeats 1 --threads 1 -q \
      --policy "$policies" --out "/tmp/policies-$sampler.png" --json "$out/policies-${sampler}50.json" \
      --plot "$out/policies-${sampler}50.png"
done

# record once (3 images), replay every policy, rank the estimates against the DDIM-50 measurements
fora record --labels 0,3,7 --steps 50 --threads 1 -q --out /tmp/ddim50.frec
fora replay --recording /tmp/ddim50.frec --policy "$policies" --against "$out/policies-ddim50.json" \
    --json "$out/replay-ddim50.json"
