// Command capsa is the capsa container engine's command line. It is thin:
// flags are parsed here and the work is done by the engine's packages
// (image/ for images). Each command group lives in its own file and adds
// itself to the root command in init, so new groups (containers, networks,
// the daemon) slot in without touching the others.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	root      string   // engine state root
	configDir string   // credentials (Docker config.json format)
	insecure  []string // registries allowed without TLS verification
	certsDirs []string // Docker certs.d-style CA directories
}

var g globals

// version is set by the Makefile (-X main.version=…).
var version = "dev"

var rootCmd = &cobra.Command{
	Use:           "capsa",
	Short:         "capsa container engine",
	SilenceUsage:  true,
	SilenceErrors: true,
	Version:       version,
}

// commands registers the top-level commands of a group; each group file
// calls it from init.
func commands(cmds ...*cobra.Command) { rootCmd.AddCommand(cmds...) }

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&g.root, "root", envOr("CAPSA_ROOT", "/var/lib/capsa"), "root directory of the engine's state")
	pf.StringVar(&g.configDir, "config", envOr("CAPSA_CONFIG", defaultConfigDir()), "directory of the client config file (registry credentials)")
	pf.StringArrayVar(&g.insecure, "insecure-registry", nil, "registry (host:port) that may be used without TLS verification or over plain http")
	pf.StringArrayVar(&g.certsDirs, "certs-dir", []string{"/etc/capsa/certs.d", "/etc/docker/certs.d", "/etc/containers/certs.d"}, "directories holding HOST:PORT/ca.crt for registries")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func defaultConfigDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return "/root/.capsa"
	}
	return home + "/.capsa"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd.ExecuteContext(ctx); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// exitError ends the command with a status and no further message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
