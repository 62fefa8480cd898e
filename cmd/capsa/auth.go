package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/capsa-project/capsa/image/registry"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// dockerHubAuthKey is the key Docker's config.json uses for Docker Hub.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// configKeychain reads credentials that capsa login stored, in Docker's
// config.json format, from capsa's config directory.
type configKeychain struct{ dir string }

func authKey(host string) string {
	if host == name.DefaultRegistry || host == "docker.io" {
		return dockerHubAuthKey
	}
	return host
}

func (k configKeychain) load() (*configfile.ConfigFile, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.dir, err)
	}
	return cf, nil
}

// Resolve implements authn.Keychain.
func (k configKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	cf, err := k.load()
	if err != nil {
		return nil, err
	}
	ac, err := cf.GetAuthConfig(authKey(r.RegistryStr()))
	if err != nil {
		return nil, err
	}
	if ac == (types.AuthConfig{}) || (ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}), nil
}

func registryArg(args []string) (string, error) {
	if len(args) == 0 {
		return "docker.io", nil
	}
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if _, err := name.NewRegistry(s); err != nil {
		return "", fmt.Errorf("invalid registry %q: %w", args[0], err)
	}
	return s, nil
}

func loginCmd() *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := registryArg(args)
			if err != nil {
				return err
			}
			if passStdin {
				if pass != "" {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive")
				}
				if user == "" {
					return fmt.Errorf("must provide --username with --password-stdin")
				}
				data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(data), "\r\n")
			}
			in := bufio.NewReader(cmd.InOrStdin())
			if user == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Username: ")
				line, err := in.ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read username: %w", err)
				}
				user = strings.TrimSpace(line)
			}
			if pass == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Password: ")
				p, err := readPassword(in)
				fmt.Fprintln(cmd.OutOrStdout())
				if err != nil {
					return err
				}
				pass = p
			} else if !passStdin {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			if user == "" || pass == "" {
				return fmt.Errorf("username and password are required")
			}
			reg, err := name.NewRegistry(host)
			if err != nil {
				return err
			}
			if err := registry.New(registryOptions()).Ping(cmd.Context(), reg, authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})); err != nil {
				return err
			}
			if err := os.MkdirAll(g.configDir, 0o700); err != nil {
				return err
			}
			cf, err := configKeychain{dir: g.configDir}.load()
			if err != nil {
				return err
			}
			key := authKey(host)
			if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{ServerAddress: key, Username: user, Password: pass}); err != nil {
				return fmt.Errorf("store credentials: %w", err)
			}
			if err := cf.Save(); err != nil {
				return fmt.Errorf("save %s: %w", cf.Filename, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "Password")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

// readPassword reads a line with terminal echo off when stdin is a tty.
func readPassword(in *bufio.Reader) (string, error) {
	fd := int(os.Stdin.Fd())
	if old, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		noEcho := *old
		noEcho.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err == nil {
			defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
		}
	}
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := registryArg(args)
			if err != nil {
				return err
			}
			cf, err := configKeychain{dir: g.configDir}.load()
			if err != nil {
				return err
			}
			key := authKey(host)
			if _, ok := cf.AuthConfigs[key]; !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", host)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", host)
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return fmt.Errorf("erase credentials: %w", err)
			}
			return cf.Save()
		},
	}
}

func init() { commands(loginCmd(), logoutCmd()) }
