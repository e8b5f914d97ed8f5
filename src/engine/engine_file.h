// Engine files: what `pointnet build` writes and every inference command
// accepts. Layout (little-endian):
//   0   8 bytes  magic "PNENGINE"
//   8   u32      format version (1)
//   12  u32      0
//   16  u64      JSON header length H
//   24  u64      checksum of the whole file (these 8 bytes read as zero)
//   32  H bytes  JSON: precision, device, architecture, class names, part
//                layout, limits, int8 activation scales, build record, and
//                the tensor table {name, dtype f32|i8, shape, offset}
//   then the tensors, each 64-byte aligned (offsets relative to the data start,
//   which is 32 + H rounded up to 64).
// Tensors: every layer's folded fp32 weight and bias ("<layer>.weight",
// "<layer>.bias"); int8 engines add "<layer>.weight_q" (i8, out x in) and
// "<layer>.weight_scale" (f32, out) for the layers that run in int8.
#pragma once
#include <string>

#include "engine/engine_plan.h"

namespace pointnet {

constexpr int kEngineVersion = 1;

// Atomic: a crash leaves the previous file (or none), never half an engine.
void write_engine(const std::string& path, const EnginePlan& plan);

// Validates everything before use (magic, version, sizes within the file,
// checksum, JSON, every tensor present with the architecture's shape, finite
// weights) and throws pointnet::Error naming the file and what is wrong.
EnginePlan read_engine(const std::string& path);

// True when the file starts with the engine magic (commands that accept a
// checkpoint or an engine look at the content, not the extension).
bool is_engine_file(const std::string& path);

}  // namespace pointnet
