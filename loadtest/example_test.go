package loadtest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/pqrelay/pqrelay/loadtest"
)

// Compare a target with the bundled upstream, the way an end-to-end test
// through a relay pair would: relayURL would be relay A, with the
// x-mte-upstream and x-mte-outbound-token headers added for that side.
func Example() {
	up, err := loadtest.StartUpstream("127.0.0.1:0", 1024, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()

	relayURL := up.URL() // stand-in for relay A in this example
	cfg := loadtest.Config{
		Body:           loadtest.Body(1024),
		Connections:    10,
		Warmup:         100 * time.Millisecond,
		Duration:       300 * time.Millisecond,
		ExpectSize:     up.Size(),
		Verify:         true,
		VerifyChecksum: up.Checksum(),
	}
	control, relay := cfg, cfg
	control.URL = up.URL() + "/api/echo"
	relay.URL = relayURL + "/api/echo"
	relay.Headers = []loadtest.Header{{Name: "x-mte-upstream", Value: "http://127.0.0.1:8081"}}

	tier := loadtest.Tier{Connections: cfg.Connections}
	for _, side := range []struct {
		cfg loadtest.Config
		dst **loadtest.Result
	}{{control, &tier.Control}, {relay, &tier.Relay}} {
		res, err := loadtest.Run(context.Background(), side.cfg)
		if err != nil {
			log.Fatal(err)
		}
		*side.dst = &res
	}
	if err := loadtest.WriteMarkdown(os.Stdout, loadtest.Report{Tiers: []loadtest.Tier{tier}}); err != nil {
		log.Fatal(err)
	}
	if c, ok := tier.Compare(); ok && c.RPSPct < 50 {
		fmt.Println("the relay lost more than half the throughput")
	}
}

func ExampleParseSize() {
	for _, s := range []string{"512", "1KiB", "1MiB", "1KB", "1K"} {
		n, err := loadtest.ParseSize(s)
		fmt.Println(s, n, err != nil)
	}
	// Output:
	// 512 512 false
	// 1KiB 1024 false
	// 1MiB 1048576 false
	// 1KB 1000 false
	// 1K 0 true
}
