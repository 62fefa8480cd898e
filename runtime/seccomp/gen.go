package seccomp

// The syscall tables in zsyscalls.go come from the kernel headers of
// linux-libc-dev and golang.org/x/sys; see internal/mksyscalls.
//go:generate go run ./internal/mksyscalls -o zsyscalls.go
