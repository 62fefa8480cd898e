//go:build cgo

// Package cfront links the C front's config reader and planner
// (cmd/capsa-runtime/front: config.c, create.c) into Go tests, so that a
// fuzz test can hold them against the Go runtime's: whatever config the
// front would create a container from must be one the Go runtime accepts
// and plans identically (runtime/cfront_fuzz_test.go). Only tests import
// it; the runtime binaries do not.
package cfront

// #cgo CFLAGS: -O1 -Wall -Wno-unused-function
// #cgo LDFLAGS: -ljansson
// #include <stdlib.h>
// #include "cfront.h"
import "C"

import "unsafe"

// Plan returns the plan the front would send the init for config (a
// bundle's config.json) and true, or false when the front would hand the
// create to the Go runtime. pid stands for the init's (its cgroups show
// in cgroup mounts).
func Plan(config []byte, bundle string, pid int) ([]byte, bool) {
	if len(config) == 0 {
		return nil, false
	}
	cb := C.CString(bundle)
	defer C.free(unsafe.Pointer(cb))
	var out *C.char
	var n C.size_t
	if C.cfront_plan((*C.char)(unsafe.Pointer(&config[0])), C.size_t(len(config)), cb, C.int(pid), &out, &n) != 0 {
		return nil, false
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), true
}

// DeviceRule is one device cgroup rule as the front reads it: type 'a',
// 'b' or 'c', -1 for any major or minor.
type DeviceRule struct {
	Allow        bool
	Type         byte
	Major, Minor int64
	Access       string
}

// DeviceFilter returns the cgroup v2 device program the front would load
// for rules, as the kernel's struct bpf_insn bytes.
func DeviceFilter(rules []DeviceRule) ([]byte, bool) {
	cr := make([]C.struct_dev_rule, len(rules)+1)
	for i, r := range rules {
		if len(r.Access) > 3 {
			return nil, false
		}
		cr[i].allow = 0
		if r.Allow {
			cr[i].allow = 1
		}
		cr[i].typ = C.char(r.Type)
		cr[i].major, cr[i].minor = C.longlong(r.Major), C.longlong(r.Minor)
		for j := 0; j < len(r.Access); j++ {
			cr[i].access[j] = C.char(r.Access[j])
		}
	}
	var out *C.char
	var n C.size_t
	if C.cfront_device_filter(&cr[0], C.size_t(len(rules)), &out, &n) != 0 {
		return nil, false
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), true
}
