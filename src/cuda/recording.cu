// Recorded steps (model/backend.h: begin_recording .. replay) as CUDA graphs
// of the backend's one stream, and the pinned host slots the queued results
// (queue_nll_loss and friends) are copied into.
//
// A recording is a stream capture in thread-local mode: the ops are captured,
// not run. Anything that must wait for the stream or free memory while
// capturing (a grow-only scratch slot that grows, a download) fails the
// capture; end_recording() then ends it, clears the error and throws, and the
// backend is as it was before begin_recording() (nothing ran).
#include <cstring>

#include "cuda/cuda_common.cuh"

namespace pointnet {

char* CudaBackend::State::host_results_for(size_t bytes) {
  if (bytes > host_results_bytes) {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    char* grown = nullptr;
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&grown), rounded));
    std::memset(grown, 0, rounded);
    if (host_results) {
      // Results queued before this one (the loss, when the regulariser's norms
      // need more room) have landed once the stream is done: carry them over.
      CUDA_CHECK(cudaStreamSynchronize(stream));
      std::memcpy(grown, host_results, host_results_bytes);
      CUDA_CHECK(cudaFreeHost(host_results));
    }
    host_results = grown;
    host_results_bytes = rounded;
    ++allocations;  // recordings must not keep the old address
  }
  return host_results;
}

void CudaBackend::begin_recording() {
  if (s_->recording) fail("CudaBackend::begin_recording: already recording");
  CUDA_CHECK(cudaStreamBeginCapture(s_->stream, cudaStreamCaptureModeThreadLocal));
  s_->recording = true;
  s_->allocations_at_recording = s_->allocations;
}

int CudaBackend::end_recording() {
  if (!s_->recording) fail("CudaBackend::end_recording: not recording");
  s_->recording = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(s_->stream, &graph);
  (void)cudaGetLastError();  // an op that broke the capture left its error here
  if (ended != cudaSuccess || !graph) {
    if (graph) cudaGraphDestroy(graph);
    fail("CUDA graph capture failed (", cudaGetErrorString(ended), "): an op waited for the stream or freed memory");
  }
  if (s_->allocations != s_->allocations_at_recording) {
    cudaGraphDestroy(graph);
    fail("CUDA graph capture failed: memory was allocated while recording (buffers of this shape were not ready)");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (made != cudaSuccess) {
    (void)cudaGetLastError();
    fail("CUDA graph instantiation failed: ", cudaGetErrorString(made));
  }
  s_->graphs.push_back({exec, s_->queued_rows, s_->queued_classes, s_->queued_clouds});
  return static_cast<int>(s_->graphs.size()) - 1;
}

void CudaBackend::replay(int id) {
  if (id < 0 || id >= static_cast<int>(s_->graphs.size()) || !s_->graphs[id].exec)
    fail("CudaBackend::replay: no recording ", id);
  const State::Recorded& r = s_->graphs[id];
  CUDA_CHECK(cudaGraphLaunch(r.exec, s_->stream));
  // The results are read as the recorded queue_* calls left them to be read,
  // whatever was queued in between (an evaluation's loss, say).
  s_->queued_rows = r.rows;
  s_->queued_classes = r.classes;
  s_->queued_clouds = r.clouds;
}

void CudaBackend::forget_recording(int id) {
  if (id < 0 || id >= static_cast<int>(s_->graphs.size()) || !s_->graphs[id].exec) return;
  CUDA_CHECK(cudaStreamSynchronize(s_->stream));  // a replay may still be running
  CUDA_CHECK(cudaGraphExecDestroy(s_->graphs[id].exec));
  s_->graphs[id].exec = nullptr;
}

}  // namespace pointnet
