package main

import (
	"reflect"
	"slices"
	"testing"
)

// TestReferenceOnlyVariablesIgnored pins what docs/MIGRATING.md says of the
// reference product's pool settings: pqrelay has no such variable, and a
// relay started with them set is configured exactly as one without them,
// with the same start-up warnings.
func TestReferenceOnlyVariablesIgnored(t *testing.T) {
	t.Parallel()
	referenceOnly := []string{"POOL_SIZE", "OUTBOUND_PAIR_COUNT"}
	for _, v := range variables {
		if slices.Contains(referenceOnly, v.name) {
			t.Errorf("%s is a pqrelay variable now: docs/MIGRATING.md says it is ignored", v.name)
		}
	}
	plain, err := loadSettings(env())
	if err != nil {
		t.Fatal(err)
	}
	with, err := loadSettings(env("POOL_SIZE", "600", "OUTBOUND_PAIR_COUNT", "not a number"))
	if err != nil {
		t.Fatalf("refused with the reference's pool settings: %v", err)
	}
	// The TLS sets are built anew by each load (nothing is configured in
	// either): compare the rest.
	with.tls, with.proxy.TLS, plain.tls, plain.proxy.TLS = nil, nil, nil, nil
	if !reflect.DeepEqual(with, plain) || !slices.Equal(with.proxy.Warnings(), plain.proxy.Warnings()) {
		t.Errorf("the reference's pool settings changed the configuration:\n%+v\n%+v", with, plain)
	}
}
