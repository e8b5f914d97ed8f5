# source_digest: one hash over everything a build reads (CMakeLists.txt,
# cmake/, src/, include/, tests/, tools/, bench/micro/), file names and
# contents, in a fixed order: prebuilt binaries carry it and the GPU machine
# compares it with its own copy of the tree (scripts/gpu-build.sh).
source_digest() {
  local roots=(CMakeLists.txt cmake src include tests tools bench/micro)
  find "${roots[@]}" -type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
}
