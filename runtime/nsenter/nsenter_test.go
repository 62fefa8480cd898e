package nsenter

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests run in every build; the kernel tests are in kernel_test.go.

func TestEnvValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"no path", Config{StatusFd: 3}, "no user or time namespace"},
		{"time twice", Config{TimeNS: "/t", StatusFd: 3, Unshare: unix.CLONE_NEWTIME}, "both"},
		{"stdio fd", Config{UserNS: "/x", StatusFd: 2}, "status fd 2"},
		{"newuser", Config{UserNS: "/x", StatusFd: 3, Unshare: unix.CLONE_NEWUSER}, "cannot unshare"},
		{"offsets without timens", Config{UserNS: "/x", StatusFd: 3, TimeOffsets: "monotonic 1 0\n"}, "without CLONE_NEWTIME"},
		{"oom range", Config{UserNS: "/x", StatusFd: 3, OOMScoreAdj: intp(1001)}, "out of"},
	} {
		if _, err := Env(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	env, err := Env(Config{UserNS: "/proc/7/ns/user", StatusFd: 5, Unshare: unix.CLONE_NEWNET | unix.CLONE_NEWTIME,
		OOMScoreAdj: intp(-5), TimeOffsets: "monotonic 1 0\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{envFd + "=5", envUserNS + "=/proc/7/ns/user", envUnshare + "=1073741952", envOOM + "=-5", envTimeOffsets + "=monotonic 1 0\n"}
	if strings.Join(env, "|") != strings.Join(want, "|") {
		t.Fatalf("Env = %q, want %q", env, want)
	}
}

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		in      string
		pid     int
		wantErr string
	}{
		{"ok\n", 42, ""},
		{"pid 77\n", 77, ""},
		{"error /x is not a user namespace\n", 0, "nsenter: /x is not a user namespace"},
		{"", 0, "without joining"},
		{"pid -1\n", 0, "unexpected"},
		{"ok\nok\n", 0, "unexpected"},
		{"hello\n", 0, "unexpected"},
	} {
		pid, err := parseReport([]byte(tc.in), 42)
		if tc.wantErr == "" {
			if err != nil || pid != tc.pid {
				t.Errorf("%q: pid %d err %v, want %d", tc.in, pid, err, tc.pid)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func intp(v int) *int { return &v }
