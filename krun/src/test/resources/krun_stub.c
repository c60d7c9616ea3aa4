/* A stand-in for native libkrun with a few functions that echo their arguments, so that a test can check that
 * JNR-FFI passes LibKrun's Java types as the C types of include/libkrun.h (widths, signedness, NULL-terminated
 * arrays, booleans, out-pointers). Built by LibKrunNativeBindingTest with: cc -shared -fPIC -o libkrun.so */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

static int count(const char *const *a) {
    int n = 0;
    if (!a) return -1;
    while (a[n]) n++;
    return n;
}

int32_t krun_create_ctx(void) { return 7; }
int32_t krun_free_ctx(uint32_t ctx) { return ctx == 4000000000u ? 1 : 0; }
int32_t krun_set_vm_config(uint32_t ctx, uint8_t n, uint32_t ram) { return (int32_t)(n * 100000u + ram); }
int32_t krun_set_exec(uint32_t ctx, const char *path, const char *const argv[], const char *const envp[]) {
    return (int32_t)strlen(path) * 10000 + (count(argv) + 1) * 100 + (count(envp) + 1);
}
int32_t krun_add_disk3(uint32_t ctx, const char *id, const char *p, uint32_t fmt, bool ro, bool dio, uint32_t sync) {
    return (int32_t)(fmt * 1000 + ro * 100 + dio * 10 + sync);
}
int32_t krun_has_feature(uint64_t f) { return (int32_t)(f >> 40); }
int32_t krun_set_net_mac(uint32_t ctx, uint8_t *const mac) {
    int s = 0;
    for (int i = 0; i < 6; i++) s += mac[i];
    return s;
}
int32_t krun_display_set_physical_size(uint32_t ctx, uint32_t id, uint16_t w, uint16_t h) { return w + (h == 1 ? 0 : 1000000); }
int32_t krun_add_vhost_user_device(uint32_t ctx, uint32_t type, const char *sock, const char *name, uint16_t nq,
                                   const uint16_t *qs) {
    int s = 0;
    if (qs) for (int i = 0; i < nq; i++) s += qs[i];
    return s + (name ? 0 : 1000000);
}
int32_t krun_get_default_init(const uint8_t **out, size_t *len) {
    static const uint8_t d[] = "hello";
    *out = d;
    *len = 5;
    return 0;
}
int32_t krun_setuid(uint32_t ctx, uid_t uid) { return (int32_t)uid; }
int32_t krun_set_tsi_scope(uint32_t ctx, const char *ip, const char *subnet, uint8_t scope) { return scope + (ip ? 0 : 100); }
int32_t krun_fs_add_overlay_file(uint32_t ctx, const char *tag, const char *path, const uint8_t *data, size_t len,
                                 uint32_t mode, bool one_shot) {
    return data[len - 1] + (int32_t)mode + (one_shot ? 10000 : 0);
}
int32_t krun_set_gpu_options2(uint32_t ctx, uint32_t flags, uint64_t shm) { return (int32_t)(shm >> 33); }
int32_t krun_init_log(int target_fd, uint32_t level, uint32_t style, uint32_t options) { return target_fd; }
