// Allocation accounting for the fuzz harness: AddressSanitizer calls these hooks on every malloc and free, so the
// harness can assert that no input makes a parser hold more than a fixed multiple of the input's size. Built only
// for `extrapolate-fuzz` (EXTRAPOLATE_FUZZ=1), which links the sanitizer runtime that defines the hook API.
#include "fuzz_support.h"

#include <stdatomic.h>

// The sanitizer runtime's interface (sanitizer/allocator_interface.h), declared here so no header path is needed.
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static atomic_long live;
static atomic_long peak;
static atomic_int enabled;

static void on_malloc(const volatile void *pointer, size_t size) {
    (void)pointer;
    if (!atomic_load_explicit(&enabled, memory_order_relaxed)) return;
    long now = atomic_fetch_add(&live, (long)size) + (long)size;
    long seen = atomic_load(&peak);
    while (now > seen && !atomic_compare_exchange_weak(&peak, &seen, now)) {
    }
}

static void on_free(const volatile void *pointer) {
    if (!pointer || !atomic_load_explicit(&enabled, memory_order_relaxed)) return;
    atomic_fetch_sub(&live, (long)__sanitizer_get_allocated_size(pointer));
}

void fuzz_hooks_install(void) { __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free); }

void fuzz_measure_begin(void) {
    atomic_store(&live, 0);
    atomic_store(&peak, 0);
    atomic_store(&enabled, 1);
}

long fuzz_measure_end(void) {
    atomic_store(&enabled, 0);
    return atomic_load(&peak);
}
