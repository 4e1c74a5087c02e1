/* qemu_plugin_api.h: the part of QEMU's TCG plugin API that profile_plugin.c uses, declared
 * from the documented signatures (QEMU's docs/devel/tcg-plugins.rst and the API reference of
 * include/qemu/qemu-plugin.h). Debian ships no qemu-plugin.h, and these few declarations are
 * the same in API version 1 (QEMU 7.2) and versions 2-4 (QEMU 9.0-10.0): plain C, resolved at
 * load time against the QEMU binary, which exports them.
 *
 * Only pointers to qemu_info_t and struct qemu_plugin_tb are passed, never dereferenced here,
 * so their layouts (which did change between versions) do not matter.
 */
#ifndef PROFILE_QEMU_PLUGIN_API_H
#define PROFILE_QEMU_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Identifies this plugin in registration calls. */
typedef uint64_t qemu_plugin_id_t;

/* What QEMU tells the plugin at install time (not read here). */
struct qemu_info;

/* A translation block being translated; valid only inside the translation callback. */
struct qemu_plugin_tb;

/* Which CPU registers a callback reads or writes: none here. */
enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS = 0,
};

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

/* Called by QEMU once the plugin is loaded; non-zero refuses to start. */
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info *info,
                                           int argc, char **argv);

/* cb runs whenever a translation block is translated (before it first executes). */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);

/* Inside the translation callback: cb runs each time that block starts executing. */
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);

/* The number of guest instructions in the block, and the guest virtual address of its first. */
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

/* cb runs when QEMU exits. */
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

#endif
