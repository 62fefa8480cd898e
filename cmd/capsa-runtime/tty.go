package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ttyProxy is what `run -t` and `exec -t` do without --console-socket, as
// runc does: receive the container's pty master on a private console
// socket and connect it to this terminal.
type ttyProxy struct {
	dir      string
	listener *net.UnixListener
	master   chan *os.File
	restore  func()
}

// newTTYProxy listens on a console socket in a private directory.
func newTTYProxy() (*ttyProxy, error) {
	dir, err := os.MkdirTemp("", "capsa-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	p := &ttyProxy{dir: dir, listener: l, master: make(chan *os.File, 1), restore: func() {}}
	go p.accept()
	return p, nil
}

func (p *ttyProxy) path() string { return filepath.Join(p.dir, "console.sock") }

func (p *ttyProxy) accept() {
	defer close(p.master)
	conn, err := p.listener.AcceptUnix()
	if err != nil {
		return
	}
	defer conn.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return
	}
	p.master <- os.NewFile(uintptr(fds[0]), "pty-master")
}

// start connects the received pty to stdin/stdout: stdin in raw mode when
// it is a terminal, and window size changes forwarded.
func (p *ttyProxy) start() error {
	master, ok := <-p.master
	if !ok {
		return fmt.Errorf("no pty was received from the container")
	}
	if st, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		raw := *st
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(0, unix.TCSETS, &raw); err == nil {
			p.restore = func() { _ = unix.IoctlSetTermios(0, unix.TCSETS, st) } // best effort on exit
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws) // the pty may be gone
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }() // ends with the process
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master) // EIO once the container side closes
		close(done)
	}()
	p.restore = chainRestore(p.restore, func() { <-done })
	return nil
}

func chainRestore(a, b func()) func() { return func() { b(); a() } }

// close restores the terminal and removes the socket.
func (p *ttyProxy) close() {
	p.listener.Close()
	p.restore()
	os.RemoveAll(p.dir)
}
