package metrics

import (
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the Prometheus text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric names, each documented in its HELP line below.
const (
	nameRequests      = "pqrelay_requests_total"
	nameDuration      = "pqrelay_request_duration_seconds"
	nameUpstream      = "pqrelay_upstream_duration_seconds"
	namePeer          = "pqrelay_peer_duration_seconds"
	nameInFlight      = "pqrelay_requests_in_flight"
	namePairings      = "pqrelay_pairings_total"
	nameRekeys        = "pqrelay_rekeys_total"
	nameFramesRefused = "pqrelay_frames_refused_total"
	nameStoreDegraded = "pqrelay_store_degraded"
	nameStoreErrors   = "pqrelay_store_command_errors_total"
	nameLinkConns     = "pqrelay_link_connections"
	nameBuildInfo     = "pqrelay_build_info"
)

// Names lists every metric family the relay exports, for dashboards and
// alerts to be checked against.
func Names() []string {
	return []string{nameRequests, nameDuration, nameUpstream, namePeer, nameInFlight, namePairings,
		nameRekeys, nameFramesRefused, nameStoreDegraded, nameStoreErrors, nameLinkConns, nameBuildInfo}
}

// Handler serves the exposition at any path it is mounted on; main mounts it
// at /metrics on its own listener.
func (r *Relay) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Write(r.AppendText(nil))
	})
}

// AppendText appends the exposition of every series to dst.
func (r *Relay) AppendText(dst []byte) []byte {
	dst = header(dst, nameRequests, "counter", "Requests answered, by the role the relay played and outcome: ok or the relay error code (GET /api/mte-errors).")
	for role := range numRoles {
		for o := range r.requests[role] {
			dst = sample(dst, nameRequests, r.requests[role][o].n.Load(), "role", roleNames[role], "code", r.outcomeLbl[o])
		}
	}
	dst = header(dst, nameDuration, "histogram", "Time from a request's arrival to the relay's answer, by role.")
	for role := range numRoles {
		dst = r.duration[role].append(dst, nameDuration, "role", roleNames[role])
	}
	dst = header(dst, nameUpstream, "histogram", "Round trips of the inbound relay to UPSTREAM.")
	dst = r.upstream.append(dst, nameUpstream)
	dst = header(dst, namePeer, "histogram", "Round trips of the outbound relay to the inbound relay, pairing excluded.")
	dst = r.peer.append(dst, namePeer)
	dst = header(dst, nameInFlight, "gauge", "Requests received and not yet answered.")
	dst = sampleInt(dst, nameInFlight, r.inFlight.n.Load())
	dst = header(dst, namePairings, "counter", "Pairings, by role (outbound: asked, inbound: answered) and result.")
	for role := range numPairingRoles {
		for res := range numResults {
			dst = sample(dst, namePairings, r.pairings[role][res].n.Load(), "role", roleNames[role], "result", resultNames[res])
		}
	}
	dst = header(dst, nameRekeys, "counter", "Sessions the outbound relay replaced before they expired, by result.")
	for res := range numResults {
		dst = sample(dst, nameRekeys, r.rekeys[res].n.Load(), "result", resultNames[res])
	}
	dst = header(dst, nameFramesRefused, "counter", "Frames the inbound relay refused, by reason; replayed frames are reason=\"replay\".")
	for why := range numRefusals {
		dst = sample(dst, nameFramesRefused, r.refusals[why].n.Load(), "reason", refusalNames[why])
	}
	dst = header(dst, nameStoreDegraded, "gauge", "1 while the session store is degraded (Redis unreachable), else 0.")
	degraded := int64(0)
	if r.opts.StoreDegraded != nil && r.opts.StoreDegraded() {
		degraded = 1
	}
	dst = sampleInt(dst, nameStoreDegraded, degraded)
	dst = header(dst, nameStoreErrors, "counter", "Session store commands that failed.")
	dst = sample(dst, nameStoreErrors, r.storeErrs.n.Load())
	dst = header(dst, nameLinkConns, "gauge", "Relay links this relay serves as the inbound relay.")
	links := int64(0)
	if r.opts.LinkConnections != nil {
		links = int64(r.opts.LinkConnections())
	}
	dst = sampleInt(dst, nameLinkConns, links)
	dst = header(dst, nameBuildInfo, "gauge", "Always 1; the labels say which build is running.")
	dst = sampleInt(dst, nameBuildInfo, 1, "version", r.opts.Version, "commit", r.opts.Commit, "goversion", r.goVersion)
	return dst
}

func header(dst []byte, name, kind, help string) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)...)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, kind...)
	return append(dst, '\n')
}

// labels appends {k="v",...} from alternating names and values.
func labels(dst []byte, kv []string) []byte {
	if len(kv) == 0 {
		return dst
	}
	dst = append(dst, '{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, kv[i]...)
		dst = append(dst, `="`...)
		dst = append(dst, labelEscaper.Replace(kv[i+1])...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func sample(dst []byte, name string, v uint64, kv ...string) []byte {
	dst = labels(append(dst, name...), kv)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\n')
}

func sampleInt(dst []byte, name string, v int64, kv ...string) []byte {
	dst = labels(append(dst, name...), kv)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\n')
}

// append writes the histogram's cumulative buckets, sum and count.
func (h *histogram) append(dst []byte, name string, kv ...string) []byte {
	var cum uint64
	withLe := append(kv[:len(kv):len(kv)], "le", "")
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		le := "+Inf"
		if i < len(bucketBounds) {
			le = strconv.FormatFloat(bucketBounds[i].Seconds(), 'g', -1, 64)
		}
		withLe[len(withLe)-1] = le
		dst = sample(dst, name+"_bucket", cum, withLe...)
	}
	dst = labels(append(dst, name+"_sum"...), kv)
	dst = append(dst, ' ')
	dst = strconv.AppendFloat(dst, float64(h.sumNs.Load())/1e9, 'g', -1, 64)
	dst = append(dst, '\n')
	return sample(dst, name+"_count", cum, kv...)
}
