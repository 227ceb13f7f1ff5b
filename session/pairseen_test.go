package session

import (
	"testing"
	"time"
)

func TestSeenPairRequests(t *testing.T) {
	t.Parallel()
	s, _ := NewSecrets("0123456789abcdef0123456789abcdef")
	now := time.Unix(1700000000, 0)
	a, _ := s.CreatePairRequest(SuiteMLKEM768X25519, now)
	b, _ := s.CreatePairRequest(SuiteMLKEM768X25519, now)
	var c SeenPairRequests
	steps := []struct {
		req  []byte
		at   time.Time
		want bool
	}{
		{a.Request(), now, true},
		{a.Request(), now.Add(time.Second), false},
		{b.Request(), now, true},
		{a.Request(), now.Add(2*MaxClockSkew - time.Millisecond), false},
		// Once the timestamp can no longer pass the clock check, forgetting
		// it is safe; ConsumePairRequest refuses it anyway.
		{a.Request(), now.Add(2 * MaxClockSkew), true},
		{nil, now, false},
	}
	for i, st := range steps {
		if got := c.FirstTime(st.req, st.at); got != st.want {
			t.Errorf("step %d: FirstTime = %v, want %v", i, got, st.want)
		}
	}
}
