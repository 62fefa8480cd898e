// Package podman holds integration tests (root, real kernel) that drive
// podman with `--runtime` pointing at capsa-runtime, and at runc as the
// reference: every case runs with runc first, then with capsa-runtime, and
// the two must agree on output and exit code. See docs/benchmarks.md.
package podman
