package loadtest

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"time"
)

// SchemaVersion is the "version" field of WriteJSON's output. It changes
// only when a field is removed or changes meaning; adding fields does not
// change it. The schema is documented in doc.go.
const SchemaVersion = 1

type jsonReport struct {
	Version   int        `json:"version"`
	Generated string     `json:"generated,omitempty"`
	Config    jsonConfig `json:"config"`
	Tiers     []jsonTier `json:"tiers"`
}

type jsonConfig struct {
	ControlURL      string   `json:"control_url,omitempty"`
	RelayURL        string   `json:"relay_url,omitempty"`
	Method          string   `json:"method,omitempty"`
	SizeBytes       int      `json:"size_bytes"`
	ExpectSizeBytes int      `json:"expect_size_bytes"`
	WarmupS         float64  `json:"warmup_s"`
	DurationS       float64  `json:"duration_s"`
	TimeoutS        float64  `json:"timeout_s"`
	Rate            float64  `json:"rate"`
	ThinkS          float64  `json:"think_s,omitempty"`
	ThinkJitterS    float64  `json:"think_jitter_s,omitempty"`
	RampS           float64  `json:"ramp_s,omitempty"`
	Environment     *jsonEnv `json:"environment,omitempty"`
}

type jsonEnv struct {
	CPUModel  string `json:"cpu_model"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	LoadAvg   string `json:"loadavg,omitempty"`
}

type jsonCPU struct {
	TargetS  float64 `json:"target_s"`
	LoaderS  float64 `json:"loader_s"`
	MachineS float64 `json:"machine_s"`
	WallS    float64 `json:"wall_s"`
	CPUs     int     `json:"cpus"`
}

type jsonTier struct {
	Connections int             `json:"connections"`
	Control     *jsonSide       `json:"control,omitempty"`
	Relay       *jsonSide       `json:"relay,omitempty"`
	Result      *jsonComparison `json:"result,omitempty"`
}

type jsonSide struct {
	Requests  int64    `json:"requests"`
	RPS       float64  `json:"rps"`
	Errors    int64    `json:"errors"`
	Timeouts  int64    `json:"timeouts"`
	Non2xx    int64    `json:"non_2xx"`
	BadBody   int64    `json:"bad_body"`
	MinMS     float64  `json:"min_ms"`
	P50MS     float64  `json:"p50_ms"`
	P90MS     float64  `json:"p90_ms"`
	P99MS     float64  `json:"p99_ms"`
	P999MS    float64  `json:"p999_ms"`
	MaxMS     float64  `json:"max_ms"`
	DurationS float64  `json:"duration_s"`
	Scheduled int64    `json:"scheduled,omitempty"`
	CPU       *jsonCPU `json:"cpu,omitempty"`
}

type jsonComparison struct {
	RequestsPct *float64 `json:"requests_pct"`
	RPSPct      *float64 `json:"rps_pct"`
	P50DeltaMS  float64  `json:"p50_delta_ms"`
	P90DeltaMS  float64  `json:"p90_delta_ms"`
	P99DeltaMS  float64  `json:"p99_delta_ms"`
}

// WriteJSON writes r in the stable schema documented in doc.go, indented
// for people and diff tools.
func WriteJSON(w io.Writer, r Report) error {
	doc := jsonReport{
		Version: SchemaVersion,
		Config: jsonConfig{
			ControlURL:      r.Meta.ControlURL,
			RelayURL:        r.Meta.RelayURL,
			Method:          r.Meta.Method,
			SizeBytes:       r.Meta.Size,
			ExpectSizeBytes: r.Meta.ExpectSize,
			WarmupS:         r.Meta.Warmup.Seconds(),
			DurationS:       r.Meta.Duration.Seconds(),
			TimeoutS:        r.Meta.Timeout.Seconds(),
			Rate:            r.Meta.Rate,
			ThinkS:          r.Meta.Think.Seconds(),
			ThinkJitterS:    r.Meta.ThinkJitter.Seconds(),
			RampS:           r.Meta.Ramp.Seconds(),
		},
		Tiers: make([]jsonTier, 0, len(r.Tiers)),
	}
	if e := r.Meta.Env; e != (Environment{}) {
		doc.Config.Environment = &jsonEnv{CPUModel: e.CPUModel, CPUs: e.CPUs, GoVersion: e.GoVersion, Commit: e.Commit, LoadAvg: e.LoadAvg}
	}
	if !r.Meta.Generated.IsZero() {
		doc.Generated = r.Meta.Generated.UTC().Format(time.RFC3339)
	}
	for _, t := range r.Tiers {
		jt := jsonTier{Connections: t.Connections, Control: toJSONSide(t.Control), Relay: toJSONSide(t.Relay)}
		if c, ok := t.Compare(); ok {
			jt.Result = &jsonComparison{
				RequestsPct: finiteOrNil(c.RequestsPct),
				RPSPct:      finiteOrNil(c.RPSPct),
				P50DeltaMS:  ms(c.P50),
				P90DeltaMS:  ms(c.P90),
				P99DeltaMS:  ms(c.P99),
			}
		}
		doc.Tiers = append(doc.Tiers, jt)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// ReadJSON reads a document written by WriteJSON. The "result" objects are
// derived data and are recomputed by Tier.Compare rather than read.
func ReadJSON(rd io.Reader) (Report, error) {
	var doc jsonReport
	if err := json.NewDecoder(rd).Decode(&doc); err != nil {
		return Report{}, errors.Join(ErrBadReport, err)
	}
	if doc.Version != SchemaVersion {
		return Report{}, &inputError{kind: ErrBadReport, input: strconv.Itoa(doc.Version), why: "unknown schema version"}
	}
	r := Report{Meta: Meta{
		ControlURL:  doc.Config.ControlURL,
		RelayURL:    doc.Config.RelayURL,
		Method:      doc.Config.Method,
		Size:        doc.Config.SizeBytes,
		ExpectSize:  doc.Config.ExpectSizeBytes,
		Warmup:      seconds(doc.Config.WarmupS),
		Duration:    seconds(doc.Config.DurationS),
		Timeout:     seconds(doc.Config.TimeoutS),
		Rate:        doc.Config.Rate,
		Think:       seconds(doc.Config.ThinkS),
		ThinkJitter: seconds(doc.Config.ThinkJitterS),
		Ramp:        seconds(doc.Config.RampS),
	}}
	if e := doc.Config.Environment; e != nil {
		r.Meta.Env = Environment{CPUModel: e.CPUModel, CPUs: e.CPUs, GoVersion: e.GoVersion, Commit: e.Commit, LoadAvg: e.LoadAvg}
	}
	if doc.Generated != "" {
		t, err := time.Parse(time.RFC3339, doc.Generated)
		if err != nil {
			return Report{}, errors.Join(ErrBadReport, err)
		}
		r.Meta.Generated = t
	}
	for _, jt := range doc.Tiers {
		r.Tiers = append(r.Tiers, Tier{
			Connections: jt.Connections,
			Control:     fromJSONSide(jt.Control, jt.Connections, doc.Config.Rate),
			Relay:       fromJSONSide(jt.Relay, jt.Connections, doc.Config.Rate),
		})
	}
	return r, nil
}

func toJSONSide(r *Result) *jsonSide {
	if r == nil {
		return nil
	}
	var cpu *jsonCPU
	if c := r.CPU; c.Measured {
		cpu = &jsonCPU{TargetS: c.Target.Seconds(), LoaderS: c.Loader.Seconds(), MachineS: c.Machine.Seconds(), WallS: c.Wall.Seconds(), CPUs: c.CPUs}
	}
	return &jsonSide{
		Requests:  r.Requests,
		RPS:       r.RPS(),
		Errors:    r.Errors,
		Timeouts:  r.Timeouts,
		Non2xx:    r.Non2xx,
		BadBody:   r.BadBody,
		MinMS:     ms(r.Latency.Min),
		P50MS:     ms(r.Latency.P50),
		P90MS:     ms(r.Latency.P90),
		P99MS:     ms(r.Latency.P99),
		P999MS:    ms(r.Latency.P999),
		MaxMS:     ms(r.Latency.Max),
		DurationS: r.Duration.Seconds(),
		Scheduled: r.Scheduled,
		CPU:       cpu,
	}
}

// fromJSONSide rebuilds a Result. RPS is not stored in Result (it is
// Requests / Duration) and Service percentiles are not in the schema, so
// Service is set equal to Latency.
func fromJSONSide(s *jsonSide, conns int, rate float64) *Result {
	if s == nil {
		return nil
	}
	lat := Percentiles{
		Min:  millis(s.MinMS),
		P50:  millis(s.P50MS),
		P90:  millis(s.P90MS),
		P99:  millis(s.P99MS),
		P999: millis(s.P999MS),
		Max:  millis(s.MaxMS),
	}
	var cpu CPUUsage
	if c := s.CPU; c != nil {
		cpu = CPUUsage{Measured: true, Target: seconds(c.TargetS), Loader: seconds(c.LoaderS), Machine: seconds(c.MachineS), Wall: seconds(c.WallS), CPUs: c.CPUs}
	}
	return &Result{
		Connections: conns,
		Rate:        rate,
		CPU:         cpu,
		Scheduled:   s.Scheduled,
		Requests:    s.Requests,
		Errors:      s.Errors,
		Timeouts:    s.Timeouts,
		Non2xx:      s.Non2xx,
		BadBody:     s.BadBody,
		Duration:    seconds(s.DurationS),
		Latency:     lat,
		Service:     lat,
	}
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func millis(v float64) time.Duration {
	return time.Duration(math.Round(v * float64(time.Millisecond)))
}

func seconds(v float64) time.Duration {
	return time.Duration(math.Round(v * float64(time.Second)))
}
