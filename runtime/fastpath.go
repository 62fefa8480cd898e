package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fastpathFile is the record capsa-runtime's C front reads to start and
// delete a container without starting the Go runtime
// (cmd/capsa-runtime/front/front.c). It is derived data, rewritten with
// state.json on every save; the front falls back to this Go runtime when
// it is missing, unreadable or says no.
const fastpathFile = "fastpath"

// stateFmtFile is what `state` prints, with the two parts that change
// marked: the C front fills them in (the pid and the status it derives as
// Status does). The markers are control bytes, which JSON never holds raw.
const stateFmtFile = "state.fmt"

// StateDoc is what `state` and `list --format json` print (runc's shape).
type StateDoc struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// StateDoc is the container's state as `state` prints it.
func (c *Container) StateDoc() StateDoc {
	st := c.OCIState()
	return StateDoc{
		OCIVersion: st.Version, ID: c.ID, Pid: st.Pid, Status: string(st.Status), Bundle: c.Bundle,
		Rootfs: c.Rootfs, Created: c.Created, Owner: c.Owner(), Annotations: st.Annotations,
	}
}

// stateFmt is StateDoc, indented as `state` prints it, with "\x01P" for the
// pid and "\x01S" for the status.
func (c *Container) stateFmt() ([]byte, error) {
	const pidMark, statusMark = -424242, "@capsa-status@"
	doc := StateDoc{
		OCIVersion: specs.Version, ID: c.ID, Pid: pidMark, Status: statusMark, Bundle: c.Bundle,
		Rootfs: c.Rootfs, Created: c.Created, Owner: c.Owner(),
	}
	if c.Spec != nil {
		doc.Annotations = c.Spec.Annotations
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	// The first occurrences are the fields themselves: they come before
	// the annotations, and the id holds no quotes.
	out = bytes.Replace(out, []byte(`"pid": -424242`), []byte("\"pid\": \x01P"), 1)
	out = bytes.Replace(out, []byte(`"status": "`+statusMark+`"`), []byte("\"status\": \"\x01S\""), 1)
	if bytes.Count(out, []byte{1}) != 2 {
		return nil, fmt.Errorf("state format: markers not found")
	}
	return append(out, '\n'), nil
}

// fastpathRecord formats the record: "key value" lines after a magic line.
//   - pid, start: the init and its start time (/proc/PID/stat field 22)
//   - pidns: the init is the init of its own pid namespace, so SIGKILL to it
//     kills the whole container (delete --force)
//   - start-ok: start only has to open the exec fifo (a process is set and
//     there are no poststart hooks)
//   - delete-ok: delete only has to remove the cgroup dirs and the state
//     (no poststop hooks)
//   - freezer: the file that thaws the container's cgroup
//   - cgroup: each cgroup dir to remove, in order
//   - exec-ok: `exec --process` may be done by the front with the C init:
//     what Exec and planEligible would give the C init too (no user or time
//     namespace, a known personality, no seccomp NOTIFY, cgroup paths
//     FromPaths takes)
//   - ns: each namespace type of the config, as the config names it; exec
//     joins the init's namespace of each
//   - personality: the value of linux.personality for the plan (0 or 8)
//   - seccomp: whether the state dir holds a compiled filter (seccomp.bpf)
//     that exec must load
func (c *Container) fastpathRecord() []byte {
	spec := c.Spec
	var b strings.Builder
	fmt.Fprintf(&b, "capsa-fastpath 1\npid %d\nstart %d\n", c.InitPid, c.InitStart)
	pidns := false
	if spec.Linux != nil {
		pidns = slices.ContainsFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
			return ns.Type == specs.PIDNamespace && ns.Path == ""
		})
	}
	hooks := spec.Hooks
	if hooks == nil {
		hooks = &specs.Hooks{}
	}
	startOK := spec.Process != nil && len(hooks.Poststart) == 0
	deleteOK := len(hooks.Poststop) == 0
	var dirs []string
	freezer := ""
	execOK := spec.Linux != nil && c.InitPid > 0
	if _, ok := c.CgroupPaths[""]; ok && len(c.CgroupPaths) > 1 {
		execOK = false // FromPaths refuses a mix of v1 and v2
	}
	for ctrl, p := range c.CgroupPaths {
		// A path the line format cannot carry leaves delete and exec to Go.
		if strings.ContainsAny(p, "\n\x00") || !filepath.IsAbs(p) {
			deleteOK, execOK = false, false
			continue
		}
		if filepath.Clean(p) != p {
			execOK = false
		}
		switch ctrl {
		case "":
			freezer = filepath.Join(p, "cgroup.freeze")
		case "freezer":
			freezer = filepath.Join(p, "freezer.state")
		}
		if !slices.Contains(dirs, p) {
			dirs = append(dirs, p)
		}
	}
	slices.Sort(dirs)
	fmt.Fprintf(&b, "pidns %s\nstart-ok %s\ndelete-ok %s\n", bit(pidns), bit(startOK), bit(deleteOK))
	if freezer != "" {
		fmt.Fprintf(&b, "freezer %s\n", freezer)
	}
	for _, d := range dirs {
		fmt.Fprintf(&b, "cgroup %s\n", d)
	}
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			t := string(ns.Type)
			if _, ok := nsFlag[t]; !ok {
				execOK = false
				continue
			}
			// The Go init (through nsenter) joins these: setns needs a
			// single-threaded process.
			if ns.Type == specs.UserNamespace || ns.Type == specs.TimeNamespace {
				execOK = false
			}
			fmt.Fprintf(&b, "ns %s\n", t)
		}
		if per := spec.Linux.Personality; per != nil {
			switch per.Domain {
			case specs.PerLinux:
				b.WriteString("personality 0\n")
			case specs.PerLinux32:
				b.WriteString("personality 8\n")
			default:
				execOK = false // planEligible: the Go init says what is wrong
			}
		}
	}
	hasFilter, filterOK := c.execFilter()
	fmt.Fprintf(&b, "seccomp %s\nexec-ok %s\n", bit(hasFilter), bit(execOK && filterOK))
	return []byte(b.String())
}

// execFilter says whether exec must load a compiled seccomp filter, and
// whether the C init can (it cannot hand a NOTIFY listener to an agent).
// Create has the filter in memory; a loaded container (update) finds it in
// the state dir, as exec does.
func (c *Container) execFilter() (has, ok bool) {
	data := c.seccomp
	if data == nil && c.dir != "" {
		var err error
		data, err = os.ReadFile(filepath.Join(c.dir, seccompFile))
		if errors.Is(err, os.ErrNotExist) {
			return false, true
		}
		if err != nil {
			return true, false // exec in Go reports the error
		}
	}
	f, err := decodeSeccomp(data)
	if err != nil {
		return true, false // corrupt: exec in Go reports it
	}
	return f != nil, f == nil || !f.UsesNotify()
}

func bit(v bool) string {
	if v {
		return "1"
	}
	return "0"
}
