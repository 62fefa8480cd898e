package runtime

import (
	"strings"
	"testing"
)

func TestDecodeSpecSkipsSeccomp(t *testing.T) {
	spec, raw, err := decodeSpec([]byte(`{"ociVersion":"1.2.0","hostname":"h",
		"linux":{"maskedPaths":["/proc/kcore"],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Hostname != "h" || spec.Linux == nil || len(spec.Linux.MaskedPaths) != 1 {
		t.Fatalf("fields lost: %+v", spec)
	}
	if spec.Linux.Seccomp != nil {
		t.Fatalf("seccomp decoded: %+v", spec.Linux.Seccomp)
	}
	if !strings.HasPrefix(string(raw), `{"defaultAction":"SCMP_ACT_ERRNO"`) {
		t.Fatalf("raw seccomp section %q", raw)
	}
	if _, _, err := decodeSpec([]byte(`{"linux":{"seccomp":{`)); err == nil {
		t.Fatal("malformed config accepted")
	}
}

func TestWithoutSection(t *testing.T) {
	config := []byte(`{"annotations":{"a":"{\"defaultAction\":1}"},"linux":{"seccomp":{"defaultAction":1},"sysctl":{}}}`)
	_, raw, err := decodeSpec(config)
	if err != nil {
		t.Fatal(err)
	}
	got := string(withoutSection(config, raw))
	want := `{"annotations":{"a":"{\"defaultAction\":1}"},"linux":{"seccomp":null,"sysctl":{}}}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if string(withoutSection(config, nil)) != string(config) {
		t.Fatal("no section changed the config")
	}
}
