package ort

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// TestSetupScriptGPU runs scripts/test-setup-ort.sh, which checks
// setup-ort.sh --gpu (install of the CUDA provider libraries beside the
// cached CPU library, checksum verification, repair) against a stand-in
// NuGet package: the real registry is not reachable from tests.
func TestSetupScriptGPU(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	cmd := exec.Command("bash", "../scripts/test-setup-ort.sh")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 77 {
		if os.Getenv("ROBUST_REQUIRE_ORT") != "" {
			t.Fatalf("ROBUST_REQUIRE_ORT is set but the script could not run:\n%s", out)
		}
		t.Skipf("skipped by the script:\n%s", out)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}
