//go:build !cgo || !linux

package nsenter

// available: without cgo there is no constructor, and Env says so.
const available = false
