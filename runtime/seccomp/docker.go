package seccomp

import (
	"encoding/json"
	"fmt"

	dockerseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DockerDefault is Docker's default profile for a container whose
// bounding set is caps.
func DockerDefault(caps []string) (*specs.LinuxSeccomp, error) {
	return FromDockerProfile(dockerseccomp.DefaultProfile(), caps)
}

// FromDockerProfile turns a Docker seccomp profile into linux.seccomp for
// a container whose bounding capability set is caps, on this host: rules
// are kept or dropped by their includes/excludes (caps, arch, minimum
// kernel), and archMap picks the native architecture and its
// sub-architectures. p is not modified.
func FromDockerProfile(p *dockerseccomp.Seccomp, caps []string) (*specs.LinuxSeccomp, error) {
	// moby's converter appends to the profile it is given; feeding it a
	// copy through JSON keeps p as it was.
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("seccomp: encode docker profile: %w", err)
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	s, err := dockerseccomp.LoadProfile(string(body), rs)
	if err != nil {
		return nil, fmt.Errorf("seccomp: docker profile: %w", err)
	}
	return s, nil
}
