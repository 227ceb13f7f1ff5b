package codec

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// withoutAssembly names the environment variable under which TestMain
// switches the CPU features off that the assembly needs, so the package's
// tests run on the pure-Go twins.
const withoutAssembly = "PQRELAY_CODEC_WITHOUT_ASSEMBLY"

func TestMain(m *testing.M) {
	if os.Getenv(withoutAssembly) != "" {
		cpuid.CPU.Disable(cpuid.AVX2)
		useAVX2 = useAVX2 && cpuid.CPU.Supports(cpuid.AVX2)
	}
	os.Exit(m.Run())
}

// TestSuiteWithoutAssembly runs every test and fuzz seed of the package
// again in a child process whose cpuid reports no AVX2, as on a CPU
// without it.
func TestSuiteWithoutAssembly(t *testing.T) {
	if os.Getenv(withoutAssembly) != "" {
		if useAVX2 {
			t.Fatal("the assembly is still selected with AVX2 disabled")
		}
		t.Skip("this is the run without assembly")
	}
	if !useAVX2 {
		t.Skip("the assembly is not selected in this build or on this CPU")
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.v", "-test.skip", "^TestSuiteWithoutAssembly$")
	cmd.Env = append(os.Environ(), withoutAssembly+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite without assembly failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- SKIP: TestFindPositionsMatchesGeneric") || !strings.Contains(string(out), "--- PASS: TestScanJSON") {
		t.Fatalf("the child did not run the suite without AVX2:\n%s", out)
	}
}
