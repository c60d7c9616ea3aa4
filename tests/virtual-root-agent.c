/*
 * The workload of ApiE2E's virtual-root case: a static program served from memory as a one-shot virtual file in a
 * root that has no host directory (krun_add_virtiofs3 with a NULL path plus krun_fs_add_overlay_file/dir). It checks
 * what the guest sees of those entries, prints "ok"/"FAIL" lines, and exits 23 when all passed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int bad;

static void check(const char *what, int ok)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        bad++;
}

static int reads_as(const char *path, const char *want)
{
    char buf[128] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static int listed(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        found |= strcmp(e->d_name, name) == 0;
    if (d != NULL)
        closedir(d);
    return found;
}

int main(void)
{
    struct stat st;
    check("init.krun is gone after its one lookup", stat("/init.krun", &st) != 0 && errno == ENOENT);
    check("the agent is gone after its one lookup", stat("/agent", &st) != 0 && errno == ENOENT);
    check("marker.txt reads as given", reads_as("/marker.txt", "virtual-file-marker-content-12345"));
    check("marker.txt reads the same again", reads_as("/marker.txt", "virtual-file-marker-content-12345"));
    check("a file two virtual directories deep", reads_as("/etc/nested/deep.txt", "deep-nested-content"));
    int w = open("/marker.txt", O_WRONLY);
    int werr = errno;
    if (w >= 0 || werr != EACCES)
        printf("open(/marker.txt, O_WRONLY): %d, %s\n", w, strerror(werr));
    check("opening a virtual file for writing is EACCES", w < 0 && werr == EACCES);
    check("mkdir in the root is refused", mkdir("/newdir", 0755) != 0);
    check("unlink of a virtual file is refused", unlink("/marker.txt") != 0 && stat("/marker.txt", &st) == 0);
    check("testdata.bin is 8192 bytes, mode 0444", stat("/testdata.bin", &st) == 0 && st.st_size == 8192
          && (st.st_mode & 07777) == 0444 && S_ISREG(st.st_mode));
    int fd = open("/testdata.bin", O_RDONLY);
    unsigned char buf[100];
    int range = fd >= 0 && pread(fd, buf, sizeof buf, 5000) == (ssize_t)sizeof buf;
    for (int i = 0; range && i < (int)sizeof buf; i++)
        range = buf[i] == (5000 + i) % 251;
    check("a range read at 5000 of testdata.bin", range);
    range = fd >= 0 && pread(fd, buf, sizeof buf, 8150) == 42;
    check("a read across the end is short", range);
    if (fd >= 0)
        close(fd);
    check("init mounted devtmpfs on the virtual /dev", stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    check("init mounted proc on the virtual /proc", stat("/proc/self/status", &st) == 0);
    check("the root lists marker.txt and etc", listed("/", "marker.txt") && listed("/", "etc"));
    check("the root no longer lists the one-shot agent", !listed("/", "agent"));
    check("/etc lists nested", listed("/etc", "nested"));
    printf("virtual-root-done %d\n", bad);
    fflush(stdout);
    return bad ? 1 : 23;
}
