package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const dashboardPath = "../../deploy/grafana/pqrelay.json"

// dashboardQueries returns every PromQL string in the dashboard: panel
// target expressions and template variable queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		var q struct{ Query string }
		if v.Type == "query" && json.Unmarshal(v.Query, &q) == nil {
			exprs = append(exprs, q.Query)
		}
	}
	return exprs
}

var (
	metricRef = regexp.MustCompile(`\bpqrelay_[a-z_]+`)
	selector  = regexp.MustCompile(`(pqrelay_[a-z_]+)\{([^}]*)\}`)
	matcher   = regexp.MustCompile(`^\s*([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*$`)
	grouping  = regexp.MustCompile(`\bby \(([^)]*)\)`)
)

// labelsOnTarget are labels Prometheus adds when it scrapes.
var labelsOnTarget = map[string]bool{"job": true, "instance": true}

// TestDashboardQueriesUseExportedMetrics: every query of the Grafana
// dashboard names at least one series the relay exports, with label names
// and values (for = and != matchers) that the exposition has; every
// exported family is on the dashboard; and promtool parses each query.
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	// series name → label name → values, from a relay's real exposition.
	have := map[string]map[string]map[string]bool{}
	for _, line := range strings.Split(string(New(testOpts).AppendText(nil)), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line[:strings.LastIndexByte(line, ' ')], "{")
		if have[name] == nil {
			have[name] = map[string]map[string]bool{}
		}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if have[name][k] == nil {
					have[name][k] = map[string]bool{}
				}
				have[name][k][strings.Trim(v, `"`)] = true
			}
		}
	}

	used := map[string]bool{}
	exprs := dashboardQueries(t)
	for _, expr := range exprs {
		names := metricRef.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("query %q uses no pqrelay metric", expr)
		}
		exprLabels := map[string]bool{}
		for _, n := range names {
			if have[n] == nil {
				t.Errorf("query %q: the relay exports no series %s", expr, n)
				continue
			}
			for k := range have[n] {
				exprLabels[k] = true
			}
			for _, family := range Names() {
				if n == family || strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count") == family {
					used[family] = true
				}
			}
		}
		for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
			for _, m := range strings.Split(sel[2], ",") {
				parts := matcher.FindStringSubmatch(m)
				if parts == nil {
					t.Errorf("query %q: cannot read matcher %q", expr, m)
					continue
				}
				label, op, value := parts[1], parts[2], parts[3]
				switch {
				case labelsOnTarget[label]:
				case have[sel[1]][label] == nil:
					t.Errorf("query %q: %s has no label %s", expr, sel[1], label)
				case (op == "=" || op == "!=") && !have[sel[1]][label][value]:
					t.Errorf("query %q: %s never has %s=%q", expr, sel[1], label, value)
				}
			}
		}
		for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
			for _, label := range strings.Split(g[1], ",") {
				if label = strings.TrimSpace(label); !labelsOnTarget[label] && !exprLabels[label] {
					t.Errorf("query %q groups by %s, which its metrics do not have", expr, label)
				}
			}
		}
	}
	for _, family := range Names() {
		if !used[family] {
			t.Errorf("%s is exported but on no panel", family)
		}
	}

	// promtool parses PromQL in recording rules; Grafana's variables are
	// replaced by what they expand to.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: make deps installs it (Debian package prometheus)")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*")
	for _, expr := range exprs {
		if strings.HasPrefix(expr, "label_values(") {
			continue // Grafana's own function, not PromQL
		}
		b, _ := json.Marshal(grafanaVars.Replace(expr))
		rules.WriteString("  - record: dashboard:query\n    expr: " + string(b) + "\n")
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
