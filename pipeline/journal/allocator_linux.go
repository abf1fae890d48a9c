//go:build linux && cgo && amd64

package journal

// DuckDB's linux-amd64 build (duckdb-go-bindings) links jemalloc under the prefix
// duckdb_je_; its mallctl is how the decay is read and set at run time
// (DUCKDB_JE_MALLOC_CONF is read once, before main runs).

/*
#include <stdlib.h>
#include <sys/types.h>
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

static int paybatch_je_set_ssize(const char *name, long v) {
	ssize_t x = (ssize_t)v;
	return duckdb_je_mallctl(name, NULL, NULL, &x, sizeof(x));
}
static int paybatch_je_get_ssize(const char *name, long *v) {
	ssize_t x;
	size_t n = sizeof(x);
	int rc = duckdb_je_mallctl(name, &x, &n, NULL, 0);
	*v = (long)x;
	return rc;
}
static int paybatch_je_get_uint(const char *name, unsigned *v) {
	size_t n = sizeof(*v);
	return duckdb_je_mallctl(name, v, &n, NULL, 0);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

func mallctlName(name string) (*C.char, func()) {
	cs := C.CString(name)
	return cs, func() { C.free(unsafe.Pointer(cs)) }
}

// allocatorDecay is the dirty-page decay new arenas get.
func allocatorDecay() (time.Duration, error) {
	cs, free := mallctlName("arenas.dirty_decay_ms")
	defer free()
	var ms C.long
	if rc := C.paybatch_je_get_ssize(cs, &ms); rc != 0 {
		return decayUnknown, fmt.Errorf("journal: allocator: arenas.dirty_decay_ms: %w", syscall.Errno(rc))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// setAllocatorDecay sets the dirty and muzzy page decay of jemalloc's
// arenas, those in use and those created later.
func setAllocatorDecay(d time.Duration) error {
	if d == decayUnknown {
		return nil
	}
	ms := C.long(d.Milliseconds())
	set := func(name string) error {
		cs, free := mallctlName(name)
		defer free()
		if rc := C.paybatch_je_set_ssize(cs, ms); rc != 0 {
			return fmt.Errorf("journal: allocator: %s: %w", name, syscall.Errno(rc))
		}
		return nil
	}
	cs, free := mallctlName("arenas.narenas")
	defer free()
	var n C.unsigned
	if rc := C.paybatch_je_get_uint(cs, &n); rc != 0 {
		return fmt.Errorf("journal: allocator: arenas.narenas: %w", syscall.Errno(rc))
	}
	for _, name := range []string{"arenas.dirty_decay_ms", "arenas.muzzy_decay_ms"} {
		if err := set(name); err != nil {
			return err
		}
	}
	for i := range int(n) {
		for _, k := range []string{"dirty_decay_ms", "muzzy_decay_ms"} {
			// An arena not created yet (EFAULT) takes arenas.* when it is.
			if err := set(fmt.Sprintf("arena.%d.%s", i, k)); err != nil && !errors.Is(err, syscall.EFAULT) {
				return err
			}
		}
	}
	return nil
}
