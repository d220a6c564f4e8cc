#!/usr/bin/env bash
# Build every libFuzzer target with AddressSanitizer and UndefinedBehaviorSanitizer
# and run each for FUZZ_SECONDS (default 10; longer by hand: FUZZ_SECONDS=600).
# The seed corpus is copied, so runs never change the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-10}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
n=0
for src in test/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  n=$((n + 1))
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc/core \
        -o "$out/$name" "$src" src/core/*.c -lcrypto
  mkdir -p "$out/corpus_$name"
  cp -r "test/fuzz/corpus/${name#fuzz_}/." "$out/corpus_$name/" 2>/dev/null || true
  if (cd "$out" && "./$name" -max_total_time="$seconds" -print_final_stats=0 "corpus_$name" > "$name.log" 2>&1); then
    echo "ok $n - $name: $(grep -o '#[0-9]* *DONE.*' "$out/$name.log" | tail -1 || echo ran) for ${seconds}s"
  else
    echo "not ok $n - $name"; tail -30 "$out/$name.log"; fail=1
  fi
done
echo "1..$n"
exit $fail
