package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/capsa-project/capsa/image"
	"github.com/capsa-project/capsa/image/registry"
	"github.com/capsa-project/capsa/layer"
	"github.com/capsa-project/capsa/snapshot"
	"github.com/google/go-containerregistry/pkg/authn"
)

// openImages opens the image store under the engine root, with layers
// unpacked into the overlayfs snapshotter next to it.
func openImages() (*image.Service, error) {
	snaps, err := snapshot.New(filepath.Join(g.root, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open snapshotter: %w", err)
	}
	return image.Open(filepath.Join(g.root, "image"), image.Options{
		Registry:  registryOptions(),
		Snapshots: snaps,
		Unpacker: image.Unpacker{
			Decompress: layer.Decompress,
			Unpack: func(r io.Reader, dir string) error {
				return layer.Unpack(r, dir, layer.Limits{})
			},
		},
	})
}

// registryOptions: credentials from capsa login first, then Docker's
// config ($DOCKER_CONFIG or ~/.docker/config.json, credential helpers).
func registryOptions() registry.Options {
	return registry.Options{
		Insecure:  g.insecure,
		CertsDirs: g.certsDirs,
		Keychain:  authn.NewMultiKeychain(configKeychain{dir: g.configDir}, authn.DefaultKeychain),
		UserAgent: "capsa/" + version,
	}
}
