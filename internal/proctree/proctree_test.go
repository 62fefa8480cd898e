package proctree

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestParseStat(t *testing.T) {
	st, err := parseStat(7, "7 (a) b) c) Z 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0")
	if err != nil || st.State != 'Z' || st.PPid != 1 || st.StartTime != 12345 {
		t.Fatalf("parseStat = %+v, %v", st, err)
	}
	for _, bad := range []string{"7 no-paren", "7 (x) R 1", "7 (x) R notanumber 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1"} {
		if _, err := parseStat(7, bad); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }() // the test's own child
	if !slices.Contains(Descendants(os.Getpid()), cmd.Process.Pid) {
		t.Fatalf("Descendants(%d) misses child %d", os.Getpid(), cmd.Process.Pid)
	}
	st, err := ReadStat(cmd.Process.Pid)
	if err != nil || st.PPid != os.Getpid() {
		t.Fatalf("ReadStat = %+v, %v", st, err)
	}
}
