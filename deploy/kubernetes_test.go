package deploy

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// rendered is one overlay after kubectl kustomize, every object decoded.
type rendered struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	secrets     []*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

// render runs kubectl kustomize on an overlay and decodes each object into
// its official API type, refusing unknown fields (a misspelt or misplaced
// field would otherwise be dropped silently by the cluster's decoder, or
// refused at apply time) and kinds this test does not know.
func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", "kubernetes/overlays/"+overlay).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kubectl kustomize %s: %v\n%s", overlay, err, stderr)
	}
	r := &rendered{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", overlay, err)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			r.deployments, obj = append(r.deployments, d), d
		case "v1 Service":
			s := &corev1.Service{}
			r.services, obj = append(r.services, s), s
		case "v1 Secret":
			s := &corev1.Secret{}
			r.secrets, obj = append(r.secrets, s), s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			r.pdbs, obj = append(r.pdbs, p), p
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			r.hpas, obj = append(r.hpas, h), h
		default:
			t.Fatalf("%s: unexpected object %s %s", overlay, meta.APIVersion, meta.Kind)
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Fatalf("%s: %s does not decode strictly: %v\n%s", overlay, meta.Kind, err, doc)
		}
	}
	return r
}

// decodeStrict decodes YAML as the API server does, case-sensitively
// (encoding/json would take runAsNonroot for runAsNonRoot), and refuses
// unknown and duplicate fields.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, obj)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// relayDeployment is the overlay's Deployment of the pqrelay image.
func (r *rendered) relayDeployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	for _, d := range r.deployments {
		for i, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "pqrelay" {
				return d, &d.Spec.Template.Spec.Containers[i]
			}
		}
	}
	t.Fatal("no Deployment with a pqrelay container")
	return nil, nil
}

func (r *rendered) secret(name string) *corev1.Secret {
	for _, s := range r.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func envValue(c *corev1.Container, name string) (corev1.EnvVar, int) {
	for i, e := range c.Env {
		if e.Name == name {
			return e, i
		}
	}
	return corev1.EnvVar{}, -1
}

// relayShutdownDrain is how long the relay lets in-flight requests finish
// after SIGTERM (cmd/pqrelay shutdownGrace).
const relayShutdownDrain = 30

// TestKubernetesOverlays renders both overlays and checks what a platform
// team relies on: the image, a Service of the right type that selects the
// relay's pods and not its metrics port, probes on endpoints the relay
// really serves, the security context, a grace period longer than preStop
// plus the relay's drain, GOMEMLIMIT from the memory limit, Secret keys that
// exist, a PodDisruptionBudget and an autoscaler aimed at the Deployment,
// and the inbound role's replicas and Redis.
func TestKubernetesOverlays(t *testing.T) {
	t.Parallel()
	// The probes are checked against a relay of the overlay's role: a role
	// refuses what it does not serve, and a probe must not be refused.
	relayURLs := map[string]string{
		"outbound": startRelay(t, "RELAY_ROLE=outbound"),
		"inbound":  startRelay(t, "RELAY_ROLE=inbound", "UPSTREAM=http://127.0.0.1:9"),
	}
	for _, c := range []struct {
		overlay     string
		serviceType corev1.ServiceType
		servicePort int32
		minReplicas int32
		redis       bool
	}{
		{"outbound", corev1.ServiceTypeClusterIP, 8080, 1, false},
		{"inbound", corev1.ServiceTypeLoadBalancer, 80, 2, true},
	} {
		t.Run(c.overlay, func(t *testing.T) {
			t.Parallel()
			relayURL := relayURLs[c.overlay]
			r := render(t, c.overlay)
			d, ctr := r.relayDeployment(t)
			pod := &d.Spec.Template.Spec
			podLabels := labels.Set(d.Spec.Template.Labels)

			if want := "localhost/pqrelay:dev"; ctr.Image != want {
				t.Errorf("image %q, want %q", ctr.Image, want)
			}
			sel, err := metav1LabelSelector(d.Spec.Selector.MatchLabels)
			if err != nil || !sel.Matches(podLabels) || len(d.Spec.Selector.MatchLabels) == 0 {
				t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, podLabels)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas < c.minReplicas {
				t.Errorf("replicas %v, want at least %d", d.Spec.Replicas, c.minReplicas)
			}

			// Ports and Service.
			ports := map[string]int32{}
			for _, p := range ctr.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["http"] != 8080 || ports["metrics"] != 9090 {
				t.Errorf("container ports %v, want http 8080 and metrics 9090", ports)
			}
			for _, env := range []struct{ name, want string }{{"PORT", "8080"}, {"METRICS_PORT", "9090"}} {
				if e, _ := envValue(ctr, env.name); e.Value != env.want {
					t.Errorf("%s=%q, want %q (the container ports)", env.name, e.Value, env.want)
				}
			}
			var relaySvc *corev1.Service
			for _, s := range r.services {
				for _, p := range s.Spec.Ports {
					if p.TargetPort.String() == "metrics" || p.TargetPort.IntValue() == 9090 || p.Port == 9090 {
						t.Errorf("Service %s exposes the metrics port", s.Name)
					}
				}
				if labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) && len(s.Spec.Selector) > 0 {
					relaySvc = s
				}
			}
			if relaySvc == nil {
				t.Fatal("no Service selects the relay's pods")
			}
			if relaySvc.Spec.Type != c.serviceType || len(relaySvc.Spec.Ports) != 1 ||
				relaySvc.Spec.Ports[0].Port != c.servicePort || relaySvc.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("Service %s: %s %+v, want %s port %d to http", relaySvc.Name, relaySvc.Spec.Type, relaySvc.Spec.Ports, c.serviceType, c.servicePort)
			}

			// Probes: liveness stays on the echo endpoint, readiness is the
			// one that turns 503 on SIGTERM; each path is one the relay
			// answers 200 on (checked against a running relay).
			probes := map[string]*corev1.Probe{"startup": ctr.StartupProbe, "liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe}
			for name, p := range probes {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "http" {
					t.Errorf("%s probe %+v: want an HTTP GET on the http port", name, p)
					continue
				}
				if code := relayAnswers(t, relayURL, p.HTTPGet.Path); code != http.StatusOK {
					t.Errorf("%s probe path %s: the relay answers %d", name, p.HTTPGet.Path, code)
				}
			}
			for name, want := range map[string]string{"liveness": "/api/mte-echo", "readiness": "/api/mte-ready"} {
				if p := probes[name]; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != want {
					t.Errorf("%s probe on %s, want %s", name, p.HTTPGet.Path, want)
				}
			}

			// Shutdown: preStop sleep, then the relay's drain, within the grace.
			var sleep int64
			if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil && ctr.Lifecycle.PreStop.Sleep != nil {
				sleep = ctr.Lifecycle.PreStop.Sleep.Seconds
			}
			if sleep <= 0 {
				t.Error("no preStop sleep")
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= sleep+relayShutdownDrain {
				t.Errorf("terminationGracePeriodSeconds %v, want more than preStop %d s + drain %d s", g, sleep, relayShutdownDrain)
			}

			// Security context, pod and container.
			psc, csc := pod.SecurityContext, ctr.SecurityContext
			switch {
			case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
				t.Error("pod securityContext: runAsNonRoot not true")
			case psc.RunAsUser == nil || *psc.RunAsUser != 65532:
				t.Error("pod securityContext: runAsUser not 65532, the image's user")
			case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("pod securityContext: seccomp not RuntimeDefault")
			case csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
				t.Error("container securityContext: readOnlyRootFilesystem not true")
			case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
				t.Error("container securityContext: allowPrivilegeEscalation not false")
			case csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0:
				t.Error("container securityContext: capabilities not drop ALL")
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("the relay needs no Kubernetes API token: automountServiceAccountToken should be false")
			}

			// Resources and GOMEMLIMIT.
			if ctr.Resources.Limits.Memory().IsZero() || ctr.Resources.Requests.Cpu().IsZero() {
				t.Errorf("resources %+v: want a memory limit and a CPU request (the autoscaler needs it)", ctr.Resources)
			}
			if e, _ := envValue(ctr, "GOMEMLIMIT"); e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil ||
				e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
				t.Errorf("GOMEMLIMIT %+v: want it from limits.memory", e)
			}

			// Every Secret key the pods read exists.
			for _, dep := range r.deployments {
				for _, ct := range dep.Spec.Template.Spec.Containers {
					for _, e := range ct.Env {
						if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
							continue
						}
						ref := e.ValueFrom.SecretKeyRef
						s := r.secret(ref.Name)
						if s == nil {
							t.Errorf("%s/%s reads Secret %s, which is not rendered", dep.Name, e.Name, ref.Name)
						} else if _, ok := s.StringData[ref.Key]; !ok {
							t.Errorf("%s/%s reads key %s, not in Secret %s", dep.Name, e.Name, ref.Key, ref.Name)
						}
					}
				}
			}
			// Each role gets the variables it needs and no other.
			if e, _ := envValue(ctr, "RELAY_ROLE"); e.Value != c.overlay {
				t.Errorf("RELAY_ROLE=%q, want %s", e.Value, c.overlay)
			}
			secrets := []string{"CLIENT_ID_SECRET"}
			if c.overlay == "outbound" {
				secrets = append(secrets, "OUTBOUND_TOKEN")
			}
			for _, name := range secrets {
				if e, _ := envValue(ctr, name); e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
					t.Errorf("%s is not read from a Secret", name)
				}
			}
			for name, role := range map[string]string{"UPSTREAM": "inbound", "OUTBOUND_TOKEN": "outbound", "ALLOWED_PEERS": "outbound"} {
				if _, at := envValue(ctr, name); (at >= 0) != (role == c.overlay) {
					t.Errorf("%s set: %v; it belongs to the %s role only", name, at >= 0, role)
				}
			}
			if s := r.secret(d.Name); s != nil {
				for key, v := range s.StringData {
					if len(v) >= 16 {
						t.Errorf("the placeholder %s is long enough to pass for a value: keep it short, so that a forgotten one fails", key)
					}
				}
			}

			// Disruption budget and autoscaler aim at this Deployment.
			if len(r.pdbs) != 1 {
				t.Fatalf("%d PodDisruptionBudgets", len(r.pdbs))
			}
			if s, err := metav1LabelSelector(r.pdbs[0].Spec.Selector.MatchLabels); err != nil || !s.Matches(podLabels) || len(r.pdbs[0].Spec.Selector.MatchLabels) == 0 {
				t.Errorf("PodDisruptionBudget selector %v does not select the relay's pods", r.pdbs[0].Spec.Selector)
			}
			if len(r.hpas) != 1 {
				t.Fatalf("%d HorizontalPodAutoscalers", len(r.hpas))
			}
			h := r.hpas[0].Spec
			if h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != d.Name ||
				h.MinReplicas == nil || *h.MinReplicas < c.minReplicas || h.MaxReplicas < *h.MinReplicas ||
				len(h.Metrics) != 1 || h.Metrics[0].Resource == nil || h.Metrics[0].Resource.Name != corev1.ResourceCPU {
				t.Errorf("autoscaler %+v: want CPU-based scaling of %s from %d replicas", h, d.Name, c.minReplicas)
			}

			// Redis: the inbound role shares sessions between replicas.
			url, urlAt := envValue(ctr, "REDIS_URL")
			if (urlAt >= 0) != c.redis {
				t.Fatalf("REDIS_URL set: %v, want %v", urlAt >= 0, c.redis)
			}
			if c.redis {
				_, pwAt := envValue(ctr, "REDIS_PASSWORD")
				if pwAt < 0 || pwAt > urlAt {
					t.Error("REDIS_URL refers to $(REDIS_PASSWORD), which must be defined before it")
				}
				found := false
				for _, s := range r.services {
					found = found || strings.Contains(url.Value, "@"+s.Name+":6379")
				}
				if !found {
					t.Errorf("REDIS_URL %q names no rendered Service", url.Value)
				}
			}
		})
	}
}

func metav1LabelSelector(m map[string]string) (labels.Selector, error) {
	return labels.ValidatedSelectorFromSet(m)
}

// relayAnswers returns the status the relay at url answers for GET path.
func relayAnswers(t *testing.T, url, path string) int {
	t.Helper()
	resp, err := http.Get(url + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
