// Test-only: runs a decoded ONNX graph (onnx_reader.h) in float, for the op set
// `pointnet export-onnx` emits, with ONNX's semantics (numpy broadcasting,
// opset 13+ Unsqueeze/ReduceSum axes inputs, opset 18 Reduce* axes inputs), so
// the exported graph can be compared with our forward without onnxruntime.
// Simple loops; accumulations in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "onnx_reader.h"

namespace pointnet::testing {

struct EvalTensor {
  std::vector<int64_t> shape;
  std::vector<double> v;  // float values (held as double) or int64 values
  bool is_int = false;
  int64_t size() const { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()); }
};

class OnnxEvaluator {
 public:
  explicit OnnxEvaluator(const OnnxModel& model) : model_(model) {}

  // Runs every node in order; returns all values by name.
  std::map<std::string, EvalTensor> run(const std::map<std::string, EvalTensor>& inputs) {
    std::map<std::string, EvalTensor> env = inputs;
    for (const OnnxTensor& t : model_.initializers) {
      EvalTensor e;
      e.shape = t.dims;
      e.is_int = t.data_type == 7;
      if (e.is_int) e.v.assign(t.ints.begin(), t.ints.end());
      else e.v.assign(t.floats.begin(), t.floats.end());
      if (static_cast<int64_t>(e.v.size()) != e.size()) throw std::runtime_error(t.name + ": size mismatch");
      env[t.name] = e;
    }
    for (const OnnxNode& n : model_.nodes) {
      std::vector<const EvalTensor*> in;
      for (const std::string& name : n.inputs) {
        auto it = env.find(name);
        if (it == env.end()) throw std::runtime_error(n.op_type + ": input " + name + " not computed yet");
        in.push_back(&it->second);
      }
      env[n.outputs.at(0)] = eval(n, in);
    }
    return env;
  }

 private:
  static int64_t attr_i(const OnnxNode& n, const std::string& name, int64_t fallback) {
    auto it = n.attributes.find(name);
    return it == n.attributes.end() ? fallback : it->second.i;
  }
  static std::vector<int64_t> strides(const std::vector<int64_t>& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
    return s;
  }
  static int64_t norm_axis(int64_t axis, size_t rank) { return axis < 0 ? axis + static_cast<int64_t>(rank) : axis; }

  // numpy broadcasting of any number of inputs, elementwise f.
  static EvalTensor broadcast(const std::vector<const EvalTensor*>& in,
                              const std::function<double(const std::vector<double>&)>& f) {
    size_t rank = 0;
    for (auto* t : in) rank = std::max(rank, t->shape.size());
    EvalTensor out;
    out.shape.assign(rank, 1);
    for (auto* t : in)
      for (size_t i = 0; i < t->shape.size(); ++i) {
        int64_t& d = out.shape[rank - t->shape.size() + i];
        const int64_t s = t->shape[i];
        if (d != 1 && s != 1 && d != s) throw std::runtime_error("shapes do not broadcast");
        if (s != 1) d = s;
      }
    out.is_int = in[0]->is_int;
    out.v.resize(out.size());
    const auto os = strides(out.shape);
    std::vector<double> args(in.size());
    std::vector<std::vector<int64_t>> in_strides;
    for (auto* t : in) in_strides.push_back(strides(t->shape));
    for (int64_t idx = 0; idx < out.size(); ++idx) {
      for (size_t k = 0; k < in.size(); ++k) {
        const EvalTensor& t = *in[k];
        const auto& ts = in_strides[k];
        int64_t off = 0;
        for (size_t i = 0; i < t.shape.size(); ++i) {
          const size_t oi = rank - t.shape.size() + i;
          const int64_t coord = (idx / os[oi]) % out.shape[oi];
          if (t.shape[i] != 1) off += coord * ts[i];
        }
        args[k] = t.v[off];
      }
      out.v[idx] = f(args);
    }
    return out;
  }

  // Reduction of one axis: the tensor as (outer, axis, inner).
  static EvalTensor reduce(const EvalTensor& x, int64_t axis, bool keepdims, const std::string& op) {
    axis = norm_axis(axis, x.shape.size());
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
    for (size_t i = axis + 1; i < x.shape.size(); ++i) inner *= x.shape[i];
    const int64_t n = x.shape[axis];
    EvalTensor out;
    out.shape = x.shape;
    if (keepdims) out.shape[axis] = 1;
    else out.shape.erase(out.shape.begin() + axis);
    out.v.resize(outer * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double acc = op == "ReduceMax" ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t k = 0; k < n; ++k) {
          const double v = x.v[(o * n + k) * inner + i];
          acc = op == "ReduceMax" ? std::max(acc, v) : acc + v;
        }
        out.v[o * inner + i] = op == "ReduceMean" ? acc / n : acc;
      }
    return out;
  }

  EvalTensor eval(const OnnxNode& n, const std::vector<const EvalTensor*>& in) {
    const std::string& op = n.op_type;
    if (op == "Relu") return broadcast(in, [](auto& a) { return std::max(a[0], 0.0); });
    if (op == "Sqrt") return broadcast(in, [](auto& a) { return std::sqrt(a[0]); });
    if (op == "Add") return broadcast(in, [](auto& a) { return a[0] + a[1]; });
    if (op == "Sub") return broadcast(in, [](auto& a) { return a[0] - a[1]; });
    if (op == "Mul") return broadcast(in, [](auto& a) { return a[0] * a[1]; });
    if (op == "Div") return broadcast(in, [](auto& a) { return a[0] / a[1]; });
    if (op == "Max") return broadcast(in, [](auto& a) { return std::max(a[0], a[1]); });
    if (op == "Expand") {
      EvalTensor ones;  // broadcast against a tensor of the requested shape
      ones.shape.assign(in[1]->v.begin(), in[1]->v.end());
      ones.v.assign(ones.size(), 0.0);
      return broadcast({in[0], &ones}, [](auto& a) { return a[0]; });
    }
    if (op == "ReduceMax" || op == "ReduceMean" || op == "ReduceSum") {
      const auto it = n.attributes.find("axes");
      std::vector<int64_t> axes;
      if (it != n.attributes.end()) axes = it->second.ints;
      else axes.assign(in.at(1)->v.begin(), in.at(1)->v.end());
      if (axes.size() != 1) throw std::runtime_error(op + ": one axis expected");
      return reduce(*in[0], axes[0], attr_i(n, "keepdims", 1) != 0, op);
    }
    if (op == "Conv") return conv(*in[0], *in[1], *in[2]);
    if (op == "Gemm") {
      if (attr_i(n, "transB", 0) != 1 || attr_i(n, "transA", 0) != 0) throw std::runtime_error("Gemm: transB only");
      const EvalTensor &x = *in[0], &w = *in[1], &b = *in[2];
      const int64_t M = x.shape[0], K = x.shape[1], O = w.shape[0];
      EvalTensor out{{M, O}, std::vector<double>(M * O), false};
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < O; ++o) {
          double acc = b.v[o];
          for (int64_t k = 0; k < K; ++k) acc += x.v[m * K + k] * w.v[o * K + k];
          out.v[m * O + o] = acc;
        }
      return out;
    }
    if (op == "BatchNormalization") {
      const EvalTensor& x = *in[0];
      const double eps = n.attributes.count("epsilon") ? n.attributes.at("epsilon").f : 1e-5;
      const int64_t C = x.shape[1], inner = x.size() / (x.shape[0] * C);
      EvalTensor out = x;
      for (int64_t i = 0; i < x.size(); ++i) {
        const int64_t c = (i / inner) % C;
        out.v[i] = (x.v[i] - in[3]->v[c]) / std::sqrt(in[4]->v[c] + eps) * in[1]->v[c] + in[2]->v[c];
      }
      return out;
    }
    if (op == "MatMul") {  // (B, M, K) x (B, K, N), batched
      const EvalTensor &a = *in[0], &b = *in[1];
      const int64_t B = a.shape[0], M = a.shape[1], K = a.shape[2], N = b.shape[2];
      if (a.shape.size() != 3 || b.shape.size() != 3 || b.shape[0] != B || b.shape[1] != K)
        throw std::runtime_error("MatMul: (B,M,K) x (B,K,N) expected");
      EvalTensor out{{B, M, N}, std::vector<double>(B * M * N), false};
      for (int64_t bb = 0; bb < B; ++bb)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t j = 0; j < N; ++j) {
            double acc = 0;
            for (int64_t k = 0; k < K; ++k) acc += a.v[(bb * M + m) * K + k] * b.v[(bb * K + k) * N + j];
            out.v[(bb * M + m) * N + j] = acc;
          }
      return out;
    }
    if (op == "Transpose") {
      const EvalTensor& x = *in[0];
      const std::vector<int64_t> perm = n.attributes.at("perm").ints;
      EvalTensor out;
      out.is_int = x.is_int;
      for (int64_t p : perm) out.shape.push_back(x.shape[p]);
      out.v.resize(x.size());
      const auto xs = strides(x.shape), os = strides(out.shape);
      for (int64_t idx = 0; idx < out.size(); ++idx) {
        int64_t off = 0;
        for (size_t i = 0; i < perm.size(); ++i) off += ((idx / os[i]) % out.shape[i]) * xs[perm[i]];
        out.v[idx] = x.v[off];
      }
      return out;
    }
    if (op == "Reshape") {
      EvalTensor out = *in[0];
      out.shape.assign(in[1]->v.begin(), in[1]->v.end());
      int64_t known = 1, unknown = -1;
      for (size_t i = 0; i < out.shape.size(); ++i) {
        if (out.shape[i] == 0) out.shape[i] = in[0]->shape.at(i);  // allowzero = 0: copy
        if (out.shape[i] == -1) unknown = static_cast<int64_t>(i);
        else known *= out.shape[i];
      }
      if (unknown >= 0) out.shape[unknown] = in[0]->size() / known;
      if (out.size() != in[0]->size()) throw std::runtime_error("Reshape: size changes");
      return out;
    }
    if (op == "Unsqueeze") {
      EvalTensor out = *in[0];
      std::vector<int64_t> axes(in[1]->v.begin(), in[1]->v.end());
      std::sort(axes.begin(), axes.end());
      for (int64_t a : axes) out.shape.insert(out.shape.begin() + norm_axis(a, out.shape.size() + 1), 1);
      return out;
    }
    if (op == "Shape") {
      EvalTensor out{{static_cast<int64_t>(in[0]->shape.size())}, {}, true};
      out.v.assign(in[0]->shape.begin(), in[0]->shape.end());
      return out;
    }
    if (op == "Gather") {  // 1-D data, 1-D indices, axis 0
      if (attr_i(n, "axis", 0) != 0 || in[0]->shape.size() != 1) throw std::runtime_error("Gather: 1-D only");
      EvalTensor out{in[1]->shape, {}, in[0]->is_int};
      for (double i : in[1]->v) out.v.push_back(in[0]->v.at(static_cast<size_t>(i < 0 ? i + in[0]->size() : i)));
      return out;
    }
    if (op == "Concat") {
      const int64_t axis = norm_axis(attr_i(n, "axis", 0), in[0]->shape.size());
      EvalTensor out;
      out.is_int = in[0]->is_int;
      out.shape = in[0]->shape;
      out.shape[axis] = 0;
      for (auto* t : in) out.shape[axis] += t->shape[axis];
      int64_t outer = 1;
      for (int64_t i = 0; i < axis; ++i) outer *= out.shape[i];
      for (int64_t o = 0; o < outer; ++o)
        for (auto* t : in) {
          const int64_t chunk = t->size() / outer;
          out.v.insert(out.v.end(), t->v.begin() + o * chunk, t->v.begin() + (o + 1) * chunk);
        }
      return out;
    }
    if (op == "LogSoftmax") {
      const EvalTensor& x = *in[0];
      const int64_t axis = norm_axis(attr_i(n, "axis", -1), x.shape.size());
      if (axis != static_cast<int64_t>(x.shape.size()) - 1) throw std::runtime_error("LogSoftmax: last axis only");
      const int64_t K = x.shape.back(), rows = x.size() / K;
      EvalTensor out = x;
      for (int64_t r = 0; r < rows; ++r) {
        const double* row = &x.v[r * K];
        const double mx = *std::max_element(row, row + K);
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += std::exp(row[k] - mx);
        for (int64_t k = 0; k < K; ++k) out.v[r * K + k] = row[k] - mx - std::log(sum);
      }
      return out;
    }
    throw std::runtime_error("evaluator: unsupported op " + op);
  }

  static EvalTensor conv(const EvalTensor& x, const EvalTensor& w, const EvalTensor& b) {
    // Kernel 1 over (B, C, N): out[b, o, n] = bias[o] + sum_c w[o, c] x[b, c, n].
    const int64_t B = x.shape[0], C = x.shape[1], N = x.shape[2], O = w.shape[0];
    if (w.shape.size() != 3 || w.shape[1] != C || w.shape[2] != 1) throw std::runtime_error("Conv: kernel 1 only");
    EvalTensor out{{B, O, N}, std::vector<double>(B * O * N), false};
    for (int64_t bb = 0; bb < B; ++bb)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t nn = 0; nn < N; ++nn) {
          double acc = b.v[o];
          for (int64_t c = 0; c < C; ++c) acc += w.v[o * C + c] * x.v[(bb * C + c) * N + nn];
          out.v[(bb * O + o) * N + nn] = acc;
        }
    return out;
  }

  const OnnxModel& model_;
};

}  // namespace pointnet::testing
