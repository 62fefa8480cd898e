// Package testregistry runs a real OCI distribution registry
// (github.com/distribution/distribution/v3) in-process on 127.0.0.1 for
// tests: plain http, TLS with a self-signed certificate made by the test,
// and basic auth from an htpasswd file, with storage in a temp dir.
package testregistry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Registered by import: the htpasswd access controller and the
	// filesystem storage driver.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Options selects the variant of the registry.
type Options struct {
	// TLS serves https with a self-signed certificate for 127.0.0.1 and
	// localhost; the CA is in Registry.CACertPEM / Registry.CAFile.
	TLS bool
	// Users enables basic auth with these user → password pairs.
	Users map[string]string
	// Wrap, if set, wraps the registry's handler, so a test can throttle,
	// stall or corrupt responses.
	Wrap func(http.Handler) http.Handler
}

// Registry is a running test registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of an image reference.
	Host string
	// URL is the base URL ("http://127.0.0.1:PORT" or "https://…").
	URL string
	// CACertPEM is the PEM certificate a client must trust when TLS is on.
	CACertPEM []byte
	// CAFile holds CACertPEM on disk.
	CAFile string
	// Dir is the registry's storage directory.
	Dir string
}

// Start runs a registry until the end of t.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	r, stop, err := StartServer(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("testregistry: %v", err)
	}
	t.Cleanup(stop)
	return r
}

// Quiet silences the registry's logrus logging, which otherwise floods
// test output with one line per request.
func init() { logrus.SetOutput(io.Discard) }

// StartServer runs a registry with storage under dir until the returned
// stop function is called (for programs such as benchmarks; tests use
// Start).
func StartServer(dir string, opts Options) (*Registry, func(), error) {
	reg := &Registry{Dir: filepath.Join(dir, "storage")}
	if err := os.MkdirAll(reg.Dir, 0o700); err != nil {
		return nil, nil, err
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": reg.Dir},
			"delete":     configuration.Parameters{"enabled": true},
		},
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.Log.Level = "error"
	cfg.HTTP.Secret = "imgtest-secret"
	if len(opts.Users) > 0 {
		path := filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(path, opts.Users); err != nil {
			return nil, nil, err
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "imgtest", "path": path}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	reg.Host = ln.Addr().String()
	var handler http.Handler = handlers.NewApp(context.Background(), cfg)
	if opts.Wrap != nil {
		handler = opts.Wrap(handler)
	}
	// Handshake errors of clients that are meant to fail (untrusted CA) are
	// expected in tests; keep them out of the output.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	reg.URL = "http://" + reg.Host
	if opts.TLS {
		certPEM, keyPEM, err := selfSigned()
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("key pair: %w", err)
		}
		reg.CACertPEM = certPEM
		reg.CAFile = filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(reg.CAFile, certPEM, 0o644); err != nil {
			ln.Close()
			return nil, nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		reg.URL = "https://" + reg.Host
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "testregistry: serve:", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}
	return reg, stop, nil
}

func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		// bcrypt.MinCost keeps test start-up fast; the registry accepts any cost.
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("bcrypt: %w", err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// selfSigned makes a certificate for 127.0.0.1 and localhost that is its
// own CA.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "imgtest registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
