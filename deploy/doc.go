// Package deploy holds what operators deploy mcpguard with on Kubernetes: the Helm chart
// (helm/mcpguard), the Envoy Gateway recipe (gateway/) and the Istio recipe (istio/). Its tests
// render the chart and validate every object and recipe offline against the published API
// types and CRD schemas, and against the rules envoy/bootstrap applies to our own bootstrap.
// It is a module of its own so that Helm's and Kubernetes' module graphs stay out of mcpguard's.
package deploy
