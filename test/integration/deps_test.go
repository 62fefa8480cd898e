package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
)

// The runtime links only what starting a container needs: nothing of the
// engine, the images, the API adapters, HTTP or gRPC (docs/architecture.md).
func TestRuntimeDependencies(t *testing.T) {
	for _, pkg := range []string{"./cmd/capsa-runtime", "./runtime/..."} {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = testutil.RepoRoot()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, banned := range []string{
				"net/http", "google.golang.org/grpc", "crypto/tls",
				"github.com/capsa-project/capsa/engine", "github.com/capsa-project/capsa/api",
				"github.com/capsa-project/capsa/image", "github.com/capsa-project/capsa/snapshot",
				"github.com/capsa-project/capsa/layer", "github.com/capsa-project/capsa/network",
				"github.com/capsa-project/capsa/bundle", "github.com/google/go-containerregistry",
			} {
				if dep == banned || strings.HasPrefix(dep, banned+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
