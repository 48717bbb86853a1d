package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedDeps are the only non-standard packages the SDK may depend on, so
// that importing it never drags in the server's dependencies.
var allowedDeps = []string{
	"github.com/fhirgate/fhirgate/client",
	"github.com/fhirgate/fhirgate/fhir",
	"github.com/fhirgate/fhirgate/smart",
	"golang.org/x/oauth2",
	"golang.org/x/sync",
}

func TestDependencyAllowList(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/fhirgate/fhirgate/client/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, bad := range []string{"github.com/spf13/cobra", "github.com/fhirgate/fhirgate/internal/store", "github.com/fhirgate/fhirgate/clientx"} {
		if allowed(bad) {
			t.Fatalf("test bug: %s passes the allow-list", bad)
		}
	}
	var n int
	for _, pkg := range strings.Fields(string(out)) {
		n++
		if !allowed(pkg) {
			t.Errorf("the SDK depends on %s, which is outside the allow-list %v", pkg, allowedDeps)
		}
	}
	if n < 4 {
		t.Fatalf("go list found only %d packages; the test is not looking at the SDK", n)
	}
}

func allowed(pkg string) bool {
	for _, a := range allowedDeps {
		if pkg == a || strings.HasPrefix(pkg, a+"/") {
			return true
		}
	}
	return false
}
