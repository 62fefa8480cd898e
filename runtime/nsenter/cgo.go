//go:build cgo && linux

package nsenter

// The constructor is nsenter.c; this import is what makes the go tool
// compile it and link it into every binary that imports the package.

// #cgo CFLAGS: -Wall -Wextra -O2
import "C"

// available: this build carries the constructor.
const available = true
