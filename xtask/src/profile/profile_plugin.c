/* profile_plugin.c: the QEMU TCG plugin behind `cargo xtask profile`.
 *
 * Counts, per translation block, how many times it started executing; the xtask multiplies
 * by the block's instruction count and attributes the product to the kernel function the
 * block starts in (kernel.elf's symbols). Built by the xtask with the host C compiler, once
 * per plugin API version (-DPLUGIN_API_VERSION=N: QEMU 7.2 accepts 0-1, QEMU 10.0 2-4).
 *
 * Arguments (-plugin FILE,out=PATH[,begin=0xADDR,end=0xADDR]):
 *   out    the file written at exit (QEMU's stdout is the guest console)
 *   begin  count only from the start of the block at this address (a function's entry) ...
 *   end    ... up to, not including, the start of the block at this address.
 *          Without begin/end everything from reset to exit is counted.
 *
 * Blocks are keyed by (start address, instruction count): QEMU may translate the same address
 * again with fewer instructions (under -icount, a block is cut at an I/O instruction), and each
 * translation's executions count with its own length. A block is counted whole when it starts:
 * one left early by an exception is counted as if it had run to its end.
 *
 * Several vCPUs may translate and execute at once (MTTCG): the table is changed only under a
 * mutex; the counters a block's exec callback touches are updated with atomic operations; the
 * window flag is global (on this one-vCPU board that is the benchmark cell's window).
 *
 * Output (text, one record per line; the xtask's parser, profile.rs, checks every line):
 *   m68k-profile 1
 *   window none | window begins=N ends=N
 *   block 0xVADDR INSNS EXECS          (only blocks executed inside the window)
 *   end blocks=N
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

#ifndef PLUGIN_API_VERSION
#error "build with -DPLUGIN_API_VERSION=N (the xtask picks N from the QEMU version)"
#endif

QEMU_PLUGIN_EXPORT int qemu_plugin_version = PLUGIN_API_VERSION;

enum role { ROLE_PLAIN, ROLE_BEGIN, ROLE_END };

struct block {
    uint64_t vaddr;
    uint64_t insns;
    /* Executions inside the window; atomic. */
    uint64_t execs;
    enum role role;
};

/* Open addressing over pointers to blocks: a block, once made, never moves or goes away (its
 * address is the exec callback's userdata), only the pointer array grows. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block **slots;
static size_t n_slots; /* a power of two, or 0 */
static size_t n_blocks;
static int out_of_memory;

static char *out_path;
static int have_window;
static uint64_t begin_addr, end_addr;
/* Whether executions count now (atomic), and how often each marker ran (atomic). */
static int counting = 1;
static uint64_t begins, ends;

static size_t hash(uint64_t vaddr, uint64_t insns)
{
    uint64_t h = (vaddr ^ (insns << 40)) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17);
}

/* Under `lock`. */
static int grow(void)
{
    size_t n = n_slots ? n_slots * 2 : 4096;
    struct block **fresh;
    size_t i;
    if (n < n_slots)
        return -1;
    fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return -1;
    for (i = 0; i < n_slots; i++) {
        struct block *b = slots[i];
        size_t j;
        if (!b)
            continue;
        for (j = hash(b->vaddr, b->insns) & (n - 1); fresh[j]; j = (j + 1) & (n - 1))
            ;
        fresh[j] = b;
    }
    free(slots);
    slots = fresh;
    n_slots = n;
    return 0;
}

/* Under `lock`: the block for (vaddr, insns), made on first sight; NULL if out of memory. */
static struct block *find_or_add(uint64_t vaddr, uint64_t insns)
{
    size_t j;
    struct block *b;
    if ((n_blocks + 1) * 2 > n_slots && grow() != 0)
        return NULL;
    for (j = hash(vaddr, insns) & (n_slots - 1); slots[j]; j = (j + 1) & (n_slots - 1)) {
        if (slots[j]->vaddr == vaddr && slots[j]->insns == insns)
            return slots[j];
    }
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->vaddr = vaddr;
    b->insns = insns;
    b->role = !have_window       ? ROLE_PLAIN
              : vaddr == begin_addr ? ROLE_BEGIN
              : vaddr == end_addr   ? ROLE_END
                                    : ROLE_PLAIN;
    slots[j] = b;
    n_blocks++;
    return b;
}

static void on_exec(unsigned int vcpu_index, void *userdata)
{
    struct block *b = userdata;
    (void)vcpu_index;
    if (b->role == ROLE_BEGIN) {
        __atomic_store_n(&counting, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&begins, 1, __ATOMIC_RELAXED);
    } else if (b->role == ROLE_END) {
        __atomic_store_n(&counting, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&ends, 1, __ATOMIC_RELAXED);
    }
    if (__atomic_load_n(&counting, __ATOMIC_RELAXED))
        __atomic_add_fetch(&b->execs, 1, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
    uint64_t insns = (uint64_t)qemu_plugin_tb_n_insns(tb);
    struct block *b;
    (void)id;
    pthread_mutex_lock(&lock);
    b = find_or_add(vaddr, insns);
    if (!b)
        out_of_memory = 1;
    pthread_mutex_unlock(&lock);
    if (b)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void write_profile(qemu_plugin_id_t id, void *userdata)
{
    FILE *f;
    size_t i, written = 0;
    (void)id;
    (void)userdata;
    pthread_mutex_lock(&lock);
    f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "profile plugin: cannot write %s: %s\n", out_path, strerror(errno));
        pthread_mutex_unlock(&lock);
        return;
    }
    fprintf(f, "m68k-profile 1\n");
    if (out_of_memory)
        fprintf(f, "error out of memory: some blocks were not counted\n");
    if (have_window)
        fprintf(f, "window begins=%" PRIu64 " ends=%" PRIu64 "\n",
                __atomic_load_n(&begins, __ATOMIC_RELAXED),
                __atomic_load_n(&ends, __ATOMIC_RELAXED));
    else
        fprintf(f, "window none\n");
    for (i = 0; i < n_slots; i++) {
        struct block *b = slots[i];
        uint64_t execs;
        if (!b)
            continue;
        execs = __atomic_load_n(&b->execs, __ATOMIC_RELAXED);
        if (execs == 0)
            continue;
        fprintf(f, "block 0x%08" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->insns, execs);
        written++;
    }
    fprintf(f, "end blocks=%zu\n", written);
    if (fclose(f) != 0)
        fprintf(stderr, "profile plugin: cannot write %s: %s\n", out_path, strerror(errno));
    pthread_mutex_unlock(&lock);
}

/* "0x" and 1-16 hex digits, nothing else. */
static int parse_addr(const char *text, uint64_t *out)
{
    char *end;
    size_t len = strlen(text);
    if (len < 3 || len > 18 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
        return -1;
    if (strspn(text + 2, "0123456789abcdefABCDEF") != len - 2)
        return -1;
    errno = 0;
    *out = strtoull(text + 2, &end, 16);
    return errno || *end ? -1 : 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info *info,
                                           int argc, char **argv)
{
    int i, have_begin = 0, have_end = 0;
    (void)info;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "out=", 4) == 0 && a[4]) {
            free(out_path);
            out_path = strdup(a + 4);
            if (!out_path) {
                fprintf(stderr, "profile plugin: out of memory\n");
                return -1;
            }
        } else if (strncmp(a, "begin=", 6) == 0 && parse_addr(a + 6, &begin_addr) == 0) {
            have_begin = 1;
        } else if (strncmp(a, "end=", 4) == 0 && parse_addr(a + 4, &end_addr) == 0) {
            have_end = 1;
        } else {
            fprintf(stderr,
                    "profile plugin: bad argument '%s' (takes out=PATH, begin=0xADDR, end=0xADDR)\n",
                    a);
            return -1;
        }
    }
    if (!out_path) {
        fprintf(stderr, "profile plugin: needs out=PATH\n");
        return -1;
    }
    if (have_begin != have_end || (have_begin && begin_addr == end_addr)) {
        fprintf(stderr, "profile plugin: begin= and end= go together, at different addresses\n");
        return -1;
    }
    have_window = have_begin;
    counting = !have_window;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_profile, NULL);
    return 0;
}
