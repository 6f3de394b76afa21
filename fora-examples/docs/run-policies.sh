#!/usr/bin/env bash
# Regenerates the README's "Every built-in policy on the shipped model": the calibrations behind
# the teacache/fbcache/magcache settings (per sampler), the compare tables + plots for DDIM-50 and
# DDPM-50 (100 images each; the policy lists are policies-ddim50.txt and policies-ddpm50.txt, whose
# calibrated specs are those of the calibrate-*.json files), and the replay ranking (estimate vs
# measured PSNR). About an hour on the shared 2-core VM.
# Usage: fora-examples/docs/run-policies.sh [OUTDIR]   (default: fora-examples/docs)
set -euo pipefail
cd "$(dirname "$0")/../.."
docs=fora-examples/docs
out="${1:-$docs}"
jar=fora-examples/target/fora.jar
[ -f "$jar" ] || mvn -B -q -pl fora-examples -am package -DskipTests
fora() { java -jar "$jar" "$@"; }

# thresholds calibrated on 20 images (seeds 0..19), checked on 20 held-out ones (seeds 1000000..)
for sampler in ddim ddpm; do
  fora calibrate --policy teacache --target-speedup 3 --sampler "$sampler" --threads 1 -q \
      --json "$out/calibrate-teacache-3-${sampler}50.json"
  fora calibrate --policy fbcache --target-speedup 2.5 --sampler "$sampler" --threads 1 -q \
      --json "$out/calibrate-fbcache-2.5-${sampler}50.json"
  fora calibrate --policy magcache --target-speedup 3 --sampler "$sampler" --threads 1 -q \
      --json "$out/calibrate-magcache-3-${sampler}50.json"
done

for sampler in ddim ddpm; do
  fora compare --all-classes --per-class 10 --sampler "$sampler" --steps 50 --seed 0 --repeats 1 --threads 1 -q \
      --policy "$(cat "$docs/policies-${sampler}50.txt")" --out "/tmp/policies-$sampler.png" \
      --json "$out/policies-${sampler}50.json" --plot "$out/policies-${sampler}50.png"
done

# record once (3 images), replay every policy, rank the estimates against the DDIM-50 measurements
fora record --labels 0,3,7 --steps 50 --threads 1 -q --out /tmp/ddim50.frec
fora replay --recording /tmp/ddim50.frec --policy "$(cat "$docs/policies-ddim50.txt")" \
    --against "$out/policies-ddim50.json" --json "$out/replay-ddim50.json"
