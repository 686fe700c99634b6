package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// object is one Kubernetes object of a rendered chart or a recipe.
type object struct {
	source string // file (and document) it came from
	json   []byte
	u      *unstructured.Unstructured
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.u.GetKind(), o.u.GetNamespace(), o.u.GetName(), o.source)
}

// splitObjects parses a multi-document YAML stream; empty documents are skipped.
func splitObjects(t *testing.T, source, text string) []object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out []object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, source)
		js, err := yaml.YAMLToJSONStrict(doc)
		require.NoError(t, err, "%s document %d", source, i)
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(js, &m), "%s document %d", source, i)
		out = append(out, object{source: fmt.Sprintf("%s#%d", source, i), json: js, u: &unstructured.Unstructured{Object: m}})
	}
}

// schemas validates objects offline the way an API server with strict field validation would
// (kubectl's default --validate=strict):
//   - built-in kinds: strict decoding into the k8s.io/api types (unknown and duplicate fields
//     refused, case-sensitive) and the structured-merge-diff schema client-go generates from
//     Kubernetes' OpenAPI (field types, unknown fields);
//   - custom resources: the CRD's openAPIV3Schema with santhosh-tekuri/jsonschema, every object
//     schema closed (additionalProperties: false) unless it says
//     x-kubernetes-preserve-unknown-fields, as the API server prunes or, strictly, refuses
//     unknown fields; plus strict decoding into the project's Go API type where one is
//     registered in typed.
type schemas struct {
	crds  map[schema.GroupVersionKind]*jsonschema.Schema
	typed map[schema.GroupVersionKind]func([]byte) error
}

// builtinTypes is the structured-merge-diff schema of the built-in kinds (client-go's,
// generated from Kubernetes' OpenAPI); parsing it takes a moment, so once.
var builtinTypes = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(scheme.Scheme)
})

// validate returns every problem of o, or nil.
func (s *schemas) validate(o object) error {
	gvk := o.u.GroupVersionKind()
	var errs []error
	switch {
	case scheme.Scheme.Recognizes(gvk):
		dec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
		if _, _, err := dec.Decode(o.json, nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("strict decode: %w", err))
		}
		if _, err := builtinTypes().ObjectToTyped(o.u); err != nil {
			errs = append(errs, fmt.Errorf("openapi schema: %w", err))
		}
	case s.crds[gvk] != nil:
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.json))
		if err != nil {
			return err
		}
		if err := s.crds[gvk].Validate(inst); err != nil {
			errs = append(errs, fmt.Errorf("crd schema: %w", err))
		}
		if dec := s.typed[gvk]; dec != nil {
			if err := dec(o.json); err != nil {
				errs = append(errs, fmt.Errorf("strict decode: %w", err))
			}
		}
	default:
		return fmt.Errorf("%s: no schema for %s", o, gvk)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	return nil
}

// addCRDs compiles the schema of every served version of every CRD in the YAML files.
func (s *schemas) addCRDs(t *testing.T, files ...string) {
	t.Helper()
	if s.crds == nil {
		s.crds = map[schema.GroupVersionKind]*jsonschema.Schema{}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, o := range splitObjects(t, f, string(data)) {
			if o.u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			var crd struct {
				Spec struct {
					Group string `json:"group"`
					Names struct {
						Kind string `json:"kind"`
					} `json:"names"`
					Versions []struct {
						Name   string `json:"name"`
						Served bool   `json:"served"`
						Schema struct {
							OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
						} `json:"schema"`
					} `json:"versions"`
				} `json:"spec"`
			}
			require.NoError(t, json.Unmarshal(o.json, &crd))
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
				sch := closeObjects(v.Schema.OpenAPIV3Schema, true)
				// metadata is validated by the API server's ObjectMeta, not the CRD schema.
				if props, ok := sch["properties"].(map[string]any); ok {
					props["metadata"] = map[string]any{"type": "object"}
				}
				c := jsonschema.NewCompiler()
				url := "mem://" + gvk.String()
				require.NoError(t, c.AddResource(url, sch))
				compiled, err := c.Compile(url)
				require.NoError(t, err, "compile %s", gvk)
				s.crds[gvk] = compiled
			}
		}
	}
}

// closeObjects sets additionalProperties: false on every object schema that lists properties
// and neither preserves unknown fields nor sets additionalProperties itself, and turns
// OpenAPI's nullable into a JSON Schema type union.
func closeObjects(v map[string]any, root bool) map[string]any {
	for k, sub := range v {
		switch x := sub.(type) {
		case map[string]any:
			if k == "properties" {
				for pk, p := range x {
					if pm, ok := p.(map[string]any); ok {
						x[pk] = closeObjects(pm, false)
					}
				}
				continue
			}
			v[k] = closeObjects(x, false)
		case []any:
			for i, e := range x {
				if em, ok := e.(map[string]any); ok {
					x[i] = closeObjects(em, false)
				}
			}
		}
	}
	if v["nullable"] == true {
		if ty, ok := v["type"].(string); ok {
			v["type"] = []any{ty, "null"}
		}
	}
	_, hasProps := v["properties"]
	_, hasAdditional := v["additionalProperties"]
	if hasProps && !hasAdditional && v["x-kubernetes-preserve-unknown-fields"] != true {
		if root {
			// apiVersion, kind and metadata are always allowed at the root.
			props := v["properties"].(map[string]any)
			for _, k := range []string{"apiVersion", "kind", "metadata"} {
				if _, ok := props[k]; !ok {
					props[k] = map[string]any{}
				}
			}
		}
		v["additionalProperties"] = false
	}
	return v
}

// moduleDir is where the go command keeps a module of this module's build list (its CRDs
// come from there, at the version go.sum pins).
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	require.NoError(t, err, "go list -m %s", path)
	dir := strings.TrimSpace(string(out))
	require.NotEmpty(t, dir, "module %s not downloaded (go mod download)", path)
	return dir
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	require.NoError(t, err)
	require.NotEmpty(t, m, pattern)
	return m
}
