package session

import (
	"testing"
	"time"
)

// BenchmarkPair times each step of a pairing: A's CreatePairRequest (KEM key
// generation), B's ConsumePairRequest (encapsulation, key schedule) and A's
// ConsumePairResponse (decapsulation, key schedule).
func BenchmarkPair(b *testing.B) {
	s := mustSecrets(b, katSecret)
	for _, suite := range allSuites() {
		i := fixedInitiator(b, s, suite, katNow, fuzzIKM(suite))
		resp, _, err := s.ConsumePairRequest(i.Request(), katNow, DefaultLifetime)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(suite.String()+"/CreatePairRequest", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.CreatePairRequest(suite, katNow); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(suite.String()+"/ConsumePairRequest", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.ConsumePairRequest(i.Request(), katNow, DefaultLifetime); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(suite.String()+"/ConsumePairResponse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.ConsumePairResponse(resp, katNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefusePairRequest is the cost of refusing a forged PairRequest
// (one HMAC): what an attacker without the secret can make B spend.
func BenchmarkRefusePairRequest(b *testing.B) {
	s, o := mustSecrets(b, katSecret), mustSecrets(b, otherSecret)
	forged := fixedInitiator(b, o, DefaultSuite(), katNow, fuzzIKM(DefaultSuite())).Request()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.ConsumePairRequest(forged, katNow, DefaultLifetime); err != ErrPair {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealSession(b *testing.B) {
	s := mustSecrets(b, katSecret)
	sess := testSession(b, katID, katNow, katNow.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		s.SealSession(sess)
	}
}

func BenchmarkOpenSession(b *testing.B) {
	s := mustSecrets(b, katSecret)
	blob := s.SealSession(testSession(b, katID, katNow, katNow.Add(time.Hour)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.OpenSession(katID, blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyClientID(b *testing.B) {
	s := mustSecrets(b, katSecret)
	c := s.NewClientID(katID, katNow)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.VerifyClientID(&c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionAccept(b *testing.B) {
	sess := testSession(b, katID, katNow, katNow.Add(time.Hour))
	b.ReportAllocs()
	var c uint64
	for b.Loop() {
		c++
		sess.Accept(c)
	}
}
