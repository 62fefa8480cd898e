package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// summary is what the report shows of one runtime in one benchmark.
type summary struct {
	n                  int
	wall, cpu, minWall time.Duration
	peakKiB            int64
}

func summarize(r *rt, name string) (summary, bool) {
	ss := r.samples[name]
	if len(ss) == 0 {
		return summary{}, false
	}
	walls := make([]time.Duration, len(ss))
	cpus := make([]time.Duration, len(ss))
	for i, s := range ss {
		walls[i], cpus[i] = s.wall, s.cpu
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	return summary{n: len(ss), wall: median(walls), cpu: median(cpus), minWall: walls[0], peakKiB: r.peakKiB[name]}, true
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// mib formats a peak RSS; zero means the RSS pass did not run.
func mib(kib int64) string {
	if kib == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// report prints, per benchmark, the medians of each runtime, the ratios of
// every runtime to every other, and how capsa fares against its goal.
func (b *bench) report(w io.Writer) {
	spec := "minimal spec (pid, mount, uts, ipc, net namespaces; pivot_root; /proc, /dev; cgroupsPath)"
	if b.o.fullSpec {
		spec = "runc's full default spec (without cgroup namespace)"
	}
	if b.o.seccomp {
		spec += ", Docker's default seccomp profile in every bundle"
	}
	fmt.Fprintf(w, "\nOCI runtime benchmark: %d iterations per runtime, round-robin, medians; %s\n", b.o.iterations, spec)
	fmt.Fprintln(w, "cpu = user+sys of every process involved (runtime, its helpers, the container init)")
	fmt.Fprintln(w, "peak RSS = largest ru_maxrss of those processes, from one more run of each benchmark under GNU time")
	for _, name := range benchOrder {
		if !b.o.benches[name] {
			continue
		}
		var rows []*rt
		sums := map[*rt]summary{}
		for _, r := range b.rts {
			if s, ok := summarize(r, name); ok {
				rows = append(rows, r)
				sums[r] = s
			}
		}
		fmt.Fprintf(w, "\n%s\n", benchTitle[name])
		if len(rows) == 0 {
			fmt.Fprintln(w, "  (no runtime completed it)")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  runtime\tn\twall\tmin wall\tcpu\tpeak RSS\t")
		for _, r := range rows {
			s := sums[r]
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t\n", r.name, s.n, ms(s.wall), ms(s.minWall), ms(s.cpu), mib(s.peakKiB))
		}
		tw.Flush()
		b.reportParts(w, name, rows)
		if len(rows) > 1 {
			fmt.Fprintln(w, "  ratio row ÷ column, wall / cpu / peak RSS:")
			tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
			head := []string{"  "}
			for _, c := range rows {
				head = append(head, c.name)
			}
			fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
			for _, r := range rows {
				cells := []string{"  " + r.name}
				for _, c := range rows {
					if c == r {
						cells = append(cells, "-")
						continue
					}
					a, o := sums[r], sums[c]
					cells = append(cells, ratio(float64(a.wall), float64(o.wall))+" / "+
						ratio(float64(a.cpu), float64(o.cpu))+" / "+ratio(float64(a.peakKiB), float64(o.peakKiB)))
				}
				fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
			}
			tw.Flush()
		}
	}
	b.reportSeccomp(w)
	b.reportGoal(w)
	for _, r := range b.rts {
		if r.err != nil {
			fmt.Fprintf(w, "\n%s FAILED and is missing from (some of) the figures:\n  %s\n", r.name, strings.ReplaceAll(r.err.Error(), "\n", "\n  "))
		}
	}
}

// reportParts shows where each runtime's time goes: the median wall and
// CPU time of each of its commands (CPU of the command and the processes it
// reaped), and the CPU time of the container init when it was reaped here.
func (b *bench) reportParts(w io.Writer, name string, rows []*rt) {
	fmt.Fprintln(w, "  per command, median wall / cpu:")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, r := range rows {
		cells := []string{"  " + r.name}
		for _, part := range r.partOrder[name] {
			ss := r.parts[name][part]
			walls := make([]time.Duration, len(ss))
			cpus := make([]time.Duration, len(ss))
			for i, s := range ss {
				walls[i], cpus[i] = s.wall, s.cpu
			}
			wall := "-"
			if part != "init" {
				wall = fmt.Sprintf("%.2f", float64(median(walls))/float64(time.Millisecond))
			}
			cells = append(cells, fmt.Sprintf("%s %s / %.2f ms", part, wall, float64(median(cpus))/float64(time.Millisecond)))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// reportGoal checks capsa-runtime against its goal: at most half of crun's
// wall and CPU time, and a lower peak RSS.
func (b *bench) reportGoal(w io.Writer) {
	var capsa, crun *rt
	for _, r := range b.rts {
		switch r.name {
		case "capsa":
			capsa = r
		case "crun":
			crun = r
		}
	}
	if capsa == nil || crun == nil {
		return
	}
	fmt.Fprintln(w, "\ngoal: capsa ≤ 0.5 × crun in wall and cpu time, peak RSS < crun")
	for _, name := range benchOrder {
		a, okA := summarize(capsa, name)
		c, okC := summarize(crun, name)
		if !okA || !okC {
			continue
		}
		wr, cr := float64(a.wall)/float64(c.wall), float64(a.cpu)/float64(c.cpu)
		rss := "n/a"
		if a.peakKiB > 0 && c.peakKiB > 0 {
			rss = verdict(a.peakKiB < c.peakKiB)
		}
		fmt.Fprintf(w, "  %-17s  wall %.2f %-6s  cpu %.2f %-6s  peak RSS %s vs %s %s\n", name,
			wr, verdict(wr <= 0.5), cr, verdict(cr <= 0.5), mib(a.peakKiB), mib(c.peakKiB), rss)
	}
}

// failedRuntimes names the runtimes that failed during the run.
func (b *bench) failedRuntimes() []string {
	var out []string
	for _, r := range b.rts {
		if r.err != nil {
			out = append(out, r.name)
		}
	}
	return out
}

// reportSeccomp shows what Docker's default profile adds to a start, for
// each runtime that ran both lifecycle and lifecycle-seccomp: the
// difference of the medians, in total and per command.
func (b *bench) reportSeccomp(w io.Writer) {
	if !b.o.benches[benchLifecycle] || !b.o.benches[benchLifecycleSeccomp] {
		return
	}
	if b.o.seccomp {
		fmt.Fprintln(w, "\nseccomp: -seccomp puts the profile in lifecycle's bundles too; no difference to show")
		return
	}
	fmt.Fprintln(w, "\nseccomp: what Docker's default profile adds per start (lifecycle-seccomp − lifecycle, difference of medians; goal < 1 ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  runtime\twall\tmin wall\tcpu\tper command (wall / cpu)\t")
	goal := ""
	for _, r := range b.rts {
		plain, ok1 := summarize(r, benchLifecycle)
		with, ok2 := summarize(r, benchLifecycleSeccomp)
		if !ok1 || !ok2 {
			continue
		}
		var parts []string
		for _, part := range r.partOrder[benchLifecycle] {
			pw, pc := partMedians(r, benchLifecycle, part)
			sw, sc := partMedians(r, benchLifecycleSeccomp, part)
			wall := "-"
			if part != "init" {
				wall = signedMs(sw - pw)
			}
			parts = append(parts, fmt.Sprintf("%s %s / %s", part, wall, signedMs(sc-pc)))
		}
		fmt.Fprintf(tw, "  %s\t%s ms\t%s ms\t%s ms\t%s\t\n", r.name, signedMs(with.wall-plain.wall), signedMs(with.minWall-plain.minWall),
			signedMs(with.cpu-plain.cpu), strings.Join(parts, ", "))
		if r.name == "capsa" {
			goal = fmt.Sprintf("  goal for capsa: the profile adds < 1 ms to a start: wall %s, cpu %s\n",
				verdict(with.wall-plain.wall < time.Millisecond), verdict(with.cpu-plain.cpu < time.Millisecond))
		}
	}
	tw.Flush()
	fmt.Fprint(w, goal)
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// partMedians is the median wall and cpu time of one command of a
// benchmark.
func partMedians(r *rt, name, part string) (wall, cpu time.Duration) {
	ss := r.parts[name][part]
	if len(ss) == 0 {
		return 0, 0
	}
	walls := make([]time.Duration, len(ss))
	cpus := make([]time.Duration, len(ss))
	for i, s := range ss {
		walls[i], cpus[i] = s.wall, s.cpu
	}
	return median(walls), median(cpus)
}

func signedMs(d time.Duration) string {
	return fmt.Sprintf("%+.2f", float64(d)/float64(time.Millisecond))
}
