package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/capsa-project/capsa/image"
	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter renders image.Events: live per-layer lines on a
// terminal, JSON lines with --progress=json, Docker's plain status lines
// otherwise, nothing when quiet.
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	mode  string // "tty", "plain", "json", "quiet"
	order []string
	lines map[string]string
	drawn int
}

func newProgress(w io.Writer, mode string, quiet bool) *progressPrinter {
	if quiet {
		mode = "quiet"
	}
	if mode == "" || mode == "auto" {
		mode = "plain"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			mode = "tty"
		}
	}
	return &progressPrinter{w: w, mode: mode, lines: map[string]string{}}
}

func (p *progressPrinter) event(e image.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case "quiet":
	case "json":
		b, _ := json.Marshal(e)
		fmt.Fprintln(p.w, string(b))
	case "plain":
		if e.Status == "Downloading" || e.Status == "Extracting" {
			return
		}
		if p.lines[e.ID] == e.Status {
			return
		}
		p.lines[e.ID] = e.Status
		fmt.Fprintf(p.w, "%s: %s\n", e.ID, e.Status)
	case "tty":
		if _, ok := p.lines[e.ID]; !ok {
			p.order = append(p.order, e.ID)
		}
		line := e.Status
		if e.Total > 0 {
			line = fmt.Sprintf("%-20s %s", e.Status, bar(e.Current, e.Total))
		}
		p.lines[e.ID] = line
		p.redraw()
	}
}

func bar(cur, total int64) string {
	const width = 40
	n := int(float64(cur) / float64(total) * width)
	if n > width {
		n = width
	}
	b := make([]byte, width)
	for i := range b {
		switch {
		case i < n:
			b[i] = '='
		case i == n:
			b[i] = '>'
		default:
			b[i] = ' '
		}
	}
	return fmt.Sprintf("[%s] %s/%s", b, humanSize(cur), humanSize(total))
}

func (p *progressPrinter) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		fmt.Fprintf(p.w, "\x1b[2K%s: %s\n", id, p.lines[id])
	}
	p.drawn = len(p.order)
}

// status prints a line that is not about one blob (not in json/quiet).
func (p *progressPrinter) status(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case "quiet":
	case "json":
		b, _ := json.Marshal(image.Event{Status: fmt.Sprintf(format, a...)})
		fmt.Fprintln(p.w, string(b))
	default:
		fmt.Fprintf(p.w, format+"\n", a...)
		if p.mode == "tty" {
			p.order, p.lines, p.drawn = nil, map[string]string{}, 0
		}
	}
}
