package deploy_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/mcpguard/mcpguard/internal/config"
)

const chartDir = "helm/mcpguard"

// promCRDs are the ServiceMonitor and PrometheusRule CRDs, committed from the module
// github.com/prometheus-operator/prometheus-operator@v0.85.0
// (example/prometheus-operator-crd/), the newest version of that module the Go proxy serves
// here.
var promCRDs = []string{
	"testdata/crds/monitoring.coreos.com_servicemonitors.yaml",
	"testdata/crds/monitoring.coreos.com_prometheusrules.yaml",
}

// render renders the chart with the values files (later ones win) and extra values.
func render(t *testing.T, valueFiles []string, extra map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	vals := map[string]any{}
	for _, f := range valueFiles {
		v, err := chartutil.ReadValuesFile(f)
		require.NoError(t, err)
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	if extra != nil {
		vals = chartutil.CoalesceTables(extra, vals)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "mcpguard", Namespace: "mcpguard", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	require.NoError(t, err)
	return engine.Engine{Strict: true}.Render(ch, rv)
}

// renderObjects renders and parses every object.
func renderObjects(t *testing.T, valueFiles []string, extra map[string]any) []object {
	t.Helper()
	out, err := render(t, valueFiles, extra)
	require.NoError(t, err)
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []object
	for _, n := range names {
		if strings.HasSuffix(n, ".tpl") || strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		objs = append(objs, splitObjects(t, n, out[n])...)
	}
	return objs
}

// valueSets are the values the chart is tested with: the defaults and each file in
// testdata/values.
func valueSets(t *testing.T) map[string][]string {
	t.Helper()
	sets := map[string][]string{"defaults": nil}
	for _, f := range glob(t, "testdata/values/*.yaml") {
		sets[strings.TrimSuffix(filepath.Base(f), ".yaml")] = []string{f}
	}
	return sets
}

// TestChart renders the chart with every value set and holds every object to the Kubernetes
// and CRD schemas, the config it carries to `mcpguard config validate` (with its volumes
// mounted as the pod would see them), and the Deployment to its operational invariants.
func TestChart(t *testing.T) {
	var s schemas
	s.addCRDs(t, promCRDs...)
	for name, files := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			objs := renderObjects(t, files, nil)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				require.NoError(t, s.validate(o))
			}
			r := index(t, objs)
			checkDeployment(t, r)
			checkConfig(t, r)
			checkNetwork(t, r)
		})
	}
}

// rendered is a rendered chart by kind, decoded into the API types.
type rendered struct {
	deploy     appsv1.Deployment
	config     map[string]any
	configText string
	configMaps map[string]corev1.ConfigMap
	services   []corev1.Service
	netpols    []networkingv1.NetworkPolicy
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	kinds      map[string]int
	objs       []object
}

func index(t *testing.T, objs []object) *rendered {
	t.Helper()
	r := &rendered{configMaps: map[string]corev1.ConfigMap{}, kinds: map[string]int{}, objs: objs}
	for _, o := range objs {
		r.kinds[o.u.GetKind()]++
		switch o.u.GetKind() {
		case "Deployment":
			if o.u.GetName() == "mcpguard" {
				require.NoError(t, json.Unmarshal(o.json, &r.deploy))
			}
		case "ConfigMap":
			var cm corev1.ConfigMap
			require.NoError(t, json.Unmarshal(o.json, &cm))
			r.configMaps[cm.Name] = cm
		case "Service":
			var svc corev1.Service
			require.NoError(t, json.Unmarshal(o.json, &svc))
			r.services = append(r.services, svc)
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			require.NoError(t, json.Unmarshal(o.json, &np))
			r.netpols = append(r.netpols, np)
		case "PodDisruptionBudget":
			r.pdb = &policyv1.PodDisruptionBudget{}
			require.NoError(t, json.Unmarshal(o.json, r.pdb))
		case "HorizontalPodAutoscaler":
			r.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			require.NoError(t, json.Unmarshal(o.json, r.hpa))
		}
	}
	require.Equal(t, "mcpguard", r.deploy.Name, "the mcpguard Deployment")
	cm, ok := r.configMaps["mcpguard-config"]
	require.True(t, ok, "config ConfigMap")
	r.configText = cm.Data["config.yaml"]
	require.NoError(t, yaml.Unmarshal([]byte(r.configText), &r.config))
	return r
}

func (r *rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.deploy.Spec.Template.Spec.Containers
	require.Len(t, cs, 1)
	return cs[0]
}

func checkDeployment(t *testing.T, r *rendered) {
	t.Helper()
	pod := r.deploy.Spec.Template.Spec
	c := r.container(t)
	// Non-root, read-only root filesystem, nothing extra.
	require.NotNil(t, pod.SecurityContext)
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.NotNil(t, c.SecurityContext)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	// Probes on the admin port.
	admin := portOf(t, c, "admin")
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}, {c.StartupProbe, "/readyz"}} {
		require.NotNil(t, p.probe)
		require.Equal(t, p.path, p.probe.HTTPGet.Path)
		require.Equal(t, "admin", p.probe.HTTPGet.Port.String())
	}
	require.Equal(t, admin, listenPort(t, r.config, "admin"))
	require.Equal(t, portOf(t, c, "grpc"), listenPort(t, r.config, "grpc"))
	// Resources sized, no CPU limit (throttling turns into ext_proc message timeouts).
	require.False(t, c.Resources.Requests.Cpu().IsZero())
	require.False(t, c.Resources.Requests.Memory().IsZero())
	require.False(t, c.Resources.Limits.Memory().IsZero())
	require.True(t, c.Resources.Limits.Cpu().IsZero())
	// The grace period outlasts drain + timeout; readiness fails within the drain.
	drain, timeout := duration(t, r.config, "shutdown", "drain"), duration(t, r.config, "shutdown", "timeout")
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	require.Greater(t, grace, drain+timeout, "terminationGracePeriodSeconds must exceed shutdown.drain + shutdown.timeout")
	rp := c.ReadinessProbe
	require.Less(t, time.Duration(rp.PeriodSeconds*rp.FailureThreshold)*time.Second, drain, "readiness must fail within the drain")
	// Policy mounted as a directory (a subPath mount never sees the ConfigMap's updates).
	for _, m := range c.VolumeMounts {
		require.Empty(t, m.SubPath, "volume %s uses subPath: Kubernetes never updates it", m.Name)
	}
	// Selectors select the pods.
	podLabels := labels.Set(r.deploy.Spec.Template.Labels)
	require.True(t, selects(t, r.deploy.Spec.Selector, podLabels))
	if r.pdb != nil {
		require.True(t, selects(t, r.pdb.Spec.Selector, podLabels))
	}
	if r.hpa != nil {
		require.Equal(t, r.deploy.Name, r.hpa.Spec.ScaleTargetRef.Name)
		require.Nil(t, r.deploy.Spec.Replicas, "the HPA owns replicas")
	}
	for _, svc := range r.services {
		if strings.HasPrefix(svc.Name, "mcpguard-redis") {
			continue
		}
		require.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels), svc.Name)
		for _, p := range svc.Spec.Ports {
			portOf(t, c, p.TargetPort.String())
		}
	}
}

func checkNetwork(t *testing.T, r *rendered) {
	t.Helper()
	podLabels := labels.Set(r.deploy.Spec.Template.Labels)
	var np *networkingv1.NetworkPolicy
	for i := range r.netpols {
		if selects(t, &r.netpols[i].Spec.PodSelector, podLabels) {
			require.Nil(t, np, "one network policy selects mcpguard")
			np = &r.netpols[i]
		}
	}
	if np == nil {
		return
	}
	require.Contains(t, np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
	grpcRules := 0
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.String() == "grpc" {
				grpcRules++
				require.NotEmpty(t, rule.From, "the gRPC port must admit only Envoy")
				for _, peer := range rule.From {
					require.True(t, peer.PodSelector != nil && len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) > 0,
						"every peer of the gRPC port names Envoy's pods")
				}
			}
		}
	}
	require.Equal(t, 1, grpcRules)
}

// checkConfig mounts the Deployment's volumes under a temporary root the way the kubelet
// would (ConfigMaps from the rendered objects, Secrets with generated content, emptyDirs),
// points the config's paths there, and runs `mcpguard config validate` on it (config.Check).
func checkConfig(t *testing.T, r *rendered) {
	t.Helper()
	root := t.TempDir()
	vols := map[string]corev1.Volume{}
	for _, v := range r.deploy.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	var mounts []string
	for _, m := range r.container(t).VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		mounts = append(mounts, m.MountPath)
		v, ok := vols[m.Name]
		require.True(t, ok, "volume %s", m.Name)
		switch {
		case v.ConfigMap != nil:
			cm, ok := r.configMaps[v.ConfigMap.Name]
			require.True(t, ok, "ConfigMap %s is not rendered", v.ConfigMap.Name)
			for k, data := range cm.Data {
				require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(data), 0o600))
			}
		case v.Secret != nil:
			require.NotEmpty(t, v.Secret.Items, "secret volume %s lists its keys", v.Name)
			for _, it := range v.Secret.Items {
				require.NoError(t, os.WriteFile(filepath.Join(dir, it.Path), secretFixture(t, root, it.Key), 0o600))
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: unexpected source", v.Name)
		}
	}
	// Longest mount paths first, so /etc/mcpguard/tls/grpc-client-ca is not read as
	// /etc/mcpguard/tls/grpc.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	var pairs []string
	for _, m := range mounts {
		pairs = append(pairs, m, filepath.Join(root, m))
	}
	text := strings.NewReplacer(pairs...).Replace(r.configText)
	path := filepath.Join(root, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	require.NoError(t, config.Check(path), "mcpguard config validate on the rendered config:\n%s", text)
}

// secretFixture generates what a Secret key holds: real keys and certificates, so the
// validation reads them as the service would.
func secretFixture(t *testing.T, root, key string) []byte {
	t.Helper()
	switch key {
	case "signing-key.pem":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	case "hash-key", "password":
		return []byte(rand.Text() + "\n")
	case "tls.crt", "tls.key", "ca.crt":
		return testPKI(t, root)[key]
	}
	t.Fatalf("no fixture for secret key %q", key)
	return nil
}

var pkiCache = map[string]map[string][]byte{}

// testPKI is one CA and one server certificate it issued, per test root.
func testPKI(t *testing.T, root string) map[string][]byte {
	t.Helper()
	if p, ok := pkiCache[root]; ok {
		return p
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpguard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		DNSNames: []string{"mcpguard-grpc.mcpguard.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	p := map[string][]byte{"tls.crt": crt, "ca.crt": crt, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}
	pkiCache[root] = p
	return p
}

func portOf(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port %q", name)
	return 0
}

func listenPort(t *testing.T, cfg map[string]any, section string) int32 {
	t.Helper()
	listen, _ := cfg[section].(map[string]any)["listen"].(string)
	i := strings.LastIndex(listen, ":")
	require.Positive(t, i, "%s.listen %q", section, listen)
	var p int32
	for _, ch := range listen[i+1:] {
		p = p*10 + int32(ch-'0')
	}
	return p
}

func duration(t *testing.T, cfg map[string]any, section, key string) time.Duration {
	t.Helper()
	s, _ := cfg[section].(map[string]any)[key].(string)
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "%s.%s", section, key)
	return d
}

func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(set)
}

// TestChartRefuses: value combinations that cannot work fail at render time, naming the value.
func TestChartRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		extra map[string]any
		want  string
	}{
		"file store with replicas":    {map[string]any{"approvals": map[string]any{"store": map[string]any{"kind": "file"}}}, "needs approvals.store.kind redis"},
		"file store with autoscaling": {map[string]any{"replicaCount": 1, "autoscaling": map[string]any{"enabled": true}, "approvals": map[string]any{"store": map[string]any{"kind": "file"}}}, "needs approvals.store.kind redis"},
		"listen set in config":        {map[string]any{"config": map[string]any{"grpc": map[string]any{"listen": "0.0.0.0:1"}}}, "config.grpc.listen is set by the chart"},
		"policy file set in config":   {map[string]any{"config": map[string]any{"policy": map[string]any{"file": "/x"}}}, "config.policy.file is set by the chart"},
		"recordings without key":      {map[string]any{"secrets": map[string]any{"recordingsSigningKey": ""}}, "secrets.recordingsSigningKey is required"},
		"tls without secret":          {map[string]any{"tls": map[string]any{"grpc": map[string]any{"enabled": true}}}, "tls.grpc.secretName is required"},
		"mtls without tls":            {map[string]any{"tls": map[string]any{"grpc": map[string]any{"mtls": true}}}, "tls.grpc.mtls needs tls.grpc.enabled"},
		"redis without address":       {map[string]any{"redis": map[string]any{"enabled": false}}, "needs approvals.store.redis.addr or redis.enabled"},
		"grpc open to everyone":       {map[string]any{"networkPolicy": map[string]any{"grpcFrom": []any{}}}, "networkPolicy.grpcFrom must name the Envoy pods"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, nil, tc.extra)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestPolicyReloadsWithoutRestart: a policy change leaves the pod template alone (the
// running pods reload the file); a config change rolls the pods.
func TestPolicyReloadsWithoutRestart(t *testing.T) {
	checksum := func(extra map[string]any) string {
		r := index(t, renderObjects(t, nil, extra))
		return r.deploy.Spec.Template.Annotations["checksum/config"]
	}
	base := checksum(map[string]any{"policy": "version: 1\ndefault: allow\n"})
	require.NotEmpty(t, base)
	require.Equal(t, base, checksum(map[string]any{"policy": "version: 1\ndefault: deny\n"}))
	require.NotEqual(t, base, checksum(map[string]any{"policy": "version: 1\ndefault: allow\n", "config": map[string]any{"log": map[string]any{"level": "debug"}}}))
}

// TestSchemasCatch: the validators refuse what an API server with strict field validation
// refuses, so a passing chart means something.
func TestSchemasCatch(t *testing.T) {
	var s schemas
	s.addCRDs(t, promCRDs...)
	objs := renderObjects(t, glob(t, "testdata/values/tls.yaml"), nil)
	mutate := func(kind string, f func(m map[string]any)) object {
		for _, o := range objs {
			if o.u.GetKind() != kind {
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(o.json, &m))
			f(m)
			js, err := json.Marshal(m)
			require.NoError(t, err)
			return splitObjects(t, "mutated", string(js))[0]
		}
		t.Fatalf("no %s rendered", kind)
		return object{}
	}
	spec := func(m map[string]any) map[string]any { return m["spec"].(map[string]any) }
	for name, tc := range map[string]struct {
		o    object
		want string
	}{
		"unknown Deployment field": {mutate("Deployment", func(m map[string]any) { spec(m)["replica"] = 2 }), `unknown field "spec.replica"`},
		"wrong case":               {mutate("Deployment", func(m map[string]any) { spec(m)["Replicas"] = 2 }), `unknown field "spec.Replicas"`},
		"wrong type":               {mutate("Service", func(m map[string]any) { spec(m)["ports"] = "9001" }), "spec.ports"},
		"unknown ServiceMonitor field": {mutate("ServiceMonitor", func(m map[string]any) {
			spec(m)["endpoint"] = []any{}
		}), "additional properties 'endpoint' not allowed"},
		"PrometheusRule without expr": {mutate("PrometheusRule", func(m map[string]any) {
			r := spec(m)["groups"].([]any)[0].(map[string]any)["rules"].([]any)[0].(map[string]any)
			delete(r, "expr")
		}), "missing property 'expr'"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, s.validate(tc.o), tc.want)
		})
	}
}

// TestAlertsAgreeWithDocs: the PrometheusRule carries exactly the alerts docs/operations.md
// suggests (files/alerts.yaml is that block), and every mcpguard metric they use exists.
func TestAlertsAgreeWithDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)## Suggested alerts\n\n```yaml\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "docs/operations.md has a Suggested alerts block")
	file, err := os.ReadFile(filepath.Join(chartDir, "files/alerts.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(m[1]), string(file), "deploy/helm/mcpguard/files/alerts.yaml must equal the block in docs/operations.md")

	objs := renderObjects(t, nil, map[string]any{"prometheusRule": map[string]any{"enabled": true}, "metrics": map[string]any{"job": "mcp-prod"}})
	var rule map[string]any
	for _, o := range objs {
		if o.u.GetKind() == "PrometheusRule" {
			rule = o.u.Object["spec"].(map[string]any)
		}
	}
	require.NotNil(t, rule)
	var want map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(strings.ReplaceAll(string(file), `job="mcpguard"`, `job="mcp-prod"`)), &want))
	require.Equal(t, want, rule)

	exposed := map[string]bool{}
	for _, mm := range regexp.MustCompile("\\| `(mcpguard_[a-z_]+)` \\|").FindAllSubmatch(doc, -1) {
		exposed[string(mm[1])] = true
	}
	require.NotEmpty(t, exposed)
	used := regexp.MustCompile(`mcpguard_[a-z_]+`).FindAllString(string(file), -1)
	require.NotEmpty(t, used)
	for _, u := range used {
		base := strings.TrimSuffix(u, "_bucket")
		require.True(t, exposed[base], "alert uses %s, which mcpguard does not expose", u)
	}
	require.True(t, slices.Contains(used, "mcpguard_authz_checks_total"))
}
