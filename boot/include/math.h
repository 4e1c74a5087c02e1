/* The libm subset wasm2c's output calls; implemented in boot/runtime.c without FPU-only
 * instructions that the 68040 lacks (fint/fintrz are emulated by QEMU but trap on silicon). */
#ifndef BOOT_MATH_H
#define BOOT_MATH_H
#define NAN (__builtin_nanf(""))
#define INFINITY (__builtin_inff())
#define isnan(x) __builtin_isnan(x)
#define signbit(x) __builtin_signbit(x)
double floor(double); float floorf(float);
double ceil(double); float ceilf(float);
double trunc(double); float truncf(float);
double nearbyint(double); float nearbyintf(float);
double sqrt(double); float sqrtf(float);
double fabs(double); float fabsf(float);
#endif
