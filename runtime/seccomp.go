package runtime

import "fmt"

// loadSeccomp installs the spec's seccomp filter as the last step before
// execve.
func loadSeccomp(cfg *initConfig) error {
	if cfg.Spec == nil || cfg.Spec.Linux == nil || cfg.Spec.Linux.Seccomp == nil {
		return nil
	}
	return fmt.Errorf("linux.seccomp is not supported yet")
}
