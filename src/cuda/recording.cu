// Recorded steps (model/backend.h: begin_recording .. replay) as CUDA graphs
// of the backend's one stream, and the pinned host slots the queued results
// (queue_nll_loss and friends) are copied into.
//
// A recording is a stream capture in thread-local mode: the ops are captured,
// not run. Anything that must wait for the stream or free memory while
// capturing (a grow-only scratch slot that grows, a download) fails the
// capture; end_recording() then ends it, clears the error and throws, and the
// backend is as it was before begin_recording() (nothing ran).
#include "cuda/cuda_common.cuh"

namespace pointnet {

char* CudaBackend::State::host_results_for(size_t bytes) {
  if (bytes > host_results_bytes) {
    if (host_results) {
      CUDA_CHECK(cudaStreamSynchronize(stream));  // a queued copy may still target it
      CUDA_CHECK(cudaFreeHost(host_results));
      host_results = nullptr;
      host_results_bytes = 0;
    }
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_results), rounded));
    ++allocations;  // recordings must not keep the old address
    host_results_bytes = rounded;
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
  s_->graphs.push_back(exec);
  return static_cast<int>(s_->graphs.size()) - 1;
}

void CudaBackend::replay(int id) {
  if (id < 0 || id >= static_cast<int>(s_->graphs.size()) || !s_->graphs[id])
    fail("CudaBackend::replay: no recording ", id);
  CUDA_CHECK(cudaGraphLaunch(s_->graphs[id], s_->stream));
}

void CudaBackend::forget_recording(int id) {
  if (id < 0 || id >= static_cast<int>(s_->graphs.size()) || !s_->graphs[id]) return;
  CUDA_CHECK(cudaStreamSynchronize(s_->stream));  // a replay may still be running
  CUDA_CHECK(cudaGraphExecDestroy(s_->graphs[id]));
  s_->graphs[id] = nullptr;
}

}  // namespace pointnet
