// Package deploy holds the tests of what pqrelay ships besides its code: the
// container image (built by make image, run here as a relay pair) and the
// Kubernetes manifests in kubernetes/ (rendered with kubectl kustomize and
// decoded strictly into the official API types).
//
// It is a Go module of its own so that k8s.io/api stays out of the relay's
// go.mod. Its tests touch only loopback and stop every container they start
// by id.
package deploy
