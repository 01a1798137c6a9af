/* A CPU stand-in for the CUDA runtime calls the GPU ring's host code makes (streams, events,
 * async copies, device memory as host memory), so src/cp/ring_gpu.cu compiled with -DLCG_EMU
 * runs its real protocol here, several PEs as threads of one process. A stream is a worker
 * thread running its queue in order; an event remembers the stream position of its last
 * record; waits between streams block the waiting worker. Random pauses (EMU_JITTER) shake
 * the interleavings. */
#ifndef LONGCTX_CUDA_EMU_RT_H
#define LONGCTX_CUDA_EMU_RT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900
} cudaError_t;
typedef enum { cudaMemcpyDeviceToDevice = 3 } cudaMemcpyKind;
typedef enum { cudaStreamCaptureModeRelaxed = 2 } cudaStreamCaptureMode;
#define cudaStreamNonBlocking 0x1
#define cudaEventDisableTiming 0x2

struct EmuStream {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::function<void()>> q;
    bool busy = false, stop = false;
    std::thread worker;
    unsigned seed = 1;
};
typedef EmuStream *cudaStream_t;

struct EmuEvent {
    std::atomic<uint64_t> recorded{0}, done{0};
};
typedef EmuEvent *cudaEvent_t;
typedef struct EmuGraph *cudaGraph_t;
typedef struct EmuGraphExec *cudaGraphExec_t;

/* The PE context of the calling host thread: its default stream and all its streams. */
struct EmuPE {
    int id = -1; /* the test's PE number, for its race checks */
    EmuStream *dflt = nullptr;
    std::vector<EmuStream *> streams;
    std::mutex m;
};
inline thread_local EmuPE *g_emu_pe = nullptr;
/* The test may watch reads that stream work makes of memory a peer could overwrite. */
inline void (*g_emu_read_begin)(int pe, const void *p, size_t n) = nullptr;
inline void (*g_emu_read_end)(int pe, const void *p, size_t n) = nullptr;
inline std::atomic<int> g_emu_jitter_us{0};

inline void emu_jitter(unsigned &seed) {
    int j = g_emu_jitter_us.load();
    if (j > 0) {
        seed = seed * 1103515245u + 12345u;
        int us = (int)((seed >> 8) % (unsigned)(j + 1));
        if (us > j / 2) std::this_thread::sleep_for(std::chrono::microseconds(us));
    }
}

inline void emu_stream_loop(EmuStream *s) {
    for (;;) {
        std::function<void()> f;
        {
            std::unique_lock<std::mutex> l(s->m);
            s->cv.wait(l, [&] { return s->stop || !s->q.empty(); });
            if (s->q.empty() && s->stop) return;
            f = std::move(s->q.front());
            s->q.pop_front();
            s->busy = true;
        }
        emu_jitter(s->seed);
        f();
        {
            std::lock_guard<std::mutex> l(s->m);
            s->busy = false;
        }
        s->cv.notify_all();
    }
}

inline EmuStream *emu_new_stream() {
    EmuStream *s = new EmuStream;
    static std::atomic<unsigned> seeds{7};
    s->seed = seeds.fetch_add(7919);
    s->worker = std::thread(emu_stream_loop, s);
    std::lock_guard<std::mutex> l(g_emu_pe->m);
    g_emu_pe->streams.push_back(s);
    return s;
}

inline EmuStream *emu_resolve(cudaStream_t s) {
    if (s) return s;
    if (!g_emu_pe->dflt) g_emu_pe->dflt = emu_new_stream();
    return g_emu_pe->dflt;
}

inline void emu_stream_op(cudaStream_t s, std::function<void()> f) {
    EmuStream *st = emu_resolve(s);
    {
        std::lock_guard<std::mutex> l(st->m);
        st->q.push_back(std::move(f));
    }
    st->cv.notify_all();
}

inline void emu_stream_drain(EmuStream *s) {
    std::unique_lock<std::mutex> l(s->m);
    s->cv.wait(l, [&] { return s->q.empty() && !s->busy; });
}

inline void emu_pe_begin() { g_emu_pe = new EmuPE; }
inline void emu_pe_end() {
    for (EmuStream *s : g_emu_pe->streams) {
        emu_stream_drain(s);
        {
            std::lock_guard<std::mutex> l(s->m);
            s->stop = true;
        }
        s->cv.notify_all();
        s->worker.join();
        delete s;
    }
    delete g_emu_pe;
    g_emu_pe = nullptr;
}

inline const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaMalloc(void *p, size_t bytes) {
    *(void **)p = calloc(1, bytes ? bytes : 1);
    return cudaSuccess;
}
inline cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
    std::vector<EmuStream *> ss;
    {
        std::lock_guard<std::mutex> l(g_emu_pe->m);
        ss = g_emu_pe->streams;
    }
    for (EmuStream *s : ss) emu_stream_drain(s);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void *p, int v, size_t n) {
    cudaDeviceSynchronize();
    memset(p, v, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    emu_stream_op(s, [=] { memset(p, v, n); });
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *src, size_t n, cudaMemcpyKind, cudaStream_t s) {
    emu_stream_op(s, [=] { memcpy(d, src, n); });
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = emu_new_stream();
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; } /* reaped at PE end */
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    emu_stream_drain(emu_resolve(s));
    return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = new EmuEvent;
    return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    const uint64_t gen = e->recorded.fetch_add(1) + 1;
    emu_stream_op(s, [=] {
        uint64_t cur = e->done.load();
        while (cur < gen && !e->done.compare_exchange_weak(cur, gen)) {
        }
    });
    return cudaSuccess;
}
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    const uint64_t gen = e->recorded.load();
    emu_stream_op(s, [=] {
        while (e->done.load() < gen) std::this_thread::yield();
    });
    return cudaSuccess;
}
/* Capture is not emulated: the ring's fallback to eager launches is what runs. */
inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { return cudaErrorStreamCaptureUnsupported; }
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    *g = nullptr;
    return cudaErrorStreamCaptureUnsupported;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *, cudaGraph_t, unsigned long long) { return cudaErrorNotSupported; }
inline cudaError_t cudaGraphDestroy(cudaGraph_t) { return cudaSuccess; }
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t) { return cudaSuccess; }
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { return cudaErrorNotSupported; }

#endif
