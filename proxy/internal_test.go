package proxy

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/session"
)

// TestFresh pins the frame clock bound (docs/PROTOCOL.md §6.1) at its edges.
func TestFresh(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_800_000_000_000)
	s := &Server{now: func() time.Time { return now }}
	skew := session.MaxClockSkew
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{now, true},
		{now.Add(-skew), true},
		{now.Add(skew), true},
		{now.Add(-skew - time.Millisecond), false},
		{now.Add(skew + time.Millisecond), false},
		{time.UnixMilli(0), false},
	} {
		if got := s.fresh(c.at.UnixMilli()); got != c.want {
			t.Errorf("frame from %v at %v: fresh = %v, want %v", c.at, now, got, c.want)
		}
	}
}

// TestErrorTableDocumented keeps docs/PROTOCOL.md §8 and errorTable in step.
func TestErrorTableDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(MTE_[A-Z_]+)` \\| (\\d{3}) \\|").FindAllSubmatch(doc, -1) {
		status, _ := strconv.Atoi(string(m[2]))
		rows[string(m[1])] = status
	}
	for _, e := range errorTable {
		if status, ok := rows[e.code]; !ok || status != e.status {
			t.Errorf("%s (%d) is not in docs/PROTOCOL.md §8 with that status", e.code, e.status)
		}
		delete(rows, e.code)
	}
	for code := range rows {
		t.Errorf("docs/PROTOCOL.md §8 lists %s, which proxy/errors.go does not define", code)
	}
}
