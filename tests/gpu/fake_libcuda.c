/* A stand-in for libcuda.so.1 with one fake GPU, for running bench/gpu_check.sh's GPU part on a
 * host without one (tests/gpu/test_gpu_check.py). It answers the calls bench/gpu_probe.py makes
 * as the real driver did on the GPU machine (../shared/reference/testbed.md): no
 * CUDA_VISIBLE_DEVICES, "0" or the GPU's UUID -> one device; "" or anything else -> cuInit
 * returns CUDA_ERROR_NO_DEVICE (100). Its UUID is FAKE_UUID below, which the stub nvidia-smi
 * beside it prints too. Built with -DLEAKY it ignores CUDA_VISIBLE_DEVICES, as a driver would
 * if the variable never reached the job: the check must then fail. */
#include <stdlib.h>
#include <string.h>

#define FAKE_UUID "GPU-16794395-0123-4567-89ab-cdef01234567"
static const unsigned char uuid_bytes[16] = {0x16, 0x79, 0x43, 0x95, 0x01, 0x23, 0x45, 0x67,
                                             0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};
static int initialised = 0;
static unsigned long long next_pointer = 0x10000;

int cuInit(unsigned int flags) {
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    (void)flags;
#ifndef LEAKY
    if (visible != NULL && strcmp(visible, "0") != 0 && strcmp(visible, FAKE_UUID) != 0)
        return 100;
#else
    (void)visible;
#endif
    initialised = 1;
    return 0;
}
int cuDeviceGetCount(int *count) { if (!initialised) return 3; *count = 1; return 0; }
int cuDeviceGet(int *device, int ordinal) { if (ordinal != 0) return 101; *device = 0; return 0; }
int cuDeviceGetUuid(unsigned char *uuid, int device) {
    if (device != 0) return 101;
    memcpy(uuid, uuid_bytes, 16);
    return 0;
}
int cuDeviceGetUuid_v2(unsigned char *uuid, int device) { return cuDeviceGetUuid(uuid, device); }
int cuDeviceGetName(char *name, int length, int device) {
    (void)device;
    strncpy(name, "Fake H200", (size_t)length);
    return 0;
}
int cuCtxCreate_v2(void **context, unsigned int flags, int device) {
    (void)flags; (void)device;
    *context = (void *)&next_pointer;
    return 0;
}
int cuCtxDestroy_v2(void *context) { (void)context; return 0; }
int cuMemAlloc_v2(unsigned long long *pointer, size_t size) {
    *pointer = next_pointer;
    next_pointer += size;
    return 0;
}
int cuMemFree_v2(unsigned long long pointer) { (void)pointer; return 0; }
int cuGetErrorName(int code, const char **name) {
    *name = code == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
    return 0;
}
