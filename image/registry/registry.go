// Package registry talks to OCI distribution registries. It reuses
// go-containerregistry for authentication (token and basic challenges,
// credentials from Docker config files) and for pushing, and fetches
// manifests and blobs itself so that it can cap their sizes and resume an
// interrupted blob with an HTTP Range request.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// Manifest media types capsa accepts.
const (
	MediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerSchema1   = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1JW = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// Options configure a Client.
type Options struct {
	// Insecure lists registries ("host:port") that may be reached over
	// plain http or with an unverified certificate: an explicit opt-in.
	// Loopback registries (localhost, 127.0.0.0/8, ::1) may always use
	// plain http, as with Docker.
	Insecure []string
	// CertsDirs hold Docker's certs.d layout: DIR/HOST:PORT/ca.crt is an
	// extra CA for that registry, on top of the system roots.
	CertsDirs []string
	// Keychain resolves credentials; nil means anonymous.
	Keychain authn.Keychain
	// UserAgent is sent with every request.
	UserAgent string
}

// Client reaches registries; it is safe for concurrent use.
type Client struct {
	opts Options
	mu   sync.Mutex
	regs map[string]*regConn
}

// New makes a client.
func New(opts Options) *Client {
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain()
	}
	return &Client{opts: opts, regs: map[string]*regConn{}}
}

// regConn is how one registry is reached: scheme and TLS, found once.
type regConn struct {
	once   sync.Once
	err    error
	scheme string
	base   http.RoundTripper
}

func (c *Client) insecure(host string) bool {
	for _, h := range c.opts.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Client) tlsConfig(host string, skipVerify bool) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, dir := range c.opts.CertsDirs {
		matches, _ := filepath.Glob(filepath.Join(dir, host, "*.crt"))
		for _, m := range matches {
			pem, err := os.ReadFile(m)
			if err != nil {
				return nil, fmt.Errorf("registry %s: read CA %s: %w", host, m, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s: no certificate in %s", host, m)
			}
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}, nil //nolint:gosec // explicit opt-in
}

func newHTTPTransport(tc *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	t.MaxIdleConnsPerHost = 8
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}

// conn finds out how to reach reg: https with verified certificates,
// or, for loopback and opted-in registries, https without verification
// (opt-in only) or plain http when the registry does not speak TLS.
func (c *Client) conn(ctx context.Context, reg name.Registry) (*regConn, error) {
	host := reg.RegistryStr()
	c.mu.Lock()
	rc, ok := c.regs[host]
	if !ok {
		rc = &regConn{}
		c.regs[host] = rc
	}
	c.mu.Unlock()
	rc.once.Do(func() {
		insecure := c.insecure(host)
		tc, err := c.tlsConfig(host, insecure)
		if err != nil {
			rc.err = err
			return
		}
		httpsT := newHTTPTransport(tc)
		if !insecure && !isLoopback(host) {
			rc.scheme, rc.base = "https", httpsT
			return
		}
		// Probe: does it speak TLS at all?
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "https://"+host+"/v2/", nil)
		resp, err := httpsT.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			rc.scheme, rc.base = "https", httpsT
			return
		}
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) || strings.Contains(err.Error(), "server gave HTTP response") || strings.Contains(err.Error(), "first record does not look like a TLS handshake") {
			rc.scheme, rc.base = "http", newHTTPTransport(nil)
			return
		}
		rc.err = fmt.Errorf("registry %s: %w", host, err)
	})
	if rc.err != nil {
		// Let a later call retry (the registry may have come up).
		c.mu.Lock()
		if c.regs[host] == rc {
			delete(c.regs, host)
		}
		c.mu.Unlock()
		return nil, rc.err
	}
	return rc, nil
}

// schemeFixer sends requests that go-containerregistry addresses with
// http:// (it assumes http for loopback hosts) over https when the
// registry speaks TLS.
type schemeFixer struct {
	host   string
	scheme string
	next   http.RoundTripper
	ua     string
}

func (s *schemeFixer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == s.host && req.URL.Scheme != s.scheme {
		req = req.Clone(req.Context())
		req.URL.Scheme = s.scheme
	}
	if s.ua != "" && req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", s.ua)
	}
	return s.next.RoundTrip(req)
}

// Transport returns the unauthenticated transport for reg (TLS and scheme
// settled), for go-containerregistry's remote package.
func (c *Client) Transport(ctx context.Context, reg name.Registry) (http.RoundTripper, error) {
	rc, err := c.conn(ctx, reg)
	if err != nil {
		return nil, err
	}
	return &schemeFixer{host: reg.RegistryStr(), scheme: rc.scheme, next: rc.base, ua: c.opts.UserAgent}, nil
}

// Keychain is the client's credential source.
func (c *Client) Keychain() authn.Keychain { return c.opts.Keychain }

// Repo is an authenticated connection to one repository.
type Repo struct {
	name   name.Repository
	base   string // scheme://host/v2/repo
	client *http.Client
}

// Repository connects to repo with pull (and, if push, push) scope.
func (c *Client) Repository(ctx context.Context, repo name.Repository, push bool) (*Repo, error) {
	t, err := c.Transport(ctx, repo.Registry)
	if err != nil {
		return nil, err
	}
	auth, err := c.opts.Keychain.Resolve(repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		scopes = []string{repo.Scope(transport.PushScope)}
	}
	at, err := transport.NewWithContext(ctx, repo.Registry, auth, t, scopes)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", repo.RegistryStr(), err)
	}
	rc, _ := c.conn(ctx, repo.Registry)
	return &Repo{
		name:   repo,
		base:   rc.scheme + "://" + repo.RegistryStr() + "/v2/" + repo.RepositoryStr(),
		client: &http.Client{Transport: at},
	}, nil
}

// Ping checks that the credentials for reg are accepted (capsa login).
func (c *Client) Ping(ctx context.Context, reg name.Registry, auth authn.Authenticator) error {
	t, err := c.Transport(ctx, reg)
	if err != nil {
		return err
	}
	at, err := transport.NewWithContext(ctx, reg, auth, t, []string{"registry:catalog:*"})
	if err != nil {
		return fmt.Errorf("login to %s: %w", reg.RegistryStr(), err)
	}
	rc, _ := c.conn(ctx, reg)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.scheme+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: at}).Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", reg.RegistryStr(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("login to %s: unauthorized: incorrect username or password", reg.RegistryStr())
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: unexpected status %s", reg.RegistryStr(), resp.Status)
	}
	return nil
}

// Manifest fetches a manifest or index by tag or digest, refusing one
// larger than max bytes. When reference is a digest the content is
// verified against it.
func (r *Repo) Manifest(ctx context.Context, reference string, max int64) (mediaType string, data []byte, d digest.Digest, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/manifests/"+reference, nil)
	if err != nil {
		return "", nil, "", err
	}
	req.Header.Set("Accept", strings.Join([]string{MediaTypeOCIIndex, MediaTypeOCIManifest, MediaTypeDockerList, MediaTypeDockerManifest}, ", "))
	resp, err := r.client.Do(req)
	if err != nil {
		return "", nil, "", fmt.Errorf("fetch manifest %s:%s: %w", r.name, reference, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, "manifest "+r.name.String()+":"+reference); err != nil {
		return "", nil, "", err
	}
	if resp.ContentLength > max {
		return "", nil, "", fmt.Errorf("manifest %s:%s is %d bytes, over the %d byte limit", r.name, reference, resp.ContentLength, max)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return "", nil, "", fmt.Errorf("read manifest %s:%s: %w", r.name, reference, err)
	}
	if int64(len(data)) > max {
		return "", nil, "", fmt.Errorf("manifest %s:%s is over the %d byte limit", r.name, reference, max)
	}
	d = digest.FromBytes(data)
	if want, err := digest.Parse(reference); err == nil && want != d {
		return "", nil, "", fmt.Errorf("manifest %s@%s: registry sent content with digest %s", r.name, want, d)
	}
	mediaType = resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = strings.TrimSpace(mediaType[:i])
	}
	if mediaType == mediaTypeDockerSchema1 || mediaType == mediaTypeDockerSchema1JW {
		return "", nil, "", fmt.Errorf("manifest %s:%s: Docker schema 1 images are not supported; push the image again with a current client", r.name, reference)
	}
	return mediaType, data, d, nil
}

// Blob opens blob d from offset (resuming with a Range request). It
// returns the offset the content actually starts at: 0 if the registry
// ignored the Range header.
func (r *Repo) Blob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/blobs/"+d.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch blob %s: %w", d, err)
	}
	if resp.StatusCode == http.StatusPartialContent && offset > 0 {
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != offset {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("fetch blob %s: bad Content-Range %q for offset %d", d, resp.Header.Get("Content-Range"), offset)
		}
		return resp.Body, offset, nil
	}
	if err := statusError(resp, "blob "+d.String()); err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	return resp.Body, 0, nil
}

func statusError(resp *http.Response, what string) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%s: not found: %s", what, msg)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: access denied (%s); are you logged in (capsa login)? %s", what, resp.Status, msg)
	}
	return fmt.Errorf("%s: registry answered %s: %s", what, resp.Status, msg)
}
